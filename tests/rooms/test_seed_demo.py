"""The demo seed gives a fresh `make run` what the audit sealer needs to sign checkpoints."""

import io

import pytest
from django.core.management import call_command

from audit.checkpoints import load_key


@pytest.mark.django_db
def test_the_demo_seed_creates_the_checkpoint_key_once(settings, tmp_path):
    settings.ROUNDS_AUDIT_CHECKPOINT_KEY = tmp_path / "audit-checkpoint.key"
    settings.ROUNDS_AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    out = io.StringIO()
    call_command("seed_demo", "--patients", "3", stdout=out)
    key = load_key(settings.ROUNDS_AUDIT_CHECKPOINT_KEY)
    assert bytes(key.verify_key).hex() in out.getvalue()
    # A checkpoint can be written at once with it.
    written = io.StringIO()
    call_command("audit_checkpoint", stdout=written)
    assert written.getvalue().startswith("checkpoint ")
    # An existing key is never replaced (a second seed on an empty database keeps it).
    before = settings.ROUNDS_AUDIT_CHECKPOINT_KEY.read_bytes()
    from rooms.management.commands.seed_demo import Command

    Command(stdout=io.StringIO()).seed_checkpoint_key()
    assert settings.ROUNDS_AUDIT_CHECKPOINT_KEY.read_bytes() == before
