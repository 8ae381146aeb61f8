"""The ADT listener: MLLP over TCP (python-hl7's asyncio streams), one ACK per message.

A connection is a conversation with the patient administration system: it sends
a message, waits for its acknowledgement, sends the next. Each message is handled
in a worker thread (the database is synchronous) and acknowledged once committed,
in the order sent. A sender that pipelines (sends on before its ACKs, as interface
engines may) has the messages already waiting taken together, up to `BATCH`: each
still applied whole or not at all, one commit for them all before their ACKs. A frame cut by the
connection closing is dropped unapplied (its sender had no ACK, and sends it
again); a frame that does not begin with MLLP's start byte, or is over
`ROUNDS_ADT_MAX_BYTES`, is answered AR and the connection closed, since the
framing can no longer be trusted.
"""

import asyncio
import logging
from typing import Any

import hl7.mllp
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction

from interop.adt import Answer, Rejected, _bare_ack, handle

log = logging.getLogger(__name__)


# Messages already waiting on a connection taken together, at most (see `waiting`).
BATCH = 64
_FRAME_END = b"\x1c\r"


def handle_in_thread(raws: list[bytes], peer: str) -> list[Answer]:
    """`handle` each message in order, in one outer transaction: each message is still
    applied whole or not at all (its own savepoint), and one commit makes them all
    durable before any is acknowledged. It runs as Channels runs a consumer's database
    calls: a connection found broken or past its age is replaced before, and after. With
    PostgreSQL's pool (no age) the connection goes back to the pool after each batch:
    a worker thread that kept one would take it with it when its event loop's executor
    is shut down, and the pool would run dry."""
    if len(raws) == 1:
        return [handle(raws[0], peer)]  # its own transaction: no outer one, no savepoint
    with transaction.atomic():
        return [handle(raw, peer) for raw in raws]


def waiting(reader: Any) -> bool:
    """Whether another whole frame is already in the connection's buffer: a sender that
    pipelines (sends before the previous ACK) has its messages committed together."""
    return _FRAME_END in reader._buffer  # asyncio.StreamReader's buffer, read-only here


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
            raws = [raw]
            while len(raws) < BATCH and waiting(reader):
                raws.append(await reader.readblock())
            # Connections apply side by side (one database connection per worker thread);
            # each keeps its order: a batch is applied in order, its ACKs sent in order.
            answers = await database_sync_to_async(handle_in_thread, thread_sensitive=False)(
                raws, name
            )
            for answer in answers:
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
