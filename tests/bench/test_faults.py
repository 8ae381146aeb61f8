"""The faults scenario (bench/faults.py): its short version end to end, and its parts.

The end-to-end test starts its own PostgreSQL (the server's binaries),
Redis and HAProxy and restarts them under load: it runs in the services
stage of CI (`services`), never on the embedded defaults. It asserts what
issue 12 asks, not timings of throughput: nothing lost, nothing twice, no
post left to the client's timeout, every delivery within 2 s of its ack or
of the failed part's return (the quiet ward's one post included), every
phase recovered, the drained process gone with 0.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bench import faults
from bench.balancer import TEMPLATE, haproxy_binary, render
from bench.fault_clients import Ledger
from bench.services import PG_BIN

pytestmark = pytest.mark.timeout(60)


def needs(binary: bool, what: str) -> None:
    """Skip without the binary, except in CI, which installs it (.ci/run)."""
    if not binary:
        if os.environ.get("CI"):
            pytest.fail(f"{what} is not installed; .ci/run installs it")
        pytest.skip(f"{what} is not installed")


def haproxy_installed() -> bool:
    try:
        haproxy_binary()
    except RuntimeError:
        return False
    return True


@pytest.mark.live
@pytest.mark.services
@pytest.mark.timeout(420)
def test_the_short_faults_scenario_loses_nothing_and_recovers(tmp_path: Path) -> None:
    needs(haproxy_installed(), "HAProxy")
    needs((PG_BIN / "postgres").exists(), f"PostgreSQL ({PG_BIN})")
    needs(shutil.which("redis-server") is not None, "redis-server")

    _, phases = faults.run_faults(
        faults.SMOKE, tmp_path / "logs", {"ROUNDS_LIGHT_PASSWORD_HASH": "1"}
    )

    by_fault = {phase["fault"]: phase for phase in phases}
    assert list(by_fault) == ["steady", *faults.FAULTS]
    assert faults.problems(phases) == [], (tmp_path / "logs").as_posix()
    for phase in phases:
        assert phase["sent"] > 0
        assert phase["acknowledged"] == phase["sent"]
    assert by_fault["proxy_cuts"]["cuts"] == faults.SMOKE.cuts
    drained = by_fault["daphne_sigterm"]
    assert drained["exit_code"] == 0
    assert drained["closes"].get("4503", 0) == drained["sockets_on_process"]
    quiet = by_fault["quiet_ward"]["quiet_post"]
    assert all(
        after is not None and after <= faults.BOUND_SECONDS
        for after in quiet["delivered_after_redis_back_s"].values()
    )


def test_the_template_gets_one_server_line_per_process_in_place() -> None:
    rendered = render([7001, 7002, 7003]).splitlines()

    servers = [n for n, line in enumerate(rendered) if line.lstrip().startswith("server ")]
    assert [rendered[n].split() for n in servers] == [
        ["server", "daphne1", "127.0.0.1:7001"],
        ["server", "daphne2", "127.0.0.1:7002"],
        ["server", "daphne3", "127.0.0.1:7003"],
    ]
    assert servers == list(range(servers[0], servers[0] + 3))  # together
    assert servers[0] > rendered.index("backend daphne")
    template = [line for line in TEMPLATE.read_text().splitlines() if "server daphne" not in line]
    assert [line for n, line in enumerate(rendered) if n not in servers] == template


def test_the_template_is_a_valid_haproxy_configuration(tmp_path: Path) -> None:
    needs(haproxy_installed(), "HAProxy")
    config = tmp_path / "haproxy.cfg"
    config.write_text(render([7001, 7002]))
    env = {
        **os.environ,
        "ROUNDS_LB_BIND": "127.0.0.1:7000",
        "ROUNDS_LB_HOST": "127.0.0.1",
        "ROUNDS_LB_STATS": str(tmp_path / "stats.sock"),
    }

    checked = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(config)], env=env, capture_output=True, text=True
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert TEMPLATE.read_text().count("server daphne") == 2  # the documented example


def phase_of(ledger: Ledger, name: str, returned_at: float) -> dict:
    return faults.summarize(
        ledger, {"fault": name, "started": 0.0, "returned_at": returned_at, "recovery_s": 0.5}
    )


def test_a_phase_counts_losses_duplicates_and_lateness_per_message() -> None:
    ledger = Ledger(["head_carol", "nurse_frank"])
    ledger.phase = "redis_restart"
    on_time, twice, missing, late, _unacked = (
        ledger.new(name, "surgeon_bob") for name in ("a", "b", "c", "d", "e")
    )
    for record, acked in ((on_time, 10.0), (twice, 10.0), (missing, 10.0), (late, 10.0)):
        record.acked = acked
    deliveries = {
        "head_carol": {"a": [10.1], "b": [10.1, 11.0], "c": [10.2], "d": [14.5], "e": [10.3]},
        "nurse_frank": {"a": [10.2], "b": [10.1], "d": [12.0]},
    }
    for reader, got in deliveries.items():
        ledger.deliveries[reader].update(got)

    phase = phase_of(ledger, "redis_restart", returned_at=13.0)

    assert (phase["sent"], phase["acknowledged"]) == (5, 4)
    assert phase["lost"] == 1  # c: nurse_frank never got it
    assert phase["duplicated"] == 1  # b, twice to head_carol
    assert phase["unacknowledged_delivered"] == 1  # e
    assert phase["max_ack_to_delivery_s"] == 4.5  # d to head_carol
    assert phase["max_after_return_s"] == 1.5  # d again, counted from the return at 13
    assert phase["slowest_per_reader_s"] == {"head_carol": 4.5, "nurse_frank": 2.0}
    refused = faults.problems([phase])
    assert "redis_restart: 1 posts lost" in refused
    assert "redis_restart: 1 posts delivered twice" in refused
    assert "redis_restart: 1 never acknowledged" in refused


def test_what_the_issue_accepts_is_no_problem() -> None:
    ledger = Ledger(["head_carol"])
    ledger.phase = "daphne_sigterm"
    record = ledger.new("a", "surgeon_bob")
    record.acked = 1.0
    ledger.deliveries["head_carol"]["a"].append(1.01)
    phase = phase_of(ledger, "daphne_sigterm", returned_at=5.0)
    phase["exit_code"] = 0

    assert faults.problems([phase]) == []
    assert faults.problems([{**phase, "exit_code": -9}]) == [
        "daphne_sigterm: the drained process exited with -9"
    ]
    assert faults.problems([{**phase, "recovery_s": None, "healthy_s": None}]) == [
        "daphne_sigterm: no recovery (healthy after None s)"
    ]
