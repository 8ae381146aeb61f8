"""A TCP proxy that delays bytes and cuts connections: the network of the faults scenario.

Every client of bench/faults.py reaches the load balancer through it. It
forwards each direction in order, each chunk held back by a random delay
drawn from `delay` (later chunks never overtake earlier ones), and `cut()`
resets chosen or random connections at once, on both sides (SO_LINGER 0: a
RST, as a Wi-Fi hand-over or a NAT timeout looks to the client, not a FIN).
A connection may be cut at any stage: in its TCP handshake's wake, in the
WebSocket upgrade, with a post in flight, during a resume.
"""

import asyncio
import contextlib
import random
import socket
import struct


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a RST rather than a FIN, dropping whatever was not sent."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Link:
    """One client connection and its upstream one."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream
        self.cut = False

    def reset(self) -> None:
        self.cut = True
        reset(self.client)
        reset(self.upstream)


class CuttingProxy:
    """Listens on `port` (0: any) and forwards to `upstream_port` on loopback."""

    def __init__(self, upstream_port: int, port: int = 0, seed: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.port = port
        self.random = random.Random(seed)
        # Extra delay per chunk, drawn uniformly from this range (seconds).
        self.delay: tuple[float, float] = (0.0, 0.0)
        self.links: set[Link] = set()
        self.handlers: set[asyncio.Task] = set()
        self.accepted = 0
        self.cuts = 0
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and reset every connection still open; their handlers end."""
        if self.server is not None:
            self.server.close()
        for link in list(self.links):
            link.reset()
        if self.handlers:
            await asyncio.wait(self.handlers, timeout=5)
        if self.server is not None:
            await self.server.wait_closed()

    def cut(self, count: int = 1, links: list[Link] | None = None) -> int:
        """Reset `links`, or `count` open connections chosen at random; how many were cut."""
        chosen = links if links is not None else list(self.links)
        if links is None:
            chosen = self.random.sample(chosen, min(count, len(chosen)))
        for link in chosen:
            link.reset()
            self.links.discard(link)
        self.cuts += len(chosen)
        return len(chosen)

    async def cut_randomly(self, total: int, mean_interval: float, stall: float = 30.0) -> int:
        """Cut one random open connection at a time, `total` times, at random intervals
        (exponential, `mean_interval` on average); waits while there is none open, but
        not longer than `stall` seconds in a row (the clients stopped coming back)."""
        loop = asyncio.get_running_loop()
        made = 0
        last = loop.time()
        while made < total:
            await asyncio.sleep(self.random.expovariate(1 / mean_interval))
            if self.cut(1):
                made += 1
                last = loop.time()
            elif loop.time() - last > stall:
                raise RuntimeError(
                    f"no client connection open for {stall:g} s after {made} cuts: "
                    "the clients stopped reconnecting"
                )
        return made

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        handler = asyncio.current_task()
        assert handler is not None
        self.handlers.add(handler)
        handler.add_done_callback(self.handlers.discard)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            reset(writer)
            return
        link = Link(writer, up_writer)
        self.links.add(link)
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, link), self._pump(up_reader, writer, link)
            )
        finally:
            self.links.discard(link)
            for side in (writer, up_writer):
                if not side.transport.is_closing():
                    side.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: Link
    ) -> None:
        """Forward one direction in order, each chunk after its delay; on EOF, half-close."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def forward() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof() and not writer.transport.is_closing():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        forwarding = asyncio.create_task(forward())
        last_due = 0.0
        try:
            while True:
                data = await reader.read(65536)
                low, high = self.delay
                last_due = max(last_due, loop.time() + self.random.uniform(low, high))
                queue.put_nowait((last_due, data))
                if not data:
                    break
            await forwarding
        except (ConnectionError, OSError):
            # The other side went (reset, or cut here): take this one down too.
            if not link.cut:
                link.reset()
        finally:
            forwarding.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await forwarding
