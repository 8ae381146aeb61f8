"""Sockets through the full ASGI stack (origin check, session, auth), as a browser opens them,
and the frames on them: every server frame is validated against core/outbound.py."""

import asyncio
import itertools
from typing import Any

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from core import outbound
from tests.support.api import issue_token

ORIGIN = b"http://127.0.0.1:8000"


async def open_socket(token: str | None, origin: bytes | None = ORIGIN, path: str = "/ws/"):
    """A WebsocketCommunicator through the full stack (origin check, session, auth)."""
    from rounds.asgi import application

    headers = []
    if origin is not None:
        headers.append((b"origin", origin))
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def connect(token: str):
    """Open, assert the hello frame, return (communicator, hello)."""
    communicator = await open_socket(token)
    connected, _ = await communicator.connect()
    assert connected
    hello = await communicator.receive_json_from(timeout=5)
    assert hello["type"] == "hello", hello
    return communicator, hello


_ids = itertools.count(1)


def next_id(prefix: str = "f") -> str:
    return f"{prefix}{next(_ids)}"


async def token_for(user) -> str:
    return await database_sync_to_async(issue_token)(user)


async def connect_with(token: str):
    """A socket through the full ASGI stack, past its (validated) hello."""
    communicator, hello = await connect(token)
    outbound.validate_outbound(hello)
    return communicator, hello


async def connect_as(user):
    """A socket for a new login of `user`: (communicator, hello)."""
    return await connect_with(await token_for(user))


async def recv(communicator, timeout: float = 5) -> dict[str, Any]:
    """The next frame, checked against its outbound schema (STYLE.md rule 3)."""
    frame = await communicator.receive_json_from(timeout=timeout)
    outbound.validate_outbound(frame)
    return frame


async def recv_many(communicator, count: int) -> list[dict[str, Any]]:
    return [await recv(communicator) for _ in range(count)]


async def request(communicator, frame: dict[str, Any]) -> dict[str, Any]:
    """Send a client frame (an id is added) and return its ack or error, which must come next."""
    frame = {"id": next_id(), **frame}
    await communicator.send_json_to(frame)
    reply = await recv(communicator)
    assert reply["type"] in ("ack", "error"), reply
    assert reply["id"] == frame["id"], reply
    return reply


async def ok(communicator, frame: dict[str, Any]) -> dict[str, Any]:
    reply = await request(communicator, frame)
    assert reply["type"] == "ack", reply
    return reply["result"]


async def expect_refused(communicator, frame: dict[str, Any], code: str) -> dict[str, Any]:
    reply = await request(communicator, frame)
    assert reply["type"] == "error", reply
    assert reply["code"] == code, reply
    return reply


async def resume(communicator, cursor: dict[str, int]) -> tuple[list[dict], dict]:
    """Send `resume`; return the replayed frames and the ack that ends them."""
    frame_id = next_id("resume")
    await communicator.send_json_to({"type": "resume", "id": frame_id, "cursor": cursor})
    replayed = []
    while True:
        frame = await recv(communicator)
        if frame["type"] in ("ack", "error"):
            assert frame["type"] == "ack" and frame["id"] == frame_id, frame
            return replayed, frame["result"]
        replayed.append(frame)


async def assert_alive(communicator) -> None:
    """The socket is still open and serving: a ping gets its ack."""
    result = await ok(communicator, {"type": "ping"})
    assert "server_time" in result


async def assert_closed(communicator, code: int) -> None:
    output = await communicator.receive_output(timeout=5)
    assert output["type"] == "websocket.close", output
    assert output.get("code") == code, output


async def finish(communicator) -> None:
    """Disconnect a socket the server already closed or refused.

    Its application is left waiting on the channel layer (with Redis, a
    blocking pop); the default one-second grace before it is cancelled only
    slows the suite down.
    """
    await communicator.disconnect(timeout=0.2)


async def assert_quiet(*communicators) -> None:
    """Nothing more arrives on any of these sockets (watched together, 0.3 s)."""
    quiet = await asyncio.gather(*(c.receive_nothing(timeout=0.3) for c in communicators))
    assert all(quiet), quiet


def post_frame(
    body: dict, *, thread: int | None = None, client_msg_id: str | None = None
) -> dict[str, Any]:
    """A message.post frame carrying the envelope `body` (see tests.support.sealed).

    Its thread and client_msg_id are the ones the envelope is bound to,
    unless given here (to post an envelope where it does not belong).
    """
    header = body.get("header") if isinstance(body, dict) else None
    header = header if isinstance(header, dict) else {}
    return {
        "type": "message.post",
        "thread": header.get("thread") if thread is None else thread,
        "client_msg_id": header.get("client_msg_id") if client_msg_id is None else client_msg_id,
        "envelope": body,
    }


async def post(communicator, body: dict) -> dict:
    """Post a sealed envelope as a member: the ack, then the sender's own copy of message.new."""
    result = await ok(communicator, post_frame(body))
    echo = await recv(communicator)
    assert echo["type"] == "message.new", echo
    assert echo["message"]["id"] == result["message_id"]
    return result


def _counts() -> dict[str, int]:
    from chat.models import Event, Message, Receipt

    return {
        "messages": Message.objects.count(),
        "events": Event.objects.count(),
        "receipts": Receipt.objects.count(),
    }


async def stored_counts() -> dict[str, int]:
    return await database_sync_to_async(_counts)()
