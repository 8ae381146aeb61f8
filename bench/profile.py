"""python -m bench.profile [latency|throughput] [--services] [--out DIR]

Where a daphne process spends its time while a scenario runs: py-spy samples
every process of the deployment (`py-spy record --pid`, 200 samples a second,
idle samples left out) from the first post to the last receipt, and this prints,
per process, the functions holding the most samples, inclusive and self.
The collapsed stacks are kept under DIR (default bench/results/profile-<time>/)
for a flame graph (`flamegraph.pl`, speedscope). docs/performance.md gives the
summaries of the runs before and after the post path's rework.

py-spy is not a dependency of Rounds: `pip install py-spy` in the virtualenv.
It reads another process's memory, which needs the same user (or root, or
CAP_SYS_PTRACE in a container).
"""

import argparse
import asyncio
import collections
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import messaging
from bench.stack import Stack, start_stack

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = {
    "latency": lambda stack: messaging.run_latency(stack.urls, var_dir=stack.var_dir),
    "throughput": lambda stack: messaging.run_throughput(stack.urls, var_dir=stack.var_dir),
}


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def record(stack: Stack, out: Path) -> list[tuple[Path, subprocess.Popen]]:
    """One py-spy per daphne process, writing collapsed stacks until interrupted."""
    recorders = []
    for index, process in enumerate(stack.processes):
        target = out / f"daphne-{index}.txt"
        command = [py_spy(), "record", "--pid", str(process.pid), "--rate", "200"]
        command += ["--format", "raw", "--output", str(target), "--nonblocking"]
        recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        recorders.append((target, recorder))
    time.sleep(1.0)  # py-spy attaches
    return recorders


def stop(recorders: list[tuple[Path, subprocess.Popen]]) -> None:
    for _, recorder in recorders:
        recorder.send_signal(signal.SIGINT)
    for _, recorder in recorders:
        recorder.wait(timeout=60)


def frame_name(frame: str) -> str:
    """`check_post_messages (chat/posting.py:123)` → `check_post_messages (chat/posting.py)`:
    a function, whatever line was running."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0].rstrip(")")
    for marker in ("site-packages/", "/work/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path.split('/main/', 1)[-1]})"


def summarise(collapsed: Path, top: int = 25) -> str:
    """The functions with the most samples, inclusive and self, as shares of the busy
    samples (a thread waiting in epoll, a lock or a socket read counts as idle)."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        frames = [frame_name(f) for f in stack.split(";")[1:]]  # [0] is the thread
        if not frames or _idle(frames[-1]):
            continue
        count = int(count_text)
        total += count
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
    if total == 0:
        return f"{collapsed.name}: no busy samples"
    lines = [f"{collapsed.name}: {total} busy samples (200/s)", "  inclusive (Rounds' code):"]
    ours = [(name, n) for name, n in inclusive.most_common() if OURS.search(name)][:top]
    lines += [f"    {n * 100 / total:5.1f}%  {name}" for name, n in ours]
    lines.append("  self:")
    lines += [f"    {n * 100 / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)


# Leaf frames where a thread waits (a lock, a queue, epoll, a sleep in a daemon's loop)
# rather than works; a wait for PostgreSQL's answer (psycopg's `Connection.wait`) counts
# as busy: it is the post's time.
IDLE = re.compile(
    r"^(Condition\.wait|Event\.wait|Queue\.get|EpollSelector\.select|_run|select|poll|"
    r"Scheduler\.run|ThreadPoolExecutor\._adjust_thread_count) \("
)
OURS = re.compile(r"\((accounts|audit|chat|core|media|rooms|rounds|patients|push)/")


def _idle(frame: str) -> bool:
    return bool(IDLE.match(frame))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("scenario", choices=sorted(SCENARIOS), default="latency", nargs="?")
    parser.add_argument("--services", action="store_true")
    parser.add_argument("--processes", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or RESULTS / f"profile-{time.strftime('%Y%m%dT%H%M%S')}-{args.scenario}"
    out.mkdir(parents=True, exist_ok=True)
    processes = args.processes or (2 if args.services else 1)
    with start_stack(processes, args.services, messaging.BENCH_LIMITS) as stack:
        recorders = record(stack, out)
        try:
            figures = asyncio.run(SCENARIOS[args.scenario](stack))
        finally:
            stop(recorders)
    print(f"{args.scenario} ({stack.description}): {figures}")
    for target, _ in recorders:
        print(summarise(target))
    print(f"collapsed stacks: {out}")


if __name__ == "__main__":
    main()
