"""Sockets through the full ASGI stack (origin check, session, auth), as a browser opens them."""

from channels.testing import WebsocketCommunicator

ORIGIN = b"http://127.0.0.1:8000"


async def open_socket(token: str | None, origin: bytes | None = ORIGIN, path: str = "/ws/"):
    """A WebsocketCommunicator through the full stack (origin check, session, auth)."""
    from channels.db import database_sync_to_async  # noqa: F401

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
