"""ROUNDS_AUDIT_SEALER=process: the serving processes only write entries, and one process
of its own (`manage.py audit_sealer`, audit/sealer.py `run_forever`) seals them."""

import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from audit import sealer
from audit.actions import record, seal_all, verify_chain
from audit.models import AuditSeal

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def process_mode(settings):
    settings.ROUNDS_AUDIT_SEAL_GATHER = 0.01
    seal_all()  # what the hospital's set-up wrote, sealed in the tests' inline mode
    settings.ROUNDS_AUDIT_SEALER = "process"
    return settings


def test_a_serving_process_leaves_its_entries_to_the_sealer_process(process_mode):
    with transaction.atomic():
        entry = record("sealer.process", object_type="test")
    assert not AuditSeal.objects.filter(event=entry).exists()
    out = StringIO()
    call_command("audit_sealer", rounds=1, stdout=out)
    assert AuditSeal.objects.filter(event=entry).exists()
    report = verify_chain()
    assert report.ok and report.unsealed == 0
    assert "stopped after 1 rounds" in out.getvalue()


def test_the_loop_stops_when_told_and_says_how_many_rounds_ran(process_mode):
    stop = threading.Event()
    ran: list[int] = []
    worker = threading.Thread(target=lambda: ran.append(sealer.run_forever(stop)))
    worker.start()
    record("sealer.process", object_type="test")
    stop.set()
    worker.join(5)
    assert not worker.is_alive() and ran and ran[0] >= 0


def test_the_command_refuses_to_seal_beside_another_mode(settings):
    settings.ROUNDS_AUDIT_SEALER = "thread"
    with pytest.raises(CommandError, match="ROUNDS_AUDIT_SEALER is 'thread'"):
        call_command("audit_sealer", rounds=1)
