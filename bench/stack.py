"""A throwaway Rounds deployment on loopback: its own database, N daphne processes.

Used by the benchmarks (and usable by any script): a fresh SQLite file or a
fresh PostgreSQL database, migrated and seeded with the demo hospital, then
daphne processes on free ports sharing it (and Redis, when asked).
`start_floor` runs the bare Channels baseline (bench/floor/) the same way.
"""

import contextlib
import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEMO_PASSWORD = "bench-password-2026"
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


@dataclass
class Stack:
    urls: list[str]
    env: dict[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)
    description: str = ""

    @property
    def var_dir(self) -> Path:
        """The deployment's var dir: seed_demo's demo keys (demo-keys/) and pins are there."""
        return Path(self.env["ROUNDS_VAR_DIR"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def fresh_database(services: bool, workdir: Path) -> Iterator[str]:
    if not services:
        yield f"sqlite:///{workdir / 'bench.sqlite3'}"
        return
    import psycopg

    base = os.environ.get("DATABASE_URL", DEFAULT_PG)
    name = f"rounds_bench_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def wait_healthy(url: str, process: subprocess.Popen, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy")


@contextlib.contextmanager
def start_stack(
    processes: int = 1, services: bool = False, extra_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """Yield a running deployment; everything is stopped and removed afterwards."""
    with (
        tempfile.TemporaryDirectory(prefix="rounds-bench-") as tmp,
        fresh_database(services, Path(tmp)) as database_url,
    ):
        ports = [free_port() for _ in range(processes)]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "rounds.settings",
            "DATABASE_URL": database_url,
            "ROUNDS_VAR_DIR": tmp,
            "ROUNDS_DEMO_PASSWORD": DEMO_PASSWORD,
            "ROUNDS_ALLOWED_ORIGINS": ",".join(urls),
            "ROUNDS_CHANNEL_PREFIX": f"bench{secrets.token_hex(3)}",
            "ROUNDS_LOG_LEVEL": "WARNING",
            **(extra_env or {}),
        }
        if services:
            env["REDIS_URL"] = os.environ.get("REDIS_URL", DEFAULT_REDIS)
        else:
            env.pop("REDIS_URL", None)
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True, cwd=ROOT)
        subprocess.run(
            [*manage, "seed_demo", "--patients", "30"],
            env=env,
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        stack = Stack(
            urls=urls,
            env=env,
            description=(
                f"{processes} daphne, "
                + ("PostgreSQL + Redis" if services else "SQLite + in-memory layer")
            ),
        )
        with serve(stack, ports, "rounds.asgi:application"):
            yield stack


@contextlib.contextmanager
def start_floor(
    processes: int = 1, services: bool = False, extra_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """Yield the floor (bench/floor/) on the same server and layer as start_stack would.

    No database: only daphne processes and, with services, Redis under a
    prefix of this run's own.
    """
    ports = [free_port() for _ in range(processes)]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.floor.settings",
        "FLOOR_CHANNEL_PREFIX": f"floor{secrets.token_hex(3)}",
        **(extra_env or {}),
    }
    if services:
        env["REDIS_URL"] = os.environ.get("REDIS_URL", DEFAULT_REDIS)
    else:
        env.pop("REDIS_URL", None)
    stack = Stack(
        urls=[f"http://127.0.0.1:{port}" for port in ports],
        env=env,
        description=f"{processes} daphne, " + ("Redis" if services else "in-memory layer"),
    )
    with serve(stack, ports, "bench.floor.asgi:application"):
        yield stack


def run_in_deployment(env: dict[str, str], module: str, *args: str) -> dict:
    """Run `python -m module args` against a deployment's database (its `Stack.env`)
    and return the JSON line it prints last: the benchmarks' bulk writers and
    measurers that must run beside the servers, not inside them."""
    import json

    output = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def daphne_command(port: int, application: str) -> list[str]:
    """One command line for Rounds and the floor, so they run on the same server flags."""
    daphne = str(Path(sys.executable).parent / "daphne")
    return [daphne, "-b", "127.0.0.1", "-p", str(port), application]


def raise_open_files_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (children inherit it): one fd per socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@contextlib.contextmanager
def serve(stack: Stack, ports: list[int], application: str) -> Iterator[None]:
    """Run one daphne per port until the block ends; healthy before it starts."""
    raise_open_files_limit()
    try:
        for port in ports:
            stack.processes.append(
                subprocess.Popen(
                    daphne_command(port, application),
                    env=stack.env,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for url, process in zip(stack.urls, stack.processes, strict=True):
            wait_healthy(url, process)
        yield
    finally:
        for process in stack.processes:
            process.terminate()
        for process in stack.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
