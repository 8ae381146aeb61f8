"""Rounds' own production checks, run by `manage.py check --deploy` (docs/operations.md).

`make run` is a demo: published logins, the institution's private keys on the
server's disk, plain HTTP, origins and hosts for a laptop. Each of these is
fine on a laptop and a breach in a hospital, so `check --deploy` reports each
as an error (exit status 1) until the deployment says otherwise. Django's own
deploy checks (HSTS, secure cookies, DEBUG) run beside these.
"""

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

# The accounts `seed_demo` creates (rooms/management/commands/seed_demo.py).
DEMO_USERNAMES = ("admin", "head_carol", "surgeon_bob", "compliance_dan", "er_doctor_lea")
LAPTOP_ORIGINS = {"http://127.0.0.1:8000", "http://localhost:8000"}


@register(Tags.security, deploy=True)
def check_demo_logins(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """A demo login still signs in with the demo password printed in the README."""
    from django.db import DatabaseError

    from accounts.models import User
    from rooms.management.commands.seed_demo import DEMO_PASSWORD

    try:
        users = list(User.objects.filter(username__in=DEMO_USERNAMES, is_active=True))
    except DatabaseError:  # no database yet: nothing to sign in with either
        return []
    published = sorted(u.username for u in users if u.check_password(DEMO_PASSWORD))
    if not published:
        return []
    return [
        Error(
            "Demo logins sign in with the demo password: " + ", ".join(published) + ".",
            hint="This database was seeded by `make run` (seed_demo). Deploy on a new "
            "database, or deactivate these users.",
            id="rounds.E001",
        )
    ]


@register(Tags.security, deploy=True)
def check_demo_keys(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """The institution's private keys must never sit on the server (the demo keeps them)."""
    keys = settings.VAR_DIR / "demo-keys"
    if not keys.exists() or not any(keys.iterdir()):
        return []
    return [
        Error(
            f"The institution's demo private keys are on this server ({keys}).",
            hint="A deployment's admin and compliance keys are made offline and kept by "
            "IT and the compliance officers (docs/operations.md); delete this directory.",
            id="rounds.E002",
        )
    ]


@register(Tags.security, deploy=True)
def check_tls(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    if settings.ROUNDS_BEHIND_TLS:
        return []
    return [
        Error(
            "Rounds is not told it is served over TLS: cookies may travel in clear "
            "and browsers get no HSTS.",
            hint="Terminate TLS in front of daphne and set ROUNDS_BEHIND_TLS=1.",
            id="rounds.E003",
        )
    ]


@register(Tags.security, deploy=True)
def check_origins(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """The sockets and the login accept only the deployment's own HTTPS origins."""
    origins = set(settings.ROUNDS_ALLOWED_ORIGINS)
    laptop = origins & LAPTOP_ORIGINS
    plain = sorted(o for o in origins - LAPTOP_ORIGINS if o.startswith("http://"))
    if not origins or laptop or plain:
        return [
            Error(
                "ROUNDS_ALLOWED_ORIGINS is "
                + (
                    "empty"
                    if not origins
                    else "a laptop's or plain HTTP: " + ", ".join(sorted(laptop) + plain)
                )
                + ".",
                hint="Set it to the https:// origin(s) users open Rounds at.",
                id="rounds.E004",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_hosts_and_secret(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    found: list[Error | Warning] = []
    if "testserver" in settings.ALLOWED_HOSTS or set(settings.ALLOWED_HOSTS) <= {
        "127.0.0.1",
        "localhost",
        "[::1]",
        "testserver",
    }:
        found.append(
            Error(
                "ALLOWED_HOSTS is the development default.",
                hint="Set ROUNDS_ALLOWED_HOSTS to the host name(s) of the deployment.",
                id="rounds.E005",
            )
        )
    if settings.ROUNDS_SECRET_KEY_FROM_FILE:
        found.append(
            Warning(
                "The secret key was generated into var/secret_key on this machine.",
                hint="Give every process of the deployment the same DJANGO_SECRET_KEY, kept "
                "with the deployment's other secrets.",
                id="rounds.W001",
            )
        )
    return found


@register(Tags.security, deploy=True)
def check_second_factor(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Heads admit people, officers read everything under a case, administrators appoint
    heads: a password alone must not be enough for any of them."""
    if settings.ROUNDS_SECOND_FACTOR != "off":
        return []
    return [
        Error(
            "No second factor is required, not even for heads, compliance officers and "
            "administrators (ROUNDS_SECOND_FACTOR=off).",
            hint="Leave ROUNDS_SECOND_FACTOR unset (privileged) or set it to everyone "
            "(docs/sign-in.md).",
            id="rounds.E006",
        )
    ]
