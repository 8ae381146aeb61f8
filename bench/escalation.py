"""python -m bench run escalation: advice timers firing on several server processes.

COUNT (1,000) open urgent requests, their timers staggered over SPREAD seconds,
on two daphne processes (at least), each running its scheduler thread
(advice/scheduler.py). The benchmark waits until every first timer has fired,
then reads the timelines back from the database and reports:

- `fired`: requests whose first timer made a step; `twice`: timers that made
  more than one step (must be 0: each fires once);
- `late_p50_ms`, `late_p99_ms`, `late_max_ms`: from each timer's due time to
  its step's server timestamp (goal: p99 under 1 s);
- `by_process`: how many escalations each process fired (its /metrics), which
  shows the work was shared and not done twice;
- `push_p50_ms`, `push_p99_ms`: from the escalation's step to its Web Push
  notice received and decrypted by a local RFC 8030 receiver (bench/push_receiver.py),
  and `pushes`: how many arrived.

The escalation delay is an hour, so each request escalates once during the
run. See docs/performance.md, "Advice timers".
"""

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.push_receiver import push_receiver
from bench.stack import ROOT, Stack

ENV = {
    "ROUNDS_ADVICE_URGENT_SECONDS": "3600",
    "ROUNDS_PUSH_ALLOW_LOCAL_ENDPOINTS": "1",
    "ROUNDS_SCHEDULER": "thread",
}
DOCTORS = ("head_carol", "surgeon_bob", "intern_erin")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fired_by_process(urls: list[str]) -> list[int]:
    """rounds_advice_timers_fired_total{step="escalated"} of each process."""
    counts = []
    for url in urls:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith('rounds_advice_timers_fired_total{step="escalated"}'):
                total = float(line.rsplit(" ", 1)[1])
        counts.append(int(total))
    return counts


def in_deployment(stack: Stack, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bench.escalation_deploy", *args],
        env={**stack.env, **(env or {})},
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip().splitlines()[-1]


def run_escalation(
    stack: Stack, count: int = 1000, spread: float = 20.0, lead: float = 5.0
) -> dict:
    with push_receiver() as receiver:
        subscribers = {name: receiver.subscribe() for name in DOCTORS}
        body = {
            name: {"endpoint": s.endpoint, "p256dh": s.p256dh, "auth": s.auth}
            for name, s in subscribers.items()
        }
        # The seeding process sends no push: its "requested" notices are not measured.
        seeded = json.loads(
            in_deployment(
                stack,
                "seed",
                str(count),
                str(spread),
                str(lead),
                json.dumps(body),
                env={"ROUNDS_PUSH_SENDER": "off"},
            )
        )
        ids: list[int] = seeded["ids"]
        deadline = seeded["first_due"] + spread + 60
        with tempfile.TemporaryDirectory() as tmp:
            ids_file = Path(tmp) / "ids.json"
            ids_file.write_text(json.dumps(ids))
            report: dict = {}
            while time.time() < deadline:
                time.sleep(max(1.0, min(5.0, seeded["first_due"] + spread - time.time())))
                report = json.loads(in_deployment(stack, "measure", str(ids_file)))
                if len(report) == len(ids):
                    break
        escalations = [
            push
            for push in receiver.wait_for(len(ids), timeout=20)
            if push.payload.get("kind") == "advice.request"
            and push.payload.get("step") == "escalated"
        ]
        by_process = fired_by_process(stack.urls)
    lateness = [(entry["steps"][0]["at"] - entry["due"]) * 1000 for entry in report.values()]
    step_at = {int(rid): entry["steps"][0]["at"] for rid, entry in report.items()}
    delivery = [
        (push.at - step_at[push.payload["request"]]) * 1000
        for push in escalations
        if push.payload["request"] in step_at
    ]
    return {
        "requests": len(ids),
        "fired": len(report),
        "twice": sum(1 for entry in report.values() if len(entry["steps"]) > 1),
        "late_p50_ms": round(percentile(lateness, 0.50), 1),
        "late_p99_ms": round(percentile(lateness, 0.99), 1),
        "late_max_ms": round(max(lateness, default=0.0), 1),
        "late_mean_ms": round(statistics.fmean(lateness), 1) if lateness else 0.0,
        "by_process": by_process,
        "pushes": len(escalations),
        "push_p50_ms": round(percentile(delivery, 0.50), 1),
        "push_p99_ms": round(percentile(delivery, 0.99), 1),
    }
