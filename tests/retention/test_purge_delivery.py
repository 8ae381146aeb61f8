"""A purge removes old events from a department's stream, leaving holes in its numbers:
delivery and resume must go on over them (chat/actions.py events_after)."""

from datetime import date

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from chat.actions import do_create_thread, events_after
from patients.models import Admission, Patient
from tests.retention.support import discharge, run
from tests.support import sealed
from tests.support.sockets import assert_quiet, connect_as, post, recv, resume

pytestmark = pytest.mark.django_db(transaction=True)


def second_ward_thread(h) -> dict:
    """Nadia's thread in plastic surgery; her stay is open, so it is kept."""
    nadia = Patient.objects.create(
        ipp="00800200", family_name="Roux", given_name="Nadia", birth_date=date(1990, 3, 4)
    )
    Admission.objects.create(patient=nadia, ward="Plastic surgery", admitted_at=timezone.now())
    return do_create_thread(h.surgeon_bob, h.plastic.pk, nadia.pk, "Graft check")


@pytest.mark.slow
async def test_a_resume_over_purged_events_gets_the_rest_once_in_order(live_hospital, settings):
    settings.ROUNDS_RESUME_BATCH = 1  # every replayed event is a batch of its own
    h = live_hospital
    key = str(h.plastic.pk)
    kept = await database_sync_to_async(second_ward_thread)(h)
    alice, hello = await connect_as(h.nurse_alice)
    saved = hello["cursor"]
    await alice.disconnect()

    bob, _ = await connect_as(h.surgeon_bob)
    acks = []
    for i, thread in enumerate((h.thread, kept, h.thread, kept, h.thread)):
        envelope = sealed(h, "surgeon_bob", thread, f"bob-hole-{i}", department=h.plastic)
        acks.append((thread, await post(bob, envelope)))
    await database_sync_to_async(discharge)(h.patient)
    report = await database_sync_to_async(run)()
    assert [p["thread"] for p in report.purged] == [h.thread.pk]  # Léa's only

    alice, hello = await connect_as(h.nurse_alice)
    assert hello["cursor"] == {key: saved[key] + 5}
    replayed, result = await resume(alice, saved)
    survivors = [ack["message_id"] for thread, ack in acks if thread is kept]
    assert [f["message"]["id"] for f in replayed] == survivors
    assert [f["event_seq"] for f in replayed] == [saved[key] + 2, saved[key] + 4]
    assert result == {"cursor": hello["cursor"], "ignored": []}

    # Live again after the holes, nothing twice.
    ack = await post(bob, sealed(h, "surgeon_bob", kept, "bob-after-purge", department=h.plastic))
    live = await recv(alice)
    assert live["message"]["id"] == ack["message_id"] and live["event_seq"] == saved[key] + 6
    await assert_quiet(alice)
    await alice.disconnect()
    await bob.disconnect()


def test_a_replay_bounded_above_stops_there_over_holes(live_hospital):
    """The consumer replays a gap (after, before): `limit` counts numbers, and with holes
    as many events would reach past `before`, into what is still to come live."""
    h = live_hospital
    kept = second_ward_thread(h)
    start = h.plastic.__class__.objects.get(pk=h.plastic.pk).event_seq
    for i, thread in enumerate((h.thread, kept, h.thread, kept)):
        post_sync(h, thread, f"bob-sync-{i}")
    discharge(h.patient)
    run()
    seqs = [seq for seq, _ in events_after(h.nurse_alice, h.plastic.pk, start, 3, start + 4)]
    assert seqs == [start + 2]
    assert [seq for seq, _ in events_after(h.nurse_alice, h.plastic.pk, start)] == [
        start + 2,
        start + 4,
    ]


def post_sync(h, thread, cmid: str) -> None:
    from chat.actions import check_post_message

    thread_id = thread["id"] if isinstance(thread, dict) else thread.pk
    envelope = sealed(h, "surgeon_bob", thread, cmid, department=h.plastic)
    check_post_message(h.surgeon_bob, thread_id, cmid, envelope)
