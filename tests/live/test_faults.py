"""What a client sees when the server fails, through real daphne processes.

What only a real daphne shows: which close codes autobahn lets a server send
(1011 it refuses, leaving the socket open with nothing said), and what a
process does on SIGTERM. Faults are injected by serving
tests/live/faulty_asgi.py; SIGTERM is sent to the real process.
"""

import asyncio
import contextlib
import os
import shutil
import signal
import time
import uuid

import httpx
import pytest

from bench.services import own_redis
from client.errors import RoundsClientError
from client.transport import Connection
from tests.live.keys import LiveKeys
from tests.live.servers import DEMO_PASSWORD, LiveCluster, live_cluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

ENVELOPE = {"header": {"v": 2}, "ciphertext": "AAAAAAAAAAAAAAAAAAAAAA=="}


@pytest.fixture(scope="module")
def faulty() -> LiveCluster:
    with live_cluster(1, "tests.live.faulty_asgi:application") as running:
        yield running


@contextlib.asynccontextmanager
async def connected(cluster: LiveCluster, username: str, index: int = 0):
    client = Connection(cluster.servers[index].url, timeout=10)
    try:
        await client.login(username, DEMO_PASSWORD)
        await client.connect()
        yield client
    finally:
        await client.aclose()


async def test_a_post_the_server_fails_to_store_is_answered_and_the_socket_stays(faulty):
    async with connected(faulty, "surgeon_bob") as bob:
        started = time.monotonic()
        with pytest.raises(RoundsClientError) as refused:
            await bob.post(1, ENVELOPE, f"boom-{uuid.uuid4().hex[:8]}")
        # Answered at once, with a code that says "try again": no client timeout.
        assert time.monotonic() - started < 5
        assert refused.value.code == "internal_error"
        assert refused.value.data == {"retry": True}
        assert "server_time" in await bob.request({"type": "ping"})
        assert bob.closed is not None and not bob.closed.done()


async def test_a_handler_that_fails_closes_with_a_code_daphne_can_send(faulty):
    async with connected(faulty, "surgeon_bob") as bob:
        with pytest.raises(RoundsClientError) as refused:
            await bob.request({"type": "ping", "id": "boom-ping-1"})
        assert refused.value.code == "internal_error"
        code = await asyncio.wait_for(bob.closed, 5)
        assert code == 4500  # 1011 would never arrive: autobahn refuses to send it


async def test_sigterm_drains_posts_and_closes_sockets_with_4503(live_keys: LiveKeys):
    """A process stopped for a deploy: every post it took is acknowledged, every socket
    told "restarting" (4503), not dropped (1006); the process exits 0 in time."""
    cluster = live_keys.cluster
    server = cluster.servers[0]
    async with (
        connected(cluster, "surgeon_bob") as bob,
        connected(cluster, "nurse_alice") as alice,
    ):
        department = next(
            d["id"] for d in bob.hello["departments"] if d["name"] == "Plastic surgery"
        )
        await live_keys.ready(department, bob, alice)
        patient = (await bob.find_patients(name="le"))[0]
        thread = await bob.create_thread(department, patient["id"], "Drain check")
        posts = [asyncio.ensure_future(live_keys.post(bob, thread)) for _ in range(20)]
        await asyncio.sleep(0.05)
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        answers = await asyncio.gather(*posts, return_exceptions=True)
        acked = [a for a in answers if not isinstance(a, BaseException)]
        refused = [a for a in answers if isinstance(a, BaseException)]
        # Posts taken before the drain are acknowledged; any sent after the socket
        # closed are refused as closed (never silently lost, never hanging).
        assert acked, answers
        assert all(isinstance(e, RoundsClientError) and e.code == "closed" for e in refused)
        assert await asyncio.wait_for(bob.closed, 15) == 4503
        assert await asyncio.wait_for(alice.closed, 15) == 4503
        assert server.process.wait(timeout=15) == 0
        assert time.monotonic() - started < 15
    cluster.restart(server)


async def test_sigterm_takes_the_process_out_of_rotation_before_closing_its_sockets(cluster):
    """/healthz turns 503 at once, while the open sockets keep working for the drain
    grace: the load balancer's next check sees the process leave before its clients,
    told 4503, come back looking for another one."""
    server = cluster.servers[0]
    async with connected(cluster, "surgeon_bob") as bob, httpx.AsyncClient() as http:
        server.process.send_signal(signal.SIGTERM)
        statuses = []
        for _ in range(100):
            answer = await http.get(server.url + "/healthz", timeout=5)
            statuses.append(answer.status_code)
            if answer.status_code == 503:
                break
            await asyncio.sleep(0.01)
        assert statuses[-1] == 503, statuses
        assert answer.json()["status"] == "draining"
        assert "server_time" in await bob.request({"type": "ping"})  # still served
        assert await asyncio.wait_for(bob.closed, 15) == 4503
    assert server.process.wait(timeout=15) == 0
    cluster.restart(server)


@pytest.fixture(scope="module")
def cluster() -> LiveCluster:
    """One process: the drain test restarts it."""
    with live_cluster(1) as running:
        yield running


@pytest.fixture
def own_redis_server():
    """A redis-server of this test's own, to restart (never the machine's)."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; CI needs it")
        pytest.skip("redis-server is not installed")
    with own_redis() as redis:
        yield redis


def test_healthz_says_ok_again_once_a_restarted_redis_is_back(own_redis_server):
    """The layer check once cancelled its own `receive` on a timeout, which the pub/sub
    layer takes for a consumer leaving: after a Redis restart every later check failed,
    and the load balancer's view of the process with it."""
    with live_cluster(1, redis_url=own_redis_server.url) as running:
        url = running.servers[0].url + "/healthz"
        assert httpx.get(url, timeout=10).json()["channel_layer"]["ok"] is True
        own_redis_server.stop()
        down = httpx.get(url, timeout=10)
        assert down.status_code == 200  # still serving, through the sweep
        assert down.json()["status"] == "degraded"
        own_redis_server.start()
        first_after = httpx.get(url, timeout=10).json()  # may still miss its answer
        statuses = [first_after["status"]]
        deadline = time.monotonic() + 20
        while statuses[-1] != "ok" and time.monotonic() < deadline:
            time.sleep(0.2)
            statuses.append(httpx.get(url, timeout=10).json()["status"])
        assert statuses[-1] == "ok", statuses
