"""How fast the audit chain seals: run inside a deployment's environment.

Writes N audit entries (in transactions of 50, like a burst of actions),
then times one `seal_all()` over them and one `verify_chain()`, then what a
signed checkpoint and an export's proof cost on top: the seal tree's root
over the whole chain, and the inclusion paths of 100 entries spread over it
(audit/tree.py: one pass over the seal hashes each). Last, what one round of the
sealer thread costs with those N entries in the straggler window: 20 rounds of 50 new
entries each, sealed with a sweep of the window, then 20 without (audit/stragglers.py);
the median of each. Prints one JSON line.
"""

import json
import os
import statistics
import sys
import time

import django


def main(count: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rounds.settings")
    django.setup()
    from django.db import transaction

    from audit.actions import record, seal_all, verify_chain

    seal_all(full=True)
    started = time.perf_counter()
    for start in range(0, count, 50):
        with transaction.atomic():
            for index in range(start, min(count, start + 50)):
                record("bench.entry", object_type="bench", object_id=index, data={"i": index})
    written = time.perf_counter() - started
    started = time.perf_counter()
    sealed = seal_all()
    sealing = time.perf_counter() - started
    started = time.perf_counter()
    report = verify_chain()
    verifying = time.perf_counter() - started
    from audit.tree import SealTree

    started = time.perf_counter()
    SealTree(report.head_seq).root()
    rooting = time.perf_counter() - started
    spread = range(1, report.head_seq + 1, max(1, report.head_seq // 100))
    started = time.perf_counter()
    tree = SealTree(report.head_seq, proving=spread)
    for seq in spread:
        tree.path(seq)
    proving = time.perf_counter() - started
    round_sweep_ms, round_ms = (round_milliseconds(sweep) for sweep in (True, False))
    print(
        json.dumps(
            {
                "entries": count,
                "sealed": sealed,
                "write_per_s": round(count / written),
                "seal_per_s": round(sealed / sealing),
                "verify_per_s": round(report.checked / verifying),
                "chain_ok": report.ok,
                "chain_seals": report.head_seq,
                "tree_root_s": round(rooting, 3),
                "proof_100_entries_s": round(proving, 3),
                "round_of_50_with_sweep_ms": round_sweep_ms,
                "round_of_50_ms": round_ms,
            }
        )
    )


def round_milliseconds(sweep: bool, rounds: int = 20, entries: int = 50) -> float:
    """The median time of one sealing round over `entries` new entries."""
    from django.db import transaction

    from audit.actions import record, seal_pending

    times = []
    for _ in range(rounds):
        with transaction.atomic():
            for index in range(entries):
                record("bench.entry", object_type="bench", object_id=index, data={"i": index})
        started = time.perf_counter()
        sealed = seal_pending(wait=False, sweep=sweep)
        times.append(time.perf_counter() - started)
        assert sealed == entries, sealed
    return round(statistics.median(times) * 1000, 2)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
