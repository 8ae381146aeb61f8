"""A device revoked from another one, on real daphne processes (two with Redis, as in CI on
PostgreSQL + Redis; one on SQLite): Alice's tablet has its socket open on one process, she
revokes it from her phone on the other; the tablet's socket closes at once (4401), its
bearer token is refused, and her phone's login and socket go on (accounts/devices.py)."""

import asyncio
import contextlib
import os
from collections.abc import Iterator

import pytest

from tests.live.sdk import query, signed_in
from tests.live.servers import LiveCluster, live_cluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LiveCluster]:
    with live_cluster(2 if os.environ.get("REDIS_URL") else 1) as running:
        yield running


async def test_a_revoked_device_is_cut_off_on_every_process(cluster):
    async with contextlib.AsyncExitStack() as stack:
        tablet = await stack.enter_async_context(signed_in(cluster.servers[-1], "nurse_alice"))
        phone = await stack.enter_async_context(signed_in(cluster.servers[0], "nurse_alice"))
        listed = await phone.devices()
        assert len(listed) == 2 and [d["current"] for d in listed].count(True) == 1
        [other] = [d for d in listed if not d["current"]]

        await phone.revoke_device(other["id"])
        assert await asyncio.wait_for(tablet.closed, 10) == 4401
        with pytest.raises(Exception) as refused:
            await tablet.departments()
        assert getattr(refused.value, "code", None) == "not_authenticated"
        assert [d["current"] for d in await phone.devices()] == [True]
        await phone.request({"type": "ping"})  # its socket still answers
        audited = query(
            cluster,
            "SELECT action FROM audit_auditevent WHERE object_type = 'auth_session' "
            "AND object_id = ? ORDER BY id",
            (str(other["id"]),),
        )
        assert ("device.revoked",) in audited
