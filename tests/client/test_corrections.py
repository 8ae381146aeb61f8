"""The Python SDK's corrections against a live server: `correct_text()` seals a new
envelope bound to the message, readers open the latest version marked edited, and a
correction the server moved onto another message, or forged, fails closed to the
original, flagged (client/messages.py)."""

import contextlib
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from client.sdk import RoundsClientError
from core.crypto import encrypt_message
from tests.live.sdk import (
    in_thread,
    plastic_surgery_with_keys,
)
from tests.live.servers import LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

FIRST = "Flap warm, refill 3 s"
FIXED = "Flap warm, refill 2 s"
OTHER = "Drain removed"


@contextlib.asynccontextmanager
async def ward(cluster: LiveCluster) -> AsyncIterator[dict[str, Any]]:
    """Carol heads Plastic surgery, Bob and Alice are admitted; Bob posts two notes."""
    async with contextlib.AsyncExitStack() as stack:
        plastic, _carol, bob, alice = await plastic_surgery_with_keys(cluster, stack)
        (patient, *_) = await bob.find_patients(name="le")
        thread = await bob.create_thread(plastic, patient["id"], "Flap follow-up")
        await bob.send_text(thread, FIRST)
        first = await alice.next_event("message.new", match=in_thread(thread["id"]))
        await bob.send_text(thread, OTHER)
        other = await alice.next_event("message.new", match=in_thread(thread["id"]))
        yield {
            "bob": bob,
            "alice": alice,
            "plastic": plastic,
            "thread": thread,
            "first": first["message"],
            "other": other["message"],
        }


async def test_a_correction_reaches_readers_marked_edited_and_forgeries_fail_closed(
    cluster: LiveCluster,
):
    async with ward(cluster) as w:
        bob, alice, first = w["bob"], w["alice"], w["first"]

        ack = await bob.correct_text(first, FIXED)
        assert (ack["message_id"], ack["version"]) == (first["id"], 2)
        event = await alice.next_event("message.corrected")
        opened = await alice.open(alice.with_correction(first, event))
        assert (opened.plaintext, opened.edited, opened.version) == (FIXED.encode(), True, 2)
        assert opened.correction_error is None
        assert opened.header.client_msg_id == first["client_msg_id"]
        # The same frame again (a retry after a lost ack) is answered once; the same
        # client_msg_id sealed again is other bytes, refused.
        cmid = event["correction"]["client_msg_id"]
        frame = {"type": "message.correct", "message": first["id"], "client_msg_id": cmid}
        again = await bob.request({**frame, "envelope": event["correction"]["envelope"]})
        assert again == {**ack, "duplicate": True}
        with pytest.raises(RoundsClientError) as caught:
            await bob.correct_text(first, FIXED, client_msg_id=cmid)
        assert caught.value.code == "client_msg_id_conflict"

        # History carries the latest version; the original stays as it came.
        page = await alice.history(w["thread"]["id"])
        stored, plain = page["messages"]
        assert stored["envelope"] == first["envelope"]
        assert (await alice.open(stored)).plaintext == FIXED.encode()
        assert await alice.open_message(plain) == OTHER.encode()
        assert not (await alice.open(plain)).edited

        # The server moves the correction onto Bob's other message: shown as it was, flagged.
        spliced = copy.deepcopy(event)
        spliced["message"] = {k: w["other"][k] for k in ("id", "thread", "seq")}
        moved = await alice.open(alice.with_correction(w["other"], spliced))
        assert (moved.plaintext, moved.edited) == (OTHER.encode(), False)
        assert moved.correction_error == "correction_mismatch"

        # An event about another message is refused outright.
        with pytest.raises(RoundsClientError) as caught:
            alice.with_correction(w["other"], event)
        assert caught.value.code == "correction_mismatch"

        # A correction signed by someone else than the sender, for this very message.
        room_key = await alice.room_key(w["plastic"])
        chain = await alice.membership.chain(w["plastic"])
        forged = copy.deepcopy(event)
        forged["correction"]["envelope"] = encrypt_message(
            b"Flap necrotic",
            room_key=room_key,
            head=chain.head,
            thread=w["thread"]["id"],
            sender=alice.user["id"],
            client_msg_id=cmid,
            signer=alice.keys.identity,
            corrects=first["client_msg_id"],
        )
        flagged = await alice.open(alice.with_correction(first, forged))
        assert (flagged.plaintext, flagged.correction_error) == (
            FIRST.encode(),
            "correction_mismatch",
        )

        # Its bytes altered: the signature fails, the original is shown.
        altered = copy.deepcopy(event)
        ciphertext = altered["correction"]["envelope"]["ciphertext"]
        altered["correction"]["envelope"]["ciphertext"] = ("B" if ciphertext[0] == "A" else "A") + (
            ciphertext[1:]
        )
        broken = await alice.open(alice.with_correction(first, altered))
        assert (broken.plaintext, broken.edited) == (FIRST.encode(), False)
        assert broken.correction_error == "bad_signature"

        # A correction's envelope delivered as a message of its own is not a message.
        posing = {**first, "client_msg_id": cmid, "envelope": event["correction"]["envelope"]}
        with pytest.raises(RoundsClientError) as caught:
            await alice.open(posing)
        assert caught.value.code == "envelope_mismatch"

        # Refusals come back typed: Alice may not correct Bob's message.
        with pytest.raises(RoundsClientError) as caught:
            await alice.correct_text(first, "not hers")
        assert caught.value.code == "forbidden"
