"""`manage.py check --deploy` with Rounds' own checks (rounds/deploy_checks.py): a `make run`
demo is unfit for production, a configured deployment fit (docs/operations.md)."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

pytestmark = pytest.mark.django_db

CONFIGURED = {
    "ROUNDS_BEHIND_TLS": True,
    "SESSION_COOKIE_SECURE": True,
    "CSRF_COOKIE_SECURE": True,
    "SECURE_HSTS_SECONDS": 365 * 24 * 3600,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    "ROUNDS_ALLOWED_ORIGINS": ["https://rounds.hopital.example"],
    "ALLOWED_HOSTS": ["rounds.hopital.example"],
    "ROUNDS_SECRET_KEY_FROM_FILE": False,
    "ROUNDS_SECOND_FACTOR": "privileged",
}


def deploy_check() -> str:
    out = io.StringIO()
    call_command("check", deploy=True, stdout=out, stderr=out)
    return out.getvalue()


def test_a_make_run_demo_is_unfit_for_production(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.ROUNDS_AUDIT_CHECKPOINT_KEY = tmp_path / "audit-checkpoint.key"
    settings.ROUNDS_AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    settings.ROUNDS_SECOND_FACTOR = "off"  # as `make run` serves the demo
    call_command("seed_demo", "--patients", "0", "--no-user-keys", stdout=io.StringIO())
    with pytest.raises(SystemCheckError) as caught:
        deploy_check()
    report = str(caught.value)
    for code in (
        "rounds.E001",
        "rounds.E002",
        "rounds.E003",
        "rounds.E004",
        "rounds.E005",
        "rounds.E006",
    ):
        assert code in report, report
    assert "head_carol" in report and "demo-keys" in report
    assert "rounds-demo-2026" not in report  # the password itself is never printed


def test_a_configured_deployment_is_fit(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    for name, value in CONFIGURED.items():
        setattr(settings, name, value)
    report = deploy_check()
    assert "rounds." not in report, report


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"ROUNDS_BEHIND_TLS": False}, "rounds.E003"),
        ({"ROUNDS_ALLOWED_ORIGINS": ["http://rounds.hopital.example"]}, "rounds.E004"),
        ({"ROUNDS_ALLOWED_ORIGINS": []}, "rounds.E004"),
        ({"ALLOWED_HOSTS": ["localhost", "testserver"]}, "rounds.E005"),
        ({"ROUNDS_SECOND_FACTOR": "off"}, "rounds.E006"),
    ],
)
def test_each_gap_is_reported(settings, tmp_path, override, code):
    settings.VAR_DIR = tmp_path
    for name, value in {**CONFIGURED, **override}.items():
        setattr(settings, name, value)
    with pytest.raises(SystemCheckError) as caught:
        deploy_check()
    assert code in str(caught.value)


def test_a_secret_key_made_on_this_machine_is_a_warning(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    for name, value in {**CONFIGURED, "ROUNDS_SECRET_KEY_FROM_FILE": True}.items():
        setattr(settings, name, value)
    assert "rounds.W001" in deploy_check()
