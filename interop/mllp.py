"""The ADT listener: MLLP over TCP (python-hl7's asyncio streams), one ACK per message.

A connection is a conversation with the patient administration system: it sends
a message, waits for its acknowledgement, sends the next. Each message is handled
in a worker thread (the database is synchronous) and acknowledged before the next
is read, so a connection's messages are applied in the order they were sent. A frame cut by the
connection closing is dropped unapplied (its sender had no ACK, and sends it
again); a frame that does not begin with MLLP's start byte, or is over
`ROUNDS_ADT_MAX_BYTES`, is answered AR and the connection closed, since the
framing can no longer be trusted.
"""

import asyncio
import logging
from typing import Any

import hl7.mllp
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from interop.adt import Answer, Rejected, _bare_ack, handle

log = logging.getLogger(__name__)


def handle_in_thread(raw: bytes, peer: str) -> Answer:
    """`handle`, with the database connection kept healthy as a request's would be."""
    close_old_connections()
    try:
        return handle(raw, peer)
    finally:
        close_old_connections()


def ack_bytes(answer: Answer) -> bytes:
    return answer.ack.encode("ascii", "replace")


async def converse(reader: Any, writer: Any) -> None:
    peer = writer.get_extra_info("peername")
    name = f"{peer[0]}:{peer[1]}" if peer else "unknown"
    try:
        while True:
            try:
                raw = await reader.readblock()
            except asyncio.IncompleteReadError:
                return  # closed, possibly mid-frame: nothing was applied
            except (hl7.mllp.InvalidBlockError, ValueError) as broken:
                reason = (
                    "the frame does not begin with MLLP's start byte (0x0B)"
                    if isinstance(broken, hl7.mllp.InvalidBlockError)
                    else f"the message is over {settings.ROUNDS_ADT_MAX_BYTES} bytes"
                )
                log.warning("adt: refused a frame from %s: %s", name, reason)
                writer.writeblock(_bare_ack("AR", Rejected(reason, "100")).encode())
                await writer.drain()
                return
            # Connections apply side by side (one database connection per worker thread);
            # each keeps its order, since its sender waits for the ACK before the next.
            answer = await sync_to_async(handle_in_thread, thread_sensitive=False)(raw, name)
            if answer.code != "AA":
                log.warning("adt: %s from %s: %s", answer.code, name, answer.reason)
            writer.writeblock(ack_bytes(answer))
            await writer.drain()
    except ConnectionError:
        return
    finally:
        writer.close()


async def serve(host: str, port: int) -> asyncio.Server:
    """Listen; the server is returned started (`serve_forever` to keep it)."""
    server: asyncio.Server = await hl7.mllp.start_hl7_server(
        converse, host, port, limit=settings.ROUNDS_ADT_MAX_BYTES
    )
    return server
