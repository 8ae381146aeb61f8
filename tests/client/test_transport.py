"""The SDK's socket against a scripted server: requests given up on, resumes that fail.

A small `websockets` server plays the server's side: a hello, then answers
as each test scripts them (late, or refusing a resume while pushing live
events), so what the client does with them can be checked exactly.
"""

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable

import pytest
import websockets

from client.errors import RoundsClientError
from client.transport import Connection

HELLO = {"type": "hello", "cursor": {"3": 10}, "departments": [], "limits": {}}


@contextlib.asynccontextmanager
async def scripted(answer: Callable[[dict, websockets.ServerConnection], Awaitable[None]]):
    """A server that says hello, then hands every frame to `answer`."""

    async def handler(socket: websockets.ServerConnection) -> None:
        await socket.send(json.dumps(HELLO))
        async for raw in socket:
            await answer(json.loads(raw), socket)

    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = Connection(f"http://127.0.0.1:{port}", timeout=0.3)
        client.token = "t"
        try:
            yield client
        finally:
            await client.aclose()


@pytest.mark.slow
async def test_a_request_given_up_on_leaves_nothing_behind():
    async def late(frame: dict, socket) -> None:
        await asyncio.sleep(0.6)  # after the client's timeout
        await socket.send(json.dumps({"type": "ack", "id": frame["id"], "result": {}}))

    async with scripted(late) as client:
        await client.connect()
        with pytest.raises(RoundsClientError) as refused:
            await client.request({"type": "ping"})
        assert refused.value.code == "timeout"
        assert client._pending == {}
        await asyncio.sleep(0.5)  # the late ack arrives: dropped, not taken for an event
        assert client.events.empty()


async def test_a_resume_that_fails_closes_the_new_socket_and_keeps_the_cursor():
    async def refuse_resume_but_push_live(frame: dict, socket) -> None:
        if frame["type"] == "resume":
            # A live event of a later number reaches the new socket before the refusal.
            live = {"type": "typing", "department": 3, "event_seq": 42}
            await socket.send(json.dumps(live))
            await socket.send(
                json.dumps(
                    {"type": "error", "id": frame["id"], "code": "internal_error", "message": ""}
                )
            )

    async with scripted(refuse_resume_but_push_live) as client:
        await client.connect()
        client.cursor = {"3": 10}
        with pytest.raises(RoundsClientError) as refused:
            await client.reconnect()
        assert refused.value.code == "internal_error"
        # The cursor did not move past events never replayed, and the socket is gone:
        # no live frame can move it later either. The next reconnect starts from 10.
        assert client.cursor == {"3": 10}
        assert client.ws is None
        assert client.events.empty()


async def test_a_proxys_error_page_is_a_typed_error():
    """HAProxy answers 503 with an HTML page while no process is up: the SDK raises its
    own error with the status, not a JSON decoding error."""
    import httpx

    def proxy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, html="<html><body><h1>503 Service Unavailable</h1>")

    client = Connection("http://rounds.test", http_transport=httpx.MockTransport(proxy))
    with pytest.raises(RoundsClientError) as refused:
        await client.login("nurse_alice", "a password")
    assert (refused.value.code, refused.value.status) == ("server_error", 503)
    await client.aclose()
