"""Bad input over the socket: a typed error, the socket stays up, nothing stored changes.

Also the edges of the handshake (origin, authentication) and of the limits
(frame size, rate, connections per user), where the socket does close.
"""

import json
from datetime import timedelta
from typing import get_args

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from chat import actions as chat_actions
from chat.actions import do_set_thread_closed
from core import outbound, protocol
from core.events import EventKind
from tests.support import open_socket, sealed
from tests.support.sockets import (
    assert_alive,
    assert_closed,
    connect_as,
    connect_with,
    expect_refused,
    finish,
    next_id,
    ok,
    post,
    post_frame,
    recv,
    request,
    stored_counts,
    token_for,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def raw_error(communicator, *, text: str | None = None, data: bytes | None = None) -> dict:
    if data is not None:
        await communicator.send_to(bytes_data=data)
    else:
        await communicator.send_to(text_data=text)
    frame = await recv(communicator)
    assert frame["type"] == "error", frame
    return frame


def field_names(error: dict) -> set[str]:
    return {problem["field"] for problem in error["data"]["errors"]}


# --- Malformed frames ------------------------------------------------------------


async def test_malformed_json_is_invalid_json(live_hospital):
    bob, _ = await connect_as(live_hospital.surgeon_bob)
    before = await stored_counts()
    error = await raw_error(bob, text='{"type": "ping", "id": ')
    assert error["code"] == "invalid_json"
    assert error["id"] is None
    await assert_alive(bob)
    assert await stored_counts() == before
    await bob.disconnect()


async def test_json_nested_too_deep_is_invalid_json(live_hospital):
    bob, _ = await connect_as(live_hospital.surgeon_bob)
    error = await raw_error(bob, text="[" * 30_000 + "]" * 30_000)
    assert error["code"] == "invalid_json"
    await assert_alive(bob)
    await bob.disconnect()


async def test_json_that_is_not_an_object_is_invalid_frame(live_hospital):
    bob, _ = await connect_as(live_hospital.surgeon_bob)
    before = await stored_counts()
    for text in ('[{"type": "ping", "id": "p"}]', "42", '"ping"', "null"):
        error = await raw_error(bob, text=text)
        assert error["code"] == "invalid_frame", text
        await assert_alive(bob)
    assert await stored_counts() == before
    await bob.disconnect()


async def test_unknown_type(live_hospital):
    bob, _ = await connect_as(live_hospital.surgeon_bob)
    error = await expect_refused(bob, {"type": "message.delete", "thread": 1}, "unknown_type")
    assert "message.post" in error["data"]["known"]
    await assert_alive(bob)
    await bob.disconnect()


async def test_missing_field_is_named(live_hospital):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    before = await stored_counts()
    frame = post_frame(sealed(h, "surgeon_bob", h.thread, "bob-missing-1"))
    del frame["envelope"]
    error = await expect_refused(bob, frame, "invalid_frame")
    assert field_names(error) == {"envelope"}
    await assert_alive(bob)
    assert await stored_counts() == before
    await bob.disconnect()


async def test_extra_field_is_named(live_hospital):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    before = await stored_counts()
    frame = {**post_frame(sealed(h, "surgeon_bob", h.thread, "bob-extra-01")), "priority": "urgent"}
    error = await expect_refused(bob, frame, "invalid_frame")
    assert field_names(error) == {"priority"}
    await assert_alive(bob)
    assert await stored_counts() == before
    await bob.disconnect()


async def test_wrong_type_is_not_coerced(live_hospital):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    before = await stored_counts()
    frame = post_frame(sealed(h, "surgeon_bob", h.thread, "bob-string-1"))
    frame["thread"] = str(h.thread.pk)
    error = await expect_refused(bob, frame, "invalid_frame")
    assert field_names(error) == {"thread"}
    await assert_alive(bob)
    assert await stored_counts() == before
    await bob.disconnect()


async def test_type_that_is_not_a_string_is_unknown_type(live_hospital):
    bob, _ = await connect_as(live_hospital.surgeon_bob)
    for kind in (["ping"], {"ping": 1}, 7, None):
        await expect_refused(bob, {"type": kind}, "unknown_type")
    await assert_alive(bob)
    await bob.disconnect()


async def test_malformed_values_are_named(live_hospital):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    before = await stored_counts()
    base = post_frame(sealed(h, "surgeon_bob", h.thread, "bob-values-01"))
    cases = [
        ({**base, "thread": True}, "thread"),  # strict: a bool is not an id
        ({**base, "thread": 5.0}, "thread"),
        ({**base, "thread": 0}, "thread"),
        ({**base, "thread": 2**63}, "thread"),
        ({**base, "client_msg_id": "short"}, "client_msg_id"),
        ({**base, "client_msg_id": "abcdefgh\n"}, "client_msg_id"),
        ({**base, "client_msg_id": "has spaces in it"}, "client_msg_id"),
        ({**base, "envelope": {"header": {"v": {"nested": 1}}, "ciphertext": "AAAA"}}, None),
        ({**base, "envelope": {"header": {"k": "x" * 5000}, "ciphertext": "AAAA"}}, None),
        ({**base, "envelope": {"header": {}, "ciphertext": ""}}, "envelope.ciphertext"),
        ({**base, "envelope": "AAAA"}, "envelope"),
        ({"type": "history.fetch", "thread": h.thread.pk, "limit": 201}, "limit"),
        ({"type": "typing", "thread": h.thread.pk, "active": "yes"}, "active"),
    ]
    for frame, field in cases:
        error = await expect_refused(bob, frame, "invalid_frame")
        fields = field_names(error)
        if field is None:
            assert all(f.startswith("envelope.header") for f in fields), error
        else:
            assert fields == {field}, error
    await assert_alive(bob)
    assert await stored_counts() == before
    await bob.disconnect()


async def test_frame_without_id_is_invalid(live_hospital):
    bob, _ = await connect_as(live_hospital.surgeon_bob)
    error = await raw_error(bob, text=json.dumps({"type": "ping"}))
    assert error["code"] == "invalid_frame"
    assert field_names(error) == {"id"}
    await assert_alive(bob)
    await bob.disconnect()


async def test_invalid_utf8_bytes_frame(live_hospital):
    bob, _ = await connect_as(live_hospital.surgeon_bob)
    before = await stored_counts()
    error = await raw_error(bob, data=b'{"type": "ping", "id": "\xff\xfe"}')
    assert error["code"] == "invalid_utf8"
    await assert_alive(bob)
    assert await stored_counts() == before
    await bob.disconnect()


async def test_valid_utf8_bytes_frame_is_accepted(live_hospital):
    bob, _ = await connect_as(live_hospital.surgeon_bob)
    await bob.send_to(bytes_data=json.dumps({"type": "ping", "id": "bytes-1"}).encode())
    ack = await recv(bob)
    assert ack["type"] == "ack" and ack["id"] == "bytes-1"
    await bob.disconnect()


async def test_frame_over_the_size_limit(live_hospital, settings):
    h = live_hospital
    settings.ROUNDS_WS_MAX_FRAME_BYTES = 1024
    bob, hello = await connect_as(h.surgeon_bob)
    assert hello["limits"]["max_frame_bytes"] == 1024
    before = await stored_counts()
    body = sealed(h, "surgeon_bob", h.thread, "bob-too-big1", bytes(2048))
    big = json.dumps(post_frame(body) | {"id": "big"})
    error = await raw_error(bob, text=big)
    assert error["code"] == "frame_too_large"
    assert error["data"] == {"max_frame_bytes": 1024}
    # Multi-byte characters count as bytes, not characters.
    accented = '{"type": "ping", "id": "x"}' + " " * 600 + "é" * 300  # 901 chars, 1201 bytes
    error = await raw_error(bob, text=accented)
    assert error["code"] == "frame_too_large"
    error = await raw_error(bob, data=b" " * 1025)
    assert error["code"] == "frame_too_large"
    await assert_alive(bob)
    assert await stored_counts() == before
    await bob.disconnect()


async def test_bad_base64_ciphertext(live_hospital):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    before = await stored_counts()
    body = {"header": {"v": 1}, "ciphertext": "this is not base64!"}
    frame = post_frame(body, thread=h.thread.pk, client_msg_id="bob-base64-1")
    error = await expect_refused(bob, frame, "invalid_frame")
    assert field_names(error) == {"envelope.ciphertext"}
    await assert_alive(bob)
    assert await stored_counts() == before
    await bob.disconnect()


async def test_login_frames_are_not_part_of_the_protocol(live_hospital):
    """Passwords only go to the HTTP login view, never over the socket."""
    bob, _ = await connect_as(live_hospital.surgeon_bob)
    frame = {"type": "login", "username": "surgeon_bob", "password": "correct-horse-battery"}
    error = await expect_refused(bob, frame, "unknown_type")
    assert "login" not in error["data"]["known"]
    assert "password" not in json.dumps(error)
    await assert_alive(bob)
    await bob.disconnect()


# --- Refused posts ---------------------------------------------------------------


async def test_post_to_another_departments_thread_is_not_found(live_hospital):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    before = await stored_counts()
    # Signed by Bob and bound to the thread he names: only membership can refuse it.
    foreign = sealed(h, "surgeon_bob", h.vascular_thread, "bob-vascular1")
    await expect_refused(bob, post_frame(foreign), "not_found")
    # A thread that does not exist gets the very same answer (2**53 - 1: the largest
    # id an envelope can name).
    for missing in (10**9, 2**53 - 1):
        body = sealed(h, "surgeon_bob", missing, "bob-missing-9", department=h.plastic)
        error = await expect_refused(bob, post_frame(body), "not_found")
        assert error["message"] == "Thread not found."
    await assert_alive(bob)
    assert await stored_counts() == before
    await bob.disconnect()


async def test_post_by_a_non_member_is_not_found(live_hospital):
    h = live_hospital
    dan, hello = await connect_as(h.compliance_dan)
    assert hello["departments"] == [] and hello["cursor"] == {}
    before = await stored_counts()
    body = sealed(h, "compliance_dan", h.thread, "dan-post-0001")
    await expect_refused(dan, post_frame(body), "not_found")
    await assert_alive(dan)
    assert await stored_counts() == before
    await dan.disconnect()


async def test_post_by_a_removed_member_is_not_found(live_hospital):
    h = live_hospital
    erin, hello = await connect_as(h.intern_erin)
    assert hello["departments"] == []
    before = await stored_counts()
    body = sealed(h, "intern_erin", h.thread, "erin-post-001")
    await expect_refused(erin, post_frame(body), "not_found")
    await expect_refused(erin, {"type": "history.fetch", "thread": h.thread.pk}, "not_found")
    await assert_alive(erin)
    assert await stored_counts() == before
    await erin.disconnect()


async def test_post_to_a_closed_thread(live_hospital):
    h = live_hospital
    await database_sync_to_async(do_set_thread_closed)(h.head_carol, h.thread, True)
    bob, _ = await connect_as(h.surgeon_bob)
    before = await stored_counts()
    body = sealed(h, "surgeon_bob", h.thread, "bob-closed-01")
    await expect_refused(bob, post_frame(body), "thread_closed")
    await assert_alive(bob)
    assert await stored_counts() == before
    await h.thread.arefresh_from_db()
    assert h.thread.last_seq == 0
    await bob.disconnect()


@pytest.mark.slow
async def test_duplicate_post_gets_the_first_ack(live_hospital):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    body = sealed(h, "surgeon_bob", h.thread, "bob-retry-001")
    first = await post(bob, body)
    assert "duplicate" not in first
    assert (await recv(alice))["type"] == "message.new"
    after_first = await stored_counts()
    again = await ok(bob, post_frame(json.loads(json.dumps(body))))
    assert again == {**first, "duplicate": True}
    assert await stored_counts() == after_first
    # Nobody is told twice.
    assert await alice.receive_nothing(timeout=0.3)
    assert await bob.receive_nothing(timeout=0.3)
    await bob.disconnect()
    await alice.disconnect()


async def test_a_retry_after_the_thread_closed_still_gets_the_first_ack(live_hospital):
    """The ack was lost, the thread closed meanwhile: the retry must not read as a failure."""
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    body = sealed(h, "surgeon_bob", h.thread, "bob-lost-ack1")
    first = await post(bob, body)
    await database_sync_to_async(do_set_thread_closed)(h.head_carol, h.thread, True)
    assert (await recv(bob))["type"] == "thread.closed"
    before = await stored_counts()
    again = await ok(bob, post_frame(body))
    assert again == {**first, "duplicate": True}
    other = sealed(h, "surgeon_bob", h.thread, "bob-lost-ack1", b"another message")
    await expect_refused(bob, post_frame(other), "client_msg_id_conflict")
    fresh = sealed(h, "surgeon_bob", h.thread, "bob-lost-ack2")
    await expect_refused(bob, post_frame(fresh), "thread_closed")
    assert await stored_counts() == before
    await bob.disconnect()


async def test_reused_client_msg_id_with_other_content_conflicts(live_hospital):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    first = await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-reuse-001"))
    before = await stored_counts()
    reused = sealed(h, "surgeon_bob", h.thread, "bob-reuse-001", b"another message")
    error = await expect_refused(bob, post_frame(reused), "client_msg_id_conflict")
    assert error["data"] == {"message_id": first["message_id"]}
    # The same id for another thread conflicts too, even where Bob may post.
    other = await database_sync_to_async(chat_actions.check_create_thread)(
        h.surgeon_bob, h.plastic.pk, h.patient.pk, "Second opinion"
    )
    assert (await recv(bob))["type"] == "thread.created"
    before = await stored_counts()
    elsewhere = sealed(h, "surgeon_bob", other, "bob-reuse-001")
    await expect_refused(bob, post_frame(elsewhere), "client_msg_id_conflict")
    await assert_alive(bob)
    assert await stored_counts() == before
    await bob.disconnect()


async def test_other_refusals_keep_the_socket_up(live_hospital):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-refuse-01"))
    before = await stored_counts()
    frame = {"type": "receipt.read", "thread": h.thread.pk, "up_to_seq": 2}
    error = await expect_refused(bob, frame, "invalid_request")
    assert error["data"] == {"last_seq": 1}
    await expect_refused(bob, {"type": "typing", "thread": h.vascular_thread.pk}, "not_found")
    await expect_refused(
        bob, {"type": "receipts.fetch", "thread": h.vascular_thread.pk}, "not_found"
    )
    await expect_refused(
        bob, {"type": "history.fetch", "thread": h.thread.pk, "limit": 0}, "invalid_frame"
    )
    await assert_alive(bob)
    assert await stored_counts() == before
    await bob.disconnect()


async def test_cursor_from_the_future(live_hospital):
    h = live_hospital
    bob, hello = await connect_as(h.surgeon_bob)
    plastic = str(h.plastic.pk)
    latest = hello["cursor"][plastic]
    before = await stored_counts()
    error = await expect_refused(
        bob, {"type": "resume", "cursor": {plastic: latest + 5}}, "cursor_invalid"
    )
    assert error["data"] == {"department": h.plastic.pk, "latest": latest}
    await expect_refused(bob, {"type": "resume", "cursor": {plastic: -1}}, "invalid_frame")
    # Keys are ASCII department ids: "²" passes str.isdigit() but int() refuses it.
    for bad_key in ("plastic", "²", "٣", "-1", "1" * 19):
        error = await expect_refused(
            bob, {"type": "resume", "cursor": {bad_key: 0}}, "invalid_frame"
        )
        assert field_names(error) == {"cursor"}, error
    await assert_alive(bob)
    assert await stored_counts() == before
    await bob.disconnect()


# --- Limits ----------------------------------------------------------------------


async def test_flooding_gets_rate_limited_then_closed(live_hospital, settings):
    settings.ROUNDS_WS_RATE_PER_SECOND = 0.01
    settings.ROUNDS_WS_RATE_BURST = 2
    settings.ROUNDS_WS_FLOOD_CLOSE_AFTER = 3
    bob, hello = await connect_as(live_hospital.surgeon_bob)
    assert hello["limits"]["burst"] == 2
    ids = [next_id("flood") for _ in range(5)]
    for frame_id in ids:
        await bob.send_json_to({"type": "ping", "id": frame_id})
    replies = [await recv(bob) for _ in range(5)]
    assert [r["type"] for r in replies] == ["ack", "ack", "error", "error", "error"]
    assert [r["id"] for r in replies[:2]] == ids[:2]
    assert {r["code"] for r in replies[2:]} == {"rate_limited"}
    await assert_closed(bob, protocol.CLOSE_FLOOD)
    await finish(bob)


@pytest.mark.slow
async def test_refusals_below_the_flood_threshold_do_not_close(live_hospital, settings):
    """Only refusals in a row count towards the flood close."""
    settings.ROUNDS_WS_RATE_PER_SECOND = 0.01
    settings.ROUNDS_WS_RATE_BURST = 1
    settings.ROUNDS_WS_FLOOD_CLOSE_AFTER = 3
    bob, _ = await connect_as(live_hospital.surgeon_bob)
    await assert_alive(bob)
    for _ in range(2):
        await bob.send_json_to({"type": "ping", "id": next_id()})
        assert (await recv(bob))["code"] == "rate_limited"
    assert await bob.receive_nothing(timeout=0.3)
    await bob.disconnect()


async def test_too_many_connections_per_user(live_hospital, settings):
    settings.ROUNDS_WS_MAX_CONNECTIONS_PER_USER = 1
    h = live_hospital
    first, _ = await connect_as(h.surgeon_bob)
    second = await open_socket(await token_for(h.surgeon_bob))
    connected, _ = await second.connect()
    assert connected
    error = await recv(second)
    assert error["type"] == "error" and error["code"] == "rate_limited"
    await assert_closed(second, protocol.CLOSE_TOO_MANY_CONNECTIONS)
    await finish(second)
    await assert_alive(first)
    await first.disconnect()
    # The slot is given back on disconnect.
    third, _ = await connect_as(h.surgeon_bob)
    await assert_alive(third)
    await third.disconnect()


# --- Handshake -------------------------------------------------------------------


async def test_no_token_is_closed_with_4401(live_hospital):
    communicator = await open_socket(None)
    connected, _ = await communicator.connect()
    assert connected
    await assert_closed(communicator, protocol.CLOSE_UNAUTHENTICATED)
    await finish(communicator)


async def test_bad_token_is_closed_with_4401(live_hospital):
    for token in ("not-a-token", "", "x" * 300):
        communicator = await open_socket(token)
        connected, _ = await communicator.connect()
        assert connected
        await assert_closed(communicator, protocol.CLOSE_UNAUTHENTICATED)
        await finish(communicator)


async def test_revoked_token_is_closed_with_4401(live_hospital):
    from accounts.models import AuthSession

    token = await token_for(live_hospital.surgeon_bob)
    await AuthSession.objects.filter(user=live_hospital.surgeon_bob).aupdate(
        revoked_at=timezone.now()
    )
    communicator = await open_socket(token)
    connected, _ = await communicator.connect()
    assert connected
    await assert_closed(communicator, protocol.CLOSE_UNAUTHENTICATED)
    await finish(communicator)


async def test_wrong_origin_is_rejected_at_handshake(live_hospital):
    token = await token_for(live_hospital.surgeon_bob)
    for origin in (
        b"http://evil.example",
        b"https://127.0.0.1:8000",  # right host, wrong scheme
        b"http://127.0.0.1:8001",  # right host, wrong port
        b"null",
        None,
    ):
        communicator = await open_socket(token, origin=origin)
        connected, _ = await communicator.connect()
        assert not connected, origin
        await finish(communicator)
    # The same token from an allowed origin is let in.
    bob, _ = await connect_with(token)
    await assert_alive(bob)
    await bob.disconnect()


async def test_error_frames_echo_a_long_id_truncated(live_hospital):
    bob, _ = await connect_as(live_hospital.surgeon_bob)
    await bob.send_json_to({"type": "ping", "id": "i" * 100})
    error = await recv(bob)
    assert error["code"] == "invalid_frame"
    assert error["id"] == "i" * 64
    reply = await request(bob, {"type": "ping"})
    assert reply["type"] == "ack"
    await bob.disconnect()


async def test_a_rate_limited_reply_names_its_frame(live_hospital, settings):
    """A throttled request fails at once with its own id, so a client is not left waiting."""
    settings.ROUNDS_WS_RATE_PER_SECOND = 0.01
    settings.ROUNDS_WS_RATE_BURST = 1
    bob, _ = await connect_as(live_hospital.surgeon_bob)
    await assert_alive(bob)
    reply = await expect_refused(bob, {"type": "ping"}, "rate_limited")
    assert reply["id"].startswith("f")
    await bob.disconnect()


async def test_oversized_and_malformed_frames_are_charged_too(live_hospital, settings):
    settings.ROUNDS_WS_RATE_PER_SECOND = 0.01
    settings.ROUNDS_WS_RATE_BURST = 2
    settings.ROUNDS_WS_MAX_FRAME_BYTES = 1024
    bob, _ = await connect_as(live_hospital.surgeon_bob)
    await bob.send_to(text_data="x" * 2048)
    assert (await recv(bob))["code"] == "frame_too_large"
    await bob.send_to(text_data="{not json")
    assert (await recv(bob))["code"] == "invalid_json"
    await expect_refused(bob, {"type": "ping"}, "rate_limited")
    await bob.disconnect()


@pytest.mark.slow
async def test_the_socket_closes_when_its_login_expires(live_hospital):
    from accounts.models import AuthSession

    token = await token_for(live_hospital.surgeon_bob)
    soon = timezone.now() + timedelta(seconds=0.5)
    await database_sync_to_async(AuthSession.objects.update)(expires_at=soon)
    bob, _ = await connect_with(token)
    await assert_closed(bob, protocol.CLOSE_UNAUTHENTICATED)
    await bob.disconnect()


async def test_deactivating_an_account_closes_its_sockets(live_hospital):
    bob_user = live_hospital.surgeon_bob
    bob, _ = await connect_as(bob_user)
    bob_user.is_active = False
    await database_sync_to_async(bob_user.save)()
    await assert_closed(bob, protocol.CLOSE_UNAUTHENTICATED)
    await bob.disconnect()


def test_every_stored_event_is_delivered_as_a_frame_of_its_own_name():
    outbound_types = {
        name
        for model in get_args(get_args(outbound.OutboundFrame)[0])
        for name in get_args(model.model_fields["type"].annotation)
    }
    assert {kind.value for kind in EventKind} <= outbound_types
    assert "typing" in outbound_types - {kind.value for kind in EventKind}
