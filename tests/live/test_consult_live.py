"""A consult across departments end to end on real daphne processes (two with Redis, as
in CI on PostgreSQL + Redis; one on SQLite), with the Python client on both sides:
the emergency doctor asks Plastic surgery's "On-call plastic surgeon" (urgent); unanswered,
it escalates; the head opens the consult (the guest signed into the chain, the thread
key's first version); the doctor's question and photo reach the surgeons decrypted,
the answer reaches the doctor; acknowledgement stops the timers; the doctor ends the
consult and reads it after, but not what is written under the next version; the audit
trail has every step."""

import asyncio
import contextlib
import io
from collections.abc import Iterator

import pytest
from PIL import Image

from tests.live.sdk import LIMITS, attest, plastic_surgery_with_keys, query, signed_in
from tests.live.servers import LiveCluster, live_cluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(240)]

DELAY = 2.0


@pytest.fixture(scope="module")
def fast_cluster() -> Iterator[LiveCluster]:
    import os

    settings = {"ROUNDS_ADVICE_URGENT_SECONDS": str(DELAY), "ROUNDS_SCHEDULER_POLL_SECONDS": "0.2"}
    with live_cluster(2 if os.environ.get("REDIS_URL") else 1, settings=settings) as running:
        yield running


def wound_photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (180, 60, 60)).save(out, "JPEG")
    return out.getvalue()


def steps_of(cluster: LiveCluster, request_id: int) -> list[str]:
    rows = query(
        cluster,
        "SELECT kind FROM advice_advicestep WHERE request_id = ? ORDER BY number",
        (request_id,),
    )
    return [kind for (kind,) in rows]


def holders_of(cluster: LiveCluster, request_id: int) -> list[str]:
    rows = query(
        cluster,
        "SELECT u.username FROM advice_advicestep s JOIN accounts_user u ON u.id = s.holder_id "
        "WHERE s.request_id = ? ORDER BY s.number",
        (request_id,),
    )
    return [username for (username,) in rows]


async def test_an_emergency_doctor_consults_the_on_call_plastic_surgeon(fast_cluster):
    cluster = fast_cluster
    async with contextlib.AsyncExitStack() as stack:
        plastic, carol, bob, alice = await plastic_surgery_with_keys(cluster, stack)
        lea = await stack.enter_async_context(signed_in(cluster.servers[-1], "er_doctor_lea"))
        assert await lea.setup_keys(**LIMITS)

        # What the ask sheet offers her: other departments and their on-call roles.
        targets = {d["name"]: d for d in await lea.consult_targets()}
        assert "Emergency department" not in targets
        [role] = [r for r in targets["Plastic surgery"]["roles"] if r["name"].startswith("On-call")]
        [patient, *_] = await lea.find_patients(name="le")
        made = await lea.ask_consult(plastic, patient["id"], priority="urgent", to_role=role["id"])
        assert made["message"] is None and made["holder"] is not None
        thread = made["thread"]

        # Unanswered, it moves on along the roster, then to the head (the scheduler of
        # either process), one step per timer.
        for _ in range(300):
            if len(steps_of(cluster, made["id"])) >= 3:
                break
            await asyncio.sleep(0.1)
        assert steps_of(cluster, made["id"])[:2] == ["requested", "escalated"]
        assert "head_carol" in holders_of(cluster, made["id"])

        # Lea reads nothing of it yet; the head opens it, and Lea's socket hears so.
        opened = await carol.open_consult(thread)
        assert opened["state"] == "open" and opened["key_version"] == 1
        frame = await lea.next_event("consult.updated", wait=10)
        assert frame["consult"]["state"] in ("open", "pending")

        question = await lea.send_photos(
            thread, [wound_photo()], text="Flap dusky at the tip, 3 h post-op: come?"
        )
        assert question["thread"] == thread
        # The surgeons read the question and the photo, decrypted and checked.
        seen = await bob.next_event(
            "message.new", wait=10, match=lambda f: f["message"]["sender"]["id"] == lea.me()
        )
        body = await bob.open_photo_message(seen)
        assert body["text"].startswith("Flap dusky")
        photo = await bob.download_photo(body["photos"][0])
        assert Image.open(io.BytesIO(photo)).size[0] > 0

        taken = await carol.acknowledge(made["id"], "on_it")
        assert taken["status"] == "acknowledged" and taken["due_at"] is None
        settled = len(steps_of(cluster, made["id"]))
        await carol.send_text(thread, "On my way, 10 minutes.")
        answer = await lea.next_event(
            "message.new", wait=10, match=lambda f: f["message"]["sender"]["id"] == carol.me()
        )
        assert await lea.open_message(answer) == b"On my way, 10 minutes."
        await asyncio.sleep(2 * DELAY)
        assert len(steps_of(cluster, made["id"])) == settled

        # The guest reaches nothing else of Plastic surgery.
        with pytest.raises(Exception) as refused:
            await lea.department_threads(plastic)
        assert getattr(refused.value, "code", None) == "not_found"

        # Lea ends the consult: the next writer makes a version she does not hold.
        ended = await lea.end_consult(thread)
        assert ended["state"] == "ended"
        await bob.send_text(thread, "Noted, dressing changed.")
        versions = query(
            cluster,
            "SELECT v.version FROM chat_threadkeyversion v JOIN chat_consult c "
            "ON c.id = v.consult_id WHERE c.thread_id = ? ORDER BY v.version",
            (thread,),
        )
        assert [v for (v,) in versions] == [1, 2]
        history = await lea.history(thread)
        assert await lea.open_message(history["messages"][1]) == b"On my way, 10 minutes."
        with pytest.raises(Exception) as unreadable:
            await lea.open_message(history["messages"][-1])
        assert getattr(unreadable.value, "code", None) == "no_room_key"

        audited = query(
            cluster,
            "SELECT action FROM audit_auditevent WHERE object_type = 'thread' AND object_id = ? "
            "AND action IN ('consult.requested', 'consult.opened', 'consult.ended') ORDER BY id",
            (str(thread),),
        )
        assert [a for (a,) in audited] == ["consult.requested", "consult.opened", "consult.ended"]

        # A member whose admission is signed after the consult reads its history once a
        # member shares the thread key's versions with them (R8).
        erin = await stack.enter_async_context(signed_in(cluster.servers[0], "intern_erin"))
        assert await erin.setup_keys(**LIMITS)
        await attest(carol, plastic, erin)
        shared = await carol.share_consult_history(plastic, erin.me())
        assert shared == {thread: [1, 2]}
        erins = await erin.history(thread)
        assert await erin.open_message(erins["messages"][1]) == b"On my way, 10 minutes."
        assert alice.me() != lea.me()
