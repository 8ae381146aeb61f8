"""Structured logs (rounds/logs.py): JSON lines that parse, carry the request or socket id,
and hold no content: no envelope, no ciphertext, no password, no token."""

import io
import json
import logging

import pytest
from django.db import OperationalError
from django.test import Client

from chat import actions as chat_actions
from chat.consumers import batching
from rooms import actions as room_actions
from rounds.logs import JsonFormatter, bind
from tests.support import PASSWORD, issue_token, sealed
from tests.support.sockets import (
    assert_closed,
    connect_with,
    finish,
    post,
    post_frame,
    recv,
    token_for,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def json_log():
    """What the root logger writes in JSON while the test runs: a function that returns
    (the raw text, the parsed records)."""
    # Its first import runs django.setup() again, which configures logging anew and would
    # drop this handler: import it before.
    import rounds.asgi  # noqa: F401

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)

    def read() -> tuple[str, list[dict]]:
        text = stream.getvalue()
        return text, [json.loads(line) for line in text.splitlines()]

    yield read
    root.removeHandler(handler)


def test_a_record_is_one_json_line_with_its_ids(json_log):
    logger = logging.getLogger("rounds.test")
    bind(socket="a1b2c3d4e5f6")
    logger.warning("joining %s failed", "dept.3")
    try:
        raise ConnectionError("layer away")
    except ConnectionError:
        logger.exception("publishing failed")
    logging.getLogger("channels_redis.pubsub").error("a library's own background task")
    bind()
    logger.info("untied")
    _, (joined, failed, library, untied) = json_log()
    assert joined["level"] == "WARNING"
    assert joined["logger"] == "rounds.test"
    assert joined["message"] == "joining dept.3 failed"
    assert joined["socket"] == "a1b2c3d4e5f6"
    assert isinstance(joined["pid"], int)
    assert joined["time"].endswith("+00:00")
    assert failed["exc_type"] == "ConnectionError"
    assert "Traceback" in failed["exc"]
    assert failed["socket"] == "a1b2c3d4e5f6"
    assert "socket" not in untied
    assert "socket" not in library  # its task may have been started for another socket


def test_a_request_takes_the_load_balancers_id_or_gets_one(json_log):
    given = Client().get("/no-such-page", HTTP_X_REQUEST_ID="lb-7f3a-0001")
    assert given["X-Request-ID"] == "lb-7f3a-0001"
    made = Client().get("/no-such-page", HTTP_X_REQUEST_ID="not an id\n{}")
    assert made["X-Request-ID"] != "not an id\n{}"
    assert len(made["X-Request-ID"]) == 12
    _, records = json_log()
    not_found = [r for r in records if r["logger"] == "django.request"]
    assert [r["request"] for r in not_found] == ["lb-7f3a-0001", made["X-Request-ID"]]
    assert all(r["status"] == 404 for r in not_found)


def test_a_failed_sign_in_and_a_server_error_log_no_password_and_no_token(
    live_hospital, json_log, monkeypatch
):
    h = live_hospital
    wrong_password = "not-" + PASSWORD
    refused = Client().post(
        "/api/auth/login",
        {"username": "surgeon_bob", "password": wrong_password},
        content_type="application/json",
    )
    assert refused.status_code == 401

    def fail(*args, **kwargs):
        raise RuntimeError("injected: a bug")

    monkeypatch.setattr(room_actions, "list_my_departments", fail)
    token = issue_token(h.nurse_alice)
    failed = Client(raise_request_exception=False).get(
        "/api/departments", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_REQUEST_ID="lb-500"
    )
    assert failed.status_code == 500
    text, records = json_log()
    error = next(r for r in records if r.get("status") == 500)
    assert error["level"] == "ERROR"
    assert error["request"] == "lb-500"
    assert error["exc_type"] == "RuntimeError"
    assert any(r.get("status") == 401 for r in records)
    for secret in (wrong_password, PASSWORD, token):
        assert secret not in text


async def test_a_post_and_a_failing_post_log_their_socket_and_no_content(
    live_hospital, json_log, monkeypatch
):
    h = live_hospital
    token = await token_for(h.surgeon_bob)
    bob, _ = await connect_with(token)
    stored = sealed(h, "surgeon_bob", h.thread, "bob-logs-0001")
    await post(bob, stored)

    def database_away(posts):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(batching, "check_post_messages", database_away)
    lost = sealed(h, "surgeon_bob", h.thread, "bob-logs-0002")
    await bob.send_json_to({"id": "p2", **post_frame(lost)})
    reply = await recv(bob)
    assert reply["code"] == "internal_error"

    def handler_bug(*args, **kwargs):
        raise ValueError("injected: a bug")

    monkeypatch.setattr(chat_actions, "check_history", handler_bug)
    await bob.send_json_to({"id": "h1", "type": "history.fetch", "thread": h.thread.pk})
    assert (await recv(bob))["code"] == "internal_error"
    await assert_closed(bob, 4500)
    await finish(bob)

    text, records = json_log()
    opened = next(r for r in records if r["message"].startswith("socket open"))
    socket_id = opened["socket"]
    failed_post = next(r for r in records if r["message"].startswith("storing a post failed"))
    assert failed_post["socket"] == socket_id
    assert failed_post["exc_type"] == "OperationalError"
    failed_handler = next(r for r in records if r["message"].startswith("websocket handler"))
    assert failed_handler["socket"] == socket_id
    assert failed_handler["exc_type"] == "ValueError"
    for envelope in (stored, lost):
        assert envelope["ciphertext"] not in text
        assert envelope["header"]["sig"] not in text
    assert token not in text
