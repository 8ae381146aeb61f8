"""python -m bench run [latency|throughput|all] [--services] [--processes N]

Starts its own servers on loopback, prints a table and writes JSON results
under bench/results/. See docs/performance.md.
"""

import argparse
import asyncio
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from bench import crypto, messaging
from bench.stack import start_stack


def run_audit(urls: list[str], env: dict[str, str]) -> dict:
    """Seal and verify rates, in the deployment's own database (see bench/audit_seal.py)."""
    output = subprocess.run(
        [sys.executable, "-m", "bench.audit_seal", "20000"],
        env={**env, "ROUNDS_AUDIT_SEALER": "off"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


SCENARIOS = {
    "latency": messaging.run_latency,
    "throughput": messaging.run_throughput,
    "audit": run_audit,
    "crypto": None,  # pure CPU, no servers: bench/crypto.py
}
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run scenarios")
    run.add_argument("scenario", nargs="?", default="all", choices=[*SCENARIOS, "all"])
    run.add_argument(
        "--services",
        action="store_true",
        help="PostgreSQL + Redis (DATABASE_URL/REDIS_URL or the local defaults)",
    )
    run.add_argument(
        "--processes",
        type=int,
        default=None,
        help="daphne processes (default 1 embedded, 2 with --services)",
    )
    run.add_argument(
        "--sealer",
        default="thread",
        choices=["thread", "inline"],
        help="audit sealing mode to measure",
    )
    args = parser.parse_args()
    processes = args.processes or (2 if args.services else 1)
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    env = {**messaging.BENCH_LIMITS, "ROUNDS_AUDIT_SEALER": args.sealer}
    results = []
    for name in names:
        if name == "crypto":
            figures = crypto.run()
            results.append({"scenario": name, **figures})
            print(f"{name:<11} " + "  ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
            continue
        with start_stack(processes, args.services, env) as stack:
            if name == "audit":
                figures = run_audit(stack.urls, stack.env)
            else:
                figures = asyncio.run(SCENARIOS[name](stack.urls))
        results.append(
            {"scenario": name, "stack": stack.description, "sealer": args.sealer, **figures}
        )
        print(
            f"{name:<11} {stack.description:<40} "
            + "  ".join(f"{k}={v}" for k, v in figures.items()),
            flush=True,
        )
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    tag = "services" if args.services else "embedded"
    out = RESULTS / f"{stamp}-{tag}-{args.scenario}.json"
    out.write_text(
        json.dumps({"machine": platform.platform(), "cpus": _cpus(), "results": results}, indent=2)
    )
    print(f"results: {out}")


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
