"""A streamed response's pieces read one at a time under ASGI, as they are sent.

Under ASGI, Django reads a StreamingHttpResponse built from a sync iterator into a
list before sending it (StreamingHttpResponse.__aiter__): a whole blob or report in
memory. Handing it this async iterator instead reads each piece in a thread, only
when the previous one has gone.
"""

from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async


async def piece_by_piece(
    pieces: Iterator[bytes], *, thread_sensitive: bool
) -> AsyncIterator[bytes]:
    """Each piece of `pieces` read in a thread: the request's own (`thread_sensitive`, for
    pieces read from the database on its connection) or any worker (storage I/O). The
    iterator is closed at the end, or when the client goes away."""
    step = sync_to_async(_next_or_none, thread_sensitive=thread_sensitive)
    try:
        while (piece := await step(pieces)) is not None:
            yield piece
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            await sync_to_async(close, thread_sensitive=thread_sensitive)()


def _next_or_none(pieces: Iterator[bytes]) -> bytes | None:
    return next(pieces, None)
