import pytest
from channels.db import database_sync_to_async

from core import outbound
from tests.support import connect, issue_token, sealed

pytestmark = pytest.mark.django_db(transaction=True)


async def test_two_members_exchange_a_message(live_hospital):
    h = live_hospital
    bob_token = await database_sync_to_async(issue_token)(h.surgeon_bob)
    alice_token = await database_sync_to_async(issue_token)(h.nurse_alice)
    bob, _ = await connect(bob_token)
    alice, _ = await connect(alice_token)
    await bob.send_json_to(
        {
            "type": "message.post",
            "id": "p1",
            "thread": h.thread.pk,
            "client_msg_id": "bob-00000001",
            "envelope": sealed(h, "surgeon_bob", h.thread, "bob-00000001"),
        }
    )
    ack = await bob.receive_json_from(timeout=5)
    assert ack["type"] == "ack" and ack["result"]["seq"] == 1
    pushed = await alice.receive_json_from(timeout=5)
    outbound.validate_outbound(pushed)
    assert pushed["type"] == "message.new" and pushed["message"]["seq"] == 1
    await bob.disconnect()
    await alice.disconnect()
