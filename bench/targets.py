"""python -m bench.targets RESULTS.json [RESULTS.json ...]

Issue 19's targets checked against the JSON that `python -m bench run` writes
under bench/results/: one line per target and scenario row found, with the
figure, the bound and whether it was met. A run meets the targets when every
line says so; the exit status is 1 if any line does not, so five runs can be
judged by a script rather than by eye. Targets whose scenario a file lacks are
left out (a `latency` run alone is checked for latency only); the broadcast is
checked on each configuration it was run on (`connections` with and without
--services). docs/performance.md says why each bound is what it is.
"""

import argparse
import json
import operator
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Target:
    scenario: str
    key: str
    compare: Callable[[float, float], bool]
    bound: float
    words: str

    def met(self, value: float) -> bool:
        return self.compare(value, self.bound)


AT_MOST, AT_LEAST, EQUAL = operator.le, operator.ge, operator.eq

TARGETS = [
    Target("latency", "ratio_p50", AT_MOST, 2.5, "latency p50 ≤ 2.5 times the floor"),
    Target("latency", "p99_ms", AT_MOST, 15.0, "latency p99 ≤ 15 ms at 100 msg/s"),
    Target("throughput", "msg_per_s", AT_LEAST, 720.0, "throughput ≥ 720 msg/s"),
    Target("throughput", "ratio_throughput", AT_LEAST, 0.8, "throughput ≥ 0.8 times the floor"),
    Target("throughput", "lost", EQUAL, 0, "nothing lost"),
    Target("throughput", "duplicates", EQUAL, 0, "nothing duplicated"),
    Target("history", "history_ws_p99_ms", AT_MOST, 10.0, "history page p99 ≤ 10 ms"),
    Target("connections", "broadcast_s", AT_MOST, 1.0, "one event to 5,000 sockets ≤ 1 s"),
    Target("connections", "broadcast_failures", EQUAL, 0, "every socket has the event"),
    Target("connections", "rss_after_broadcast_mb", AT_MOST, 400.0, "RSS ≤ 400 MiB"),
]


@dataclass(frozen=True)
class Check:
    target: Target
    stack: str
    value: float | None

    @property
    def met(self) -> bool:
        return self.value is not None and self.target.met(self.value)


# The ratios a run writes are rounded to two places (5.41 / 2.16 is written 2.5):
# judged from the two figures instead, when the row has them.
RATIO_OF = {
    "ratio_p50": ("p50_ms", "floor_p50_ms"),
    "ratio_throughput": ("msg_per_s", "floor_msg_per_s"),
}


def figure(row: dict, key: str) -> float | None:
    over, under = RATIO_OF.get(key, (None, None))
    if over in row and under in row and row[under]:
        return round(row[over] / row[under], 4)
    return row.get(key)


def check_rows(rows: Iterable[dict]) -> list[Check]:
    """Every target against every result row of its scenario; a missing figure fails."""
    checks = []
    for row in rows:
        for target in TARGETS:
            if row.get("scenario") == target.scenario:
                checks.append(Check(target, row.get("stack", ""), figure(row, target.key)))
    return checks


def read_rows(paths: Iterable[Path]) -> list[dict]:
    return [row for path in paths for row in json.loads(path.read_text())["results"]]


def report(checks: list[Check]) -> str:
    lines = []
    for check in checks:
        verdict = "met" if check.met else "NOT MET"
        lines.append(
            f"{verdict:<8} {check.target.words:<36} {check.target.key}={check.value}  "
            f"({check.stack})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.targets", description=__doc__)
    parser.add_argument("results", nargs="+", type=Path, help="files under bench/results/")
    args = parser.parse_args(argv)
    checks = check_rows(read_rows(args.results))
    if not checks:
        print("no latency, throughput, history or connections rows in these files")
        return 1
    print(report(checks))
    return 0 if all(check.met for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
