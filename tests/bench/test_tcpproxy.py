"""The faults scenario's TCP proxy (bench/tcpproxy.py), in front of an echo server.

Bytes go through whole and in order whatever the delays; a delay is added
each way; a cut resets both sides at once and is counted; random cuts reach
their count; a half-close goes through.
"""

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from bench.tcpproxy import CuttingProxy

pytestmark = pytest.mark.timeout(30)


class Echo:
    """An echo server that remembers how each connection ended."""

    def __init__(self) -> None:
        self.endings: list[str] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            self.endings.append("eof")
            writer.close()
        except ConnectionResetError:
            self.endings.append("reset")

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    echo = Echo()
    echo.server = await asyncio.start_server(echo.handle, "127.0.0.1", 0)
    yield echo
    echo.server.close()


@pytest.fixture
async def proxy(echo: Echo) -> AsyncIterator[CuttingProxy]:
    proxy = CuttingProxy(echo.port, seed=12)
    await proxy.start()
    yield proxy
    await proxy.close()


async def connect(proxy: CuttingProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def test_bytes_go_through_whole_and_in_order_under_random_delays(proxy: CuttingProxy):
    proxy.delay = (0.0, 0.02)
    reader, writer = await connect(proxy)
    chunks = [f"{n:04d};".encode() for n in range(300)]
    for chunk in chunks:
        writer.write(chunk)
        await writer.drain()
        await asyncio.sleep(0)  # separate reads at the proxy: each gets its own delay

    echoed = await asyncio.wait_for(reader.readexactly(sum(map(len, chunks))), 10)

    assert echoed == b"".join(chunks)
    writer.close()


async def test_a_delay_is_added_each_way(proxy: CuttingProxy):
    proxy.delay = (0.05, 0.05)
    reader, writer = await connect(proxy)
    started = time.monotonic()
    writer.write(b"x")

    assert await asyncio.wait_for(reader.readexactly(1), 5) == b"x"
    assert time.monotonic() - started >= 0.1
    writer.close()


async def test_a_cut_resets_the_client_and_the_upstream_connection(proxy: CuttingProxy, echo: Echo):
    reader, writer = await connect(proxy)
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
    (link,) = proxy.links

    assert proxy.cut(links=[link]) == 1

    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(1), 5)
    for _ in range(100):
        if echo.endings:
            break
        await asyncio.sleep(0.01)
    assert echo.endings == ["reset"]
    assert proxy.cuts == 1
    assert not proxy.links


async def test_random_cuts_reach_their_count(proxy: CuttingProxy):
    sockets = [await connect(proxy) for _ in range(3)]
    for _, writer in sockets:
        writer.write(b"a")
    for reader, _ in sockets:
        await asyncio.wait_for(reader.readexactly(1), 5)

    made = await asyncio.wait_for(proxy.cut_randomly(3, mean_interval=0.01), 5)

    assert made == proxy.cuts == 3
    assert not proxy.links


async def test_cutting_with_no_client_coming_back_stops_and_says_so(proxy: CuttingProxy):
    reader, writer = await connect(proxy)
    writer.write(b"a")
    await asyncio.wait_for(reader.readexactly(1), 5)  # through: the link is open

    with pytest.raises(RuntimeError, match="stopped reconnecting"):
        await asyncio.wait_for(proxy.cut_randomly(3, mean_interval=0.01, stall=0.3), 5)
    assert proxy.cuts == 1


async def test_a_half_close_goes_through(proxy: CuttingProxy, echo: Echo):
    reader, writer = await connect(proxy)
    writer.write(b"last words")
    writer.write_eof()

    assert await asyncio.wait_for(reader.read(), 5) == b"last words"  # then EOF
    assert echo.endings == ["eof"]
    writer.close()
