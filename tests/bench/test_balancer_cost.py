"""The harness behind HAProxy (bench/lb_cost.py, bench/stack.py `through_balancer`), and
what it reads of the machine's CPU (bench/cpu.py)."""

import pytest

from bench import cpu
from bench.lb_cost import run_lb_cost
from bench.stack import start_floor, start_stack, through_balancer, uvicorn_command
from tests.bench.test_faults import haproxy_installed, needs


def test_the_cpu_reading_names_each_kind_of_process():
    assert cpu._kind("/x/python -m rounds.serve -b 127.0.0.1") == "daphne (Rounds)"
    assert cpu._kind("/x/python -m uvicorn bench.floor.asgi:application") == "uvicorn (floor)"
    assert cpu._kind("/x/python -m bench run latency --server uvicorn") == "benchmark clients"
    assert cpu._kind("/usr/bin/python3 -c pass") is None
    assert all(value >= 0 for value in cpu.spent(cpu.snapshot(), 0.5).values())


def test_uvicorn_serves_the_application_it_is_given():
    command = uvicorn_command(8123, "rounds.asgi:application")
    assert command[1:4] == ["-m", "uvicorn", "rounds.asgi:application"]
    assert "8123" in command


@pytest.mark.live
@pytest.mark.services
@pytest.mark.timeout(300)
def test_through_haproxy_and_direct_nothing_is_lost():
    needs(haproxy_installed(), "HAProxy")
    with start_stack(2, True, {"ROUNDS_WS_RATE_PER_SECOND": "1000000"}) as stack:
        figures = run_lb_cost(stack, count=20, total=100)
    assert figures["lost"] == figures["duplicates"] == 0
    assert figures["direct_p50_ms"] > 0 and figures["haproxy_p50_ms"] > 0
    assert figures["direct_msg_per_s"] > 0 and figures["haproxy_msg_per_s"] > 0


@pytest.mark.live
@pytest.mark.services
@pytest.mark.timeout(120)
def test_the_floor_behind_haproxy_is_reached_through_it():
    needs(haproxy_installed(), "HAProxy")
    with start_floor(2, True, balanced=True) as floor:
        assert floor.balancer is not None and floor.balancer.all_up()
        balanced = through_balancer(floor)
        assert balanced.urls == [floor.balancer.url] * 2
        assert balanced.description.endswith("via HAProxy")


@pytest.mark.live
@pytest.mark.services
@pytest.mark.timeout(180)
def test_with_the_process_mode_the_deployments_sealer_runs_beside_it_and_seals():
    """`bench run --services` measures the deployment docs/operations.md describes for
    several processes: its audit sealer in a process of its own, which seals what the
    serving processes write (they seal nothing themselves in this mode)."""
    import asyncio
    import re
    import time
    import urllib.request

    from bench import messaging

    def unsealed() -> float:
        text = urllib.request.urlopen(stack.urls[0] + "/metrics", timeout=10).read().decode()
        return float(re.search(r"^rounds_audit_unsealed_entries (\S+)$", text, re.M)[1])

    needs(haproxy_installed(), "HAProxy")
    env = {**messaging.BENCH_LIMITS, "ROUNDS_AUDIT_SEALER": "process"}
    with start_stack(2, True, env) as stack:
        [sealer] = stack.helpers
        asyncio.run(messaging.run_latency(stack.urls, count=20, var_dir=stack.var_dir))
        deadline = time.monotonic() + 20
        while (left := unsealed()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert left == 0
        assert sealer.poll() is None
    assert sealer.returncode == 0  # SIGTERM: stopped between rounds or its round rolled back
