"""Advice requests end to end on real daphne processes (two when Redis joins them, as in
CI on PostgreSQL + Redis; one on SQLite with the in-memory layer), each running its own
scheduler thread: a nurse asks the demo's "On-call plastic surgeon" an urgent question;
unanswered, it escalates along the roster to the head and alerts her again; every
timer fires once whatever the number of processes, and survives the processes being
killed and restarted; acknowledgement stops it; the audit trail and the timeline agree; the socket
announces each step."""

import asyncio
import contextlib
import time
from collections.abc import Iterator

import pytest

from tests.live.sdk import (
    as_json,
    new_thread,
    plastic_surgery_with_keys,
    query,
    signed_in,
)
from tests.live.servers import LiveCluster, live_cluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(240)]

DELAY = 2.0  # seconds before an unanswered urgent request moves on


@pytest.fixture(scope="module")
def fast_cluster() -> Iterator[LiveCluster]:
    import os

    settings = {"ROUNDS_ADVICE_URGENT_SECONDS": str(DELAY), "ROUNDS_SCHEDULER_POLL_SECONDS": "0.2"}
    with live_cluster(2 if os.environ.get("REDIS_URL") else 1, settings=settings) as running:
        yield running


def timeline(cluster: LiveCluster, request_id: int) -> list[tuple]:
    return query(
        cluster,
        "SELECT s.number, s.kind, u.username, s.actor_id, s.data FROM advice_advicestep s "
        "LEFT JOIN accounts_user u ON u.id = s.holder_id WHERE s.request_id = ? ORDER BY s.number",
        (request_id,),
    )


async def wait_for_steps(cluster: LiveCluster, request_id: int, count: int, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = timeline(cluster, request_id)
        if len(steps) >= count:
            return steps
        await asyncio.sleep(0.1)
    raise AssertionError(f"{count} steps expected, got {timeline(cluster, request_id)}")


async def test_an_unanswered_urgent_request_escalates_once_per_timer_and_stops_when_taken(
    fast_cluster,
):
    cluster = fast_cluster
    async with contextlib.AsyncExitStack() as stack:
        plastic, _, bob, alice = await plastic_surgery_with_keys(cluster, stack)
        thread = await new_thread(alice, plastic, "Flap at 3 a.m.")
        [role] = [
            r for r in await alice.oncall_roles(plastic) if r["name"] == "On-call plastic surgeon"
        ]
        [on_duty] = role["on_duty"]
        # The head's socket is on the other process: she sees each step as it happens.
        carol = await stack.enter_async_context(signed_in(cluster.servers[-1], "head_carol"))

        made = await alice.ask_advice(
            thread, "Flap looks congested, can you come?", priority="urgent", to_role=role["id"]
        )
        assert made["holder"]["id"] == on_duty["id"]
        assert made["last_step"]["data"] == {"to": {"role": role["id"]}, "why": "on_duty"}
        assert made["due_at"] is not None

        # On duty, then the next shift, then the head (unless the head was one of them),
        # then the head again: one step per due timer.
        steps = await wait_for_steps(cluster, made["id"], 4, timeout=10 * DELAY + 10)
        holders = [holder for _, _, holder, _, _ in steps]
        kinds = [kind for _, kind, _, _, _ in steps]
        assert kinds[0] == "requested" and "escalated" in kinds[1:3]
        assert "head_carol" in holders
        assert all(actor is None for _, kind, _, actor, _ in steps if kind != "requested")
        due = [as_json(data)["due_at"] for _, kind, _, _, data in steps[1:]]
        assert len(due) == len(set(due)), "a timer fired twice"
        # Late by the scheduler's round at most, never early.
        for number, kind, _, _, data in steps[1:]:
            [(at,)] = query(
                cluster,
                "SELECT at FROM advice_advicestep WHERE request_id = ? AND number = ?",
                (made["id"], number),
            )
            assert str(at) >= str(as_json(data)["due_at"]).replace("T", " ")[:19], (kind, at)

        # Carol's socket got an advice.updated for each step, in order.
        seen = []
        while len(seen) < 4:
            frame = await carol.next_event("advice.updated", wait=10)
            if frame["request"]["id"] == made["id"]:
                seen.append(frame["request"]["last_step"]["number"])
        assert seen == sorted(seen) and seen[0] >= 1

        taken = await carol.acknowledge(made["id"], "call_me")
        assert (taken["status"], taken["answer"], taken["due_at"]) == (
            "acknowledged",
            "call_me",
            None,
        )
        settled = len(timeline(cluster, made["id"]))
        await asyncio.sleep(3 * DELAY)
        assert len(timeline(cluster, made["id"])) == settled

        detail = await alice.advice(made["id"])
        assert [s["kind"] for s in detail["timeline"]][-1] == "acknowledged"
        assert len(detail["timeline"]) == settled
        audited = query(
            cluster,
            "SELECT action FROM audit_auditevent WHERE object_type = 'advice_request' "
            "AND object_id = ? AND action != 'advice.viewed' ORDER BY id",
            (str(made["id"]),),
        )
        assert [a for (a,) in audited] == [f"advice.{s['kind']}" for s in detail["timeline"]]

        # A timer survives every server process being killed: it fires after the restart.
        again = await alice.ask_advice(thread, "Still congested?", to_user=bob.user["id"])
        for server in cluster.servers:
            cluster.kill(server)
        await asyncio.sleep(DELAY + 0.5)  # due while no process runs
        assert len(timeline(cluster, again["id"])) == 1
        for server in cluster.servers:
            cluster.restart(server)
        steps = await wait_for_steps(cluster, again["id"], 2, timeout=30)
        assert steps[1][1:3] == ("escalated", "head_carol")
