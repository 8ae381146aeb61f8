"""ROUNDS_BEHIND_TLS (issue 17): one deployment setting turns on Secure cookies and HSTS.

Before, only ROUNDS_SECURE_COOKIES=1 made the cookies Secure and nothing sent HSTS.
Settings are read once, at import: each case loads them in a fresh interpreter with
its own environment, as a deployment starts.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
YEAR = 365 * 24 * 3600

PROBE = """
import json, django
from django.conf import settings
django.setup()
from django.test import Client
# A request the TLS terminator forwarded: daphne sees HTTP, the header says HTTPS.
response = Client().get("/api/auth/me", HTTP_X_FORWARDED_PROTO="https")
print(json.dumps({
    "session_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_secure": settings.CSRF_COOKIE_SECURE,
    "hsts_seconds": getattr(settings, "SECURE_HSTS_SECONDS", 0),
    "hsts_subdomains": getattr(settings, "SECURE_HSTS_INCLUDE_SUBDOMAINS", False),
    "proxy_ssl_header": getattr(settings, "SECURE_PROXY_SSL_HEADER", None),
    "hsts_header": response.headers.get("Strict-Transport-Security"),
}))
"""


def settings_with(tmp_path: Path, **env: str) -> dict:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ROUNDS_", "DJANGO_")) and key != "DATABASE_URL"
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="rounds.settings",
        ROUNDS_VAR_DIR=str(tmp_path),
        ROUNDS_SCHEDULER="off",
        ROUNDS_AUDIT_SEALER="inline",
        **env,
    )
    run = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_behind_tls_turns_on_secure_cookies_and_a_years_hsts(tmp_path):
    found = settings_with(tmp_path, ROUNDS_BEHIND_TLS="1")
    assert found == {
        "session_secure": True,
        "csrf_secure": True,
        "hsts_seconds": YEAR,
        "hsts_subdomains": True,
        "proxy_ssl_header": ["HTTP_X_FORWARDED_PROTO", "https"],
        "hsts_header": f"max-age={YEAR}; includeSubDomains",
    }


def test_by_default_nothing_claims_tls(tmp_path):
    """`make run` serves plain HTTP on loopback: HSTS there would lock browsers out."""
    found = settings_with(tmp_path)
    assert found == {
        "session_secure": False,
        "csrf_secure": False,
        "hsts_seconds": 0,
        "hsts_subdomains": False,
        "proxy_ssl_header": None,
        "hsts_header": None,
    }


@pytest.mark.parametrize("value", ["1", "true"])
def test_the_older_secure_cookies_setting_still_makes_cookies_secure(tmp_path, value):
    found = settings_with(tmp_path, ROUNDS_SECURE_COOKIES=value)
    assert (found["session_secure"], found["csrf_secure"]) == (True, True)
    assert found["hsts_header"] is None
