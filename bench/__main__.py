"""python -m bench run [latency|throughput|audit|crypto|floor|all] [--services] [--processes N]

Starts its own servers on loopback, prints a table and writes JSON results
under bench/results/. Latency and throughput are followed by the same
measurement on the floor (bench/floor/: bare Channels on the same server and
layer), and carry its figures and the ratio Rounds / floor. See
docs/performance.md.
"""

import argparse
import asyncio
import inspect
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from bench import crypto, messaging
from bench.floor import clients as floor_clients
from bench.stack import start_floor, start_stack


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
    "floor": None,  # the floor alone: bench/floor/
}
# "all" runs the floor inside latency and throughput, not a second time alone.
ALL = ["latency", "throughput", "audit", "crypto"]
FLOOR = {"latency": floor_clients.run_latency, "throughput": floor_clients.run_throughput}


def same_arguments(rounds_scenario, floor_scenario) -> dict:
    """The Rounds scenario's defaults (count, rate, window…), so the floor measures the same."""
    floor_parameters = inspect.signature(floor_scenario).parameters
    return {
        name: parameter.default
        for name, parameter in inspect.signature(rounds_scenario).parameters.items()
        if name in floor_parameters and parameter.default is not inspect.Parameter.empty
    }


def run_floor(name: str, processes: int, services: bool) -> tuple[str, dict]:
    """The floor's figures for scenario `name`, on the same processes and layer as Rounds."""
    with start_floor(processes, services) as floor:
        arguments = same_arguments(SCENARIOS[name], FLOOR[name])
        return floor.description, asyncio.run(FLOOR[name](floor.urls, **arguments))


def ratios(name: str, rounds: dict, floor: dict) -> dict:
    """Rounds / floor: how many times the floor's latency, what share of its throughput."""
    if name == "latency":
        return {
            f"ratio_{q}": round(rounds[f"{q}_ms"] / floor[f"{q}_ms"], 2)
            for q in ("p50", "p95", "p99")
        }
    return {"ratio_throughput": round(rounds["msg_per_s"] / floor["msg_per_s"], 2)}


def print_row(scenario: str, system: str, description: str, figures: dict) -> None:
    print(
        f"{scenario:<11} {system:<10} {description:<36} "
        + "  ".join(f"{k}={v}" for k, v in figures.items()),
        flush=True,
    )


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
    names = ALL if args.scenario == "all" else [args.scenario]
    env = {**messaging.BENCH_LIMITS, "ROUNDS_AUDIT_SEALER": args.sealer}
    results = []
    for name in names:
        if name == "crypto":
            figures = crypto.run()
            results.append({"scenario": name, **figures})
            print(f"{name:<11} " + "  ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
            continue
        if name == "floor":
            for measure in FLOOR:
                description, figures = run_floor(measure, processes, args.services)
                results.append(
                    {"scenario": name, "measure": measure, "stack": description, **figures}
                )
                print_row(name, measure, description, figures)
            continue
        with start_stack(processes, args.services, env) as stack:
            if name == "audit":
                figures = run_audit(stack.urls, stack.env)
            else:
                figures = asyncio.run(SCENARIOS[name](stack.urls))
        result = {"scenario": name, "stack": stack.description, "sealer": args.sealer, **figures}
        print_row(name, "rounds", stack.description, figures)
        if name in FLOOR:
            description, floor_figures = run_floor(name, processes, args.services)
            print_row("", "floor", description, floor_figures)
            compared = ratios(name, figures, floor_figures)
            print_row("", "ratio", "Rounds / floor", compared)
            result.update(
                floor_stack=description,
                **{f"floor_{k}": v for k, v in floor_figures.items()},
                **compared,
            )
        results.append(result)
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
