"""`rounds compliance` under four-eyes (ROUNDS_COMPLIANCE_FOUR_EYES=1) on a real daphne
process: a case opened by compliance_dan releases nothing until compliance_eve,
the second officer, approves it from her terminal; its opener cannot."""

from collections.abc import Iterator

import pytest

from tests.live.cli import run_rounds
from tests.live.servers import LiveCluster, live_cluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LiveCluster]:
    with live_cluster(1, settings={"ROUNDS_COMPLIANCE_FOUR_EYES": "1"}) as running:
        yield running


async def test_a_case_reads_only_once_a_second_officer_approved_it(cluster: LiveCluster):
    key = str(cluster.root / "var" / "demo-keys" / "compliance.key")
    out, _ = await run_rounds(
        cluster, "compliance_dan", "compliance", "open",
        "--reference", "EYES-1", "--reason", "Four-eyes trial", "--ipp", "00800100",
        "--from", "2026-01-01", "--to", "2026-12-31",
    )  # fmt: skip
    assert "(open, awaits a second officer)" in out
    case = out.split()[2]
    read = ("compliance", "read", case, "--key", key)
    _, err = await run_rounds(cluster, "compliance_dan", *read, code=1)
    assert err.startswith("rounds: error: case_not_approved: ")
    _, err = await run_rounds(cluster, "compliance_dan", "compliance", "approve", case, code=1)
    assert err.startswith("rounds: error: forbidden: ")

    out, _ = await run_rounds(cluster, "compliance_eve", "compliance", "cases")
    assert f"{case}  EYES-1  opened by compliance_dan" in out
    out, _ = await run_rounds(cluster, "compliance_eve", "compliance", "approve", case)
    assert out.startswith(f"approved case {case}  EYES-1") and "approved by compliance_eve" in out

    out, _ = await run_rounds(cluster, "compliance_dan", *read)
    assert out == f"Case {case} covers no thread.\n"  # nobody has written about the patient
