"""python -m bench run [scenario|all] [--services [--direct]] [--processes N] [--smoke]

Scenarios: latency, throughput, fanout, catchup, connections, history, audit, media,
purge, compliance (a case exported and verified with the `rounds` command), escalation
(advice timers on two processes or more, and their Web Push notices), adt (HL7 ADT
messages through MLLP with their ACKs, and a merge's time; bench/adt.py), crypto,
floor, balancer (--services only: HAProxy's cost against direct connections;
bench/lb_cost.py) and faults (--services only: its own PostgreSQL, Redis and HAProxy,
restarted under load; bench/faults.py).

With --services, the clients of the messaging scenarios (BALANCED) come through
HAProxy, as a deployment's do, and so do the floor's; --direct gives them the
processes' own addresses.

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
import signal
import time
from collections.abc import Callable
from pathlib import Path

from bench import (
    adt,
    catchup,
    compliance,
    connections,
    crypto,
    escalation,
    fanout,
    faults,
    history,
    lb_cost,
    media,
    messaging,
    purge,
)
from bench.floor import clients as floor_clients
from bench.seed_members import seed_members
from bench.stack import Stack, run_in_deployment, start_floor, start_stack, through_balancer


def run_audit(urls: list[str], env: dict[str, str]) -> dict:
    """Seal and verify rates, in the deployment's own database (see bench/audit_seal.py)."""
    return run_in_deployment({**env, "ROUNDS_AUDIT_SEALER": "off"}, "bench.audit_seal", "20000")


def run_connections(stack: Stack, **kwargs) -> dict:
    seed_members(stack.env, connections.BENCH_USERS)
    pids = [process.pid for process in stack.processes]
    return asyncio.run(connections.run_connections(stack.urls, pids, **kwargs))


# Each Rounds scenario: (how to run it on a started stack, the function whose
# parameters the floor and --smoke use).
SCENARIOS: dict[str, tuple[Callable[..., dict], Callable]] = {
    "latency": (
        lambda stack, **kw: asyncio.run(
            messaging.run_latency(stack.urls, var_dir=stack.var_dir, **kw)
        ),
        messaging.run_latency,
    ),
    "throughput": (
        lambda stack, **kw: asyncio.run(
            messaging.run_throughput(stack.urls, var_dir=stack.var_dir, **kw)
        ),
        messaging.run_throughput,
    ),
    "fanout": (
        lambda stack, **kw: asyncio.run(
            fanout.run_fanout(stack.urls, var_dir=stack.var_dir, env=stack.env, **kw)
        ),
        fanout.run_fanout,
    ),
    "catchup": (
        lambda stack, **kw: asyncio.run(
            catchup.run_catchup(stack.urls, var_dir=stack.var_dir, **kw)
        ),
        catchup.run_catchup,
    ),
    "connections": (run_connections, connections.run_connections),
    "history": (lambda stack, **kw: history.run_history(stack, **kw), history.run_history),
    "audit": (lambda stack, **kw: run_audit(stack.urls, stack.env), run_audit),
    "media": (lambda stack, **kw: media.run_media(stack, **kw), media.run_media),
    "purge": (lambda stack, **kw: purge.run_purge(stack, **kw), purge.run_purge),
    "compliance": (
        lambda stack, **kw: compliance.run_compliance(stack, **kw),
        compliance.run_compliance,
    ),
    "escalation": (
        lambda stack, **kw: escalation.run_escalation(stack, **kw),
        escalation.run_escalation,
    ),
    "adt": (lambda stack, **kw: adt.run_adt(stack, **kw), adt.run_adt),
}
# crypto: pure CPU (bench/crypto.py); floor: the floor alone; balancer: HAProxy's cost
# (bench/lb_cost.py, part of "all" with --services); faults: a deployment of its own
# whose parts it restarts (bench/faults.py), not part of "all".
OTHER = ["crypto", "floor", "balancer", "faults"]
# With --services, these scenarios' clients come through HAProxy (not --direct); the
# others address one process on purpose (5,000 sockets on one) or have no sockets.
BALANCED = {"latency", "throughput", "fanout", "catchup", "history"}
# "all" runs the floor inside the scenarios that have one, not a second time alone.
ALL = [
    "latency",
    "throughput",
    "fanout",
    "catchup",
    "connections",
    "history",
    "audit",
    "media",
    "purge",
    "compliance",
    "escalation",
    "adt",
    "crypto",
]
FLOOR = {
    "latency": floor_clients.run_latency,
    "throughput": floor_clients.run_throughput,
    "fanout": fanout.run_fanout_floor,
}
# --smoke: a few seconds per scenario, so CI keeps the harness from rotting (no thresholds).
SMOKE = {
    "latency": {"count": 20},
    "throughput": {"total": 100},
    "fanout": {"members": 5, "count": 10},
    "catchup": {"messages": 100},
    "connections": {"sockets": 50},
    "history": {"rows": 2000, "samples": 20},
    "purge": {"rows": 2000, "before_seconds": 2.0},
    "compliance": {"messages": 300, "photos": 12, "threads": 2},
    "audit": {},
    "escalation": {"count": 40, "spread": 2.0, "lead": 3.0},
    "adt": {"messages": 100, "merge_messages": 200, "merge_photos": 20},
    "media": {
        "sizes": (1 << 20,),
        "repeats": 1,
        "memory_sizes": (1 << 20,),
        "attachments": 300,
        "samples": 5,
    },
}
EXTRA_ENV = {
    # audit times the sealing itself (bench/audit_seal.py): no sealer of the deployment's
    # may seal its entries first.
    "audit": {"ROUNDS_AUDIT_SEALER": "off"},
    "connections": connections.CONNECTION_LIMITS,
    "compliance": compliance.UPLOAD_LIMITS,
    "escalation": escalation.ENV,
}
# Timers racing between processes is what escalation measures: never fewer than two.
MIN_PROCESSES = {"escalation": 2}


def same_arguments(rounds_scenario, floor_scenario, overrides: dict) -> dict:
    """The Rounds scenario's parameters (count, rate, window…), so the floor measures the same."""
    floor_parameters = inspect.signature(floor_scenario).parameters
    arguments = {
        name: parameter.default
        for name, parameter in inspect.signature(rounds_scenario).parameters.items()
        if name in floor_parameters and parameter.default is not inspect.Parameter.empty
    }
    arguments.update({k: v for k, v in overrides.items() if k in floor_parameters})
    return arguments


def run_floor(
    name: str,
    processes: int,
    services: bool,
    overrides: dict | None = None,
    *,
    balanced: bool = False,
    server: str = "daphne",
) -> tuple[str, dict]:
    """The floor's figures for scenario `name`, on the same processes and layer as Rounds,
    through HAProxy when Rounds' clients were (`balanced`)."""
    with start_floor(processes, services, balanced=balanced, server=server) as floor:
        if balanced:
            floor = through_balancer(floor)
        arguments = same_arguments(SCENARIOS[name][1], FLOOR[name], overrides or {})
        return floor.description, asyncio.run(FLOOR[name](floor.urls, **arguments))


def ratios(name: str, rounds: dict, floor: dict) -> dict:
    """Rounds / floor: how many times the floor's latency, what share of its throughput."""
    if name == "latency":
        return {
            f"ratio_{q}": round(rounds[f"{q}_ms"] / floor[f"{q}_ms"], 2)
            for q in ("p50", "p95", "p99")
        }
    if name == "fanout":
        return {
            f"ratio_all_{q}": round(rounds[f"all_{q}_ms"] / floor[f"all_{q}_ms"], 2)
            for q in ("p50", "p99")
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
    run.add_argument("scenario", nargs="?", default="all", choices=[*SCENARIOS, *OTHER, "all"])
    run.add_argument(
        "--smoke", action="store_true", help="tiny runs of each scenario (CI), no figures to keep"
    )
    run.add_argument(
        "--services",
        action="store_true",
        help="PostgreSQL + Redis (DATABASE_URL/REDIS_URL or the local defaults)",
    )
    run.add_argument(
        "--server",
        default="daphne",
        choices=["daphne", "uvicorn"],
        help="the ASGI server of Rounds and of the floor (daphne is Rounds' own)",
    )
    run.add_argument(
        "--direct",
        action="store_true",
        help="with --services: clients address the processes, not HAProxy",
    )
    run.add_argument(
        "--processes",
        type=int,
        default=None,
        help="daphne processes (default 1 embedded, 2 with --services)",
    )
    run.add_argument(
        "--sealer",
        default=None,
        choices=["thread", "process", "inline"],
        help="audit sealing mode to measure (default: process with --services, as a "
        "deployment of several processes runs it, docs/operations.md; thread without)",
    )
    run.add_argument(
        "--threads",
        type=int,
        default=None,
        help="compliance: the threads the case's messages are spread over (default 4; 1 puts "
        "every photo in one transcript, the export's largest memory)",
    )
    args = parser.parse_args()
    # `kill` (SIGTERM) stops a run as Ctrl-C does: every server it started is stopped
    # and every database and directory it made is removed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    processes = args.processes or (2 if args.services else 1)
    args.sealer = args.sealer or ("process" if args.services else "thread")
    names = ALL if args.scenario == "all" else [args.scenario]
    if args.scenario == "all" and args.services:
        names = [*ALL[:-1], "balancer", ALL[-1]]
    env = {**messaging.BENCH_LIMITS, "ROUNDS_AUDIT_SEALER": args.sealer}
    results = []
    failed: list[str] = []  # refusals: faults' (bench/faults.py `problems`), compliance's
    for name in names:
        if name == "crypto":
            figures = crypto.run()
            results.append({"scenario": name, **figures})
            print(f"{name:<11} " + "  ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
            continue
        if name == "faults":
            if not args.services:
                parser.error("faults runs on PostgreSQL + Redis behind HAProxy: add --services")
            phases = run_faults(args.smoke)
            results.extend(phases)
            failed.extend(faults.problems(phases))
            continue
        if name == "balancer":
            if not args.services:
                parser.error("balancer measures HAProxy in front of the processes: add --services")
            arguments = {"count": 20, "total": 100} if args.smoke else {}
            with start_stack(processes, True, env, server=args.server) as stack:
                figures = lb_cost.run_lb_cost(stack, **arguments)
            results.append({"scenario": name, "stack": stack.description, **figures})
            print_row(name, "rounds", stack.description, figures)
            continue
        balanced = args.services and not args.direct
        if name == "floor":
            for measure in FLOOR:
                overrides = SMOKE[measure] if args.smoke else {}
                description, figures = run_floor(
                    measure,
                    processes,
                    args.services,
                    overrides,
                    balanced=balanced,
                    server=args.server,
                )
                results.append(
                    {"scenario": name, "measure": measure, "stack": description, **figures}
                )
                print_row(name, measure, description, figures)
            continue
        overrides = SMOKE[name] if args.smoke else {}
        if name == "compliance" and args.threads:
            overrides = {**overrides, "threads": args.threads}
        count = max(processes, MIN_PROCESSES.get(name, 1))
        via = balanced and name in BALANCED
        extra = {**env, **EXTRA_ENV.get(name, {})}
        with start_stack(count, args.services, extra, server=args.server) as stack:
            if via:
                stack = through_balancer(stack)
            figures = SCENARIOS[name][0](stack, **overrides)
        # A scenario that checks what it measured (compliance: verify-export) lists what
        # did not hold under `problems`: the run then exits 1.
        failed.extend(f"{name}: {problem}" for problem in figures.pop("problems", []))
        result = {"scenario": name, "stack": stack.description, "sealer": args.sealer, **figures}
        print_row(name, "rounds", stack.description, figures)
        if name in FLOOR:
            description, floor_figures = run_floor(
                name, processes, args.services, overrides, balanced=via, server=args.server
            )
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
    tag = ("services" if args.services else "embedded") + ("-smoke" if args.smoke else "")
    out = RESULTS / f"{stamp}-{tag}-{args.scenario}.json"
    out.write_text(
        json.dumps({"machine": platform.platform(), "cpus": _cpus(), "results": results}, indent=2)
    )
    print(f"results: {out}")
    if failed:
        print("FAIL:\n  " + "\n  ".join(failed), flush=True)
        raise SystemExit(1)


def run_faults(smoke: bool) -> list[dict]:
    """The faults scenario, its servers' logs kept under bench/results/; a row per fault."""
    logs = RESULTS / f"{time.strftime('%Y%m%dT%H%M%S')}-faults-logs"
    description, phases = faults.run_faults(faults.SMOKE if smoke else faults.Plan(), logs)
    print(f"faults: {description}\nserver logs: {logs}", flush=True)
    print(faults_table(phases), flush=True)
    return [{"scenario": "faults", "stack": description, **phase} for phase in phases]


def faults_table(phases: list[dict]) -> str:
    columns = [
        ("fault", "fault"),
        ("sent", "sent"),
        ("acked", "acknowledged"),
        ("lost", "lost"),
        ("dup", "duplicated"),
        ("max ack→dlv s", "max_ack_to_delivery_s"),
        ("after return s", "max_after_return_s"),
        ("recovery s", "recovery_s"),
        ("timeouts", "post_timeouts"),
    ]
    rows = [[str(phase.get(key)) for _, key in columns] for phase in phases]
    widths = [
        max(len(title), *(len(row[i]) for row in rows)) for i, (title, _) in enumerate(columns)
    ]
    lines = ["  ".join(t.ljust(w) for (t, _), w in zip(columns, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    for phase in phases:
        seen = {k: phase[k] for k in ("closes", "errors", "reconnect_failures") if phase[k]}
        lines.append(f"  {phase['fault']}: reconnects={phase['reconnects']} {seen}")
    return "\n".join(lines)


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
