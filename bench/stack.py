"""A throwaway Rounds deployment on loopback: its own database, N daphne processes.

Used by the benchmarks (and usable by any script): a fresh SQLite file or a
fresh PostgreSQL database, migrated and seeded with the demo hospital, then
daphne processes on free ports sharing it (and Redis, when asked). Rounds is
served by its production entry point, `python -m rounds.serve` (daphne,
draining on SIGTERM). With services, HAProxy runs in front of the processes
from deploy/haproxy.cfg (bench/balancer.py): `Stack.balancer_url` is the one
address a deployment gives its clients, which the faults scenario uses; the
measuring scenarios address the processes themselves (`Stack.urls`), because
where each client lands is part of what they measure (a receiver on the last
process, 5,000 sockets on one).
`start_floor` runs the bare Channels baseline (bench/floor/) the same way.
"""

import contextlib
import dataclasses
import os
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.balancer import Balancer, start_balancer
from bench.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
DEMO_PASSWORD = "bench-password-2026"
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
ROUNDS_APPLICATION = "rounds.asgi:application"


@dataclass
class Stack:
    urls: list[str]
    env: dict[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)
    description: str = ""
    ports: list[int] = field(default_factory=list)
    application: str = ROUNDS_APPLICATION
    # Where each process's output goes (daphne-<index>.log); nowhere when None.
    log_dir: Path | None = None
    balancer: Balancer | None = None
    server: str = "daphne"  # or "uvicorn" (python -m bench run --server)
    # Beside the serving processes: the audit sealer's own (ROUNDS_AUDIT_SEALER=process).
    helpers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def var_dir(self) -> Path:
        """The deployment's var dir: seed_demo's demo keys (demo-keys/) and pins are there."""
        return Path(self.env["ROUNDS_VAR_DIR"])

    @property
    def balancer_url(self) -> str | None:
        return self.balancer.url if self.balancer else None

    def command(self, port: int) -> list[str]:
        if self.server == "uvicorn":
            return uvicorn_command(port, self.application)
        if self.application == ROUNDS_APPLICATION:
            return serve_command(port, self.application)
        return daphne_command(port, self.application)

    def spawn(self, index: int) -> subprocess.Popen:
        """Start process `index` on its port (again, after `stop`)."""
        with contextlib.ExitStack() as files:
            output = (
                files.enter_context((self.log_dir / f"daphne-{index}.log").open("ab"))
                if self.log_dir
                else subprocess.DEVNULL
            )
            process = subprocess.Popen(
                self.command(self.ports[index]),
                env=self.env,
                cwd=ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        if index < len(self.processes):
            self.processes[index] = process
        else:
            self.processes.append(process)
        return process

    def stop(self, index: int, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send `sig` to process `index` and wait for it to exit; its exit status."""
        process = self.processes[index]
        if process.poll() is None:
            process.send_signal(sig)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise

    def restart(self, index: int, deadline: float = 30.0) -> None:
        """Process `index` again on its port, healthy (the port may linger a moment)."""
        end = time.monotonic() + deadline
        while True:
            process = self.spawn(index)
            try:
                wait_healthy(self.urls[index], process, max(1.0, end - time.monotonic()))
                return
            except RuntimeError:
                if time.monotonic() > end:
                    raise
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.stop(index, signal.SIGKILL, timeout=5)
                time.sleep(0.2)


@contextlib.contextmanager
def fresh_database(services: bool, workdir: Path, server: str | None = None) -> Iterator[str]:
    """A new database: an SQLite file, or one created on the PostgreSQL `server` (a URL;
    DATABASE_URL or the local default) and dropped afterwards."""
    if not services:
        yield f"sqlite:///{workdir / 'bench.sqlite3'}"
        return
    import psycopg

    base = server or os.environ.get("DATABASE_URL", DEFAULT_PG)
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
    processes: int = 1,
    services: bool = False,
    extra_env: dict[str, str] | None = None,
    *,
    database: str | None = None,
    redis: str | None = None,
    origins: Sequence[str] = (),
    log_dir: Path | None = None,
    server: str = "daphne",
) -> Iterator[Stack]:
    """Yield a running deployment; everything is stopped and removed afterwards.

    With services: a fresh database on the PostgreSQL server `database` names
    (default DATABASE_URL), Redis at `redis` (default REDIS_URL), and HAProxy in
    front. `origins` are more addresses clients may come through (a proxy).
    """
    with (
        tempfile.TemporaryDirectory(prefix="rounds-bench-") as tmp,
        fresh_database(services, Path(tmp), database) as database_url,
    ):
        ports = [free_port() for _ in range(processes)]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        balancer_port = free_port() if services else None
        front = [f"http://127.0.0.1:{balancer_port}"] if balancer_port else []
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "rounds.settings",
            "DATABASE_URL": database_url,
            "ROUNDS_VAR_DIR": tmp,
            "ROUNDS_DEMO_PASSWORD": DEMO_PASSWORD,
            "ROUNDS_ALLOWED_ORIGINS": ",".join([*urls, *front, *origins]),
            "ROUNDS_CHANNEL_PREFIX": f"bench{secrets.token_hex(3)}",
            "ROUNDS_LOG_LEVEL": "WARNING",
            # The benchmark's users sign in with a password alone: it measures posting.
            "ROUNDS_SECOND_FACTOR": "off",
            **(extra_env or {}),
        }
        if services:
            env["REDIS_URL"] = redis or os.environ.get("REDIS_URL", DEFAULT_REDIS)
        else:
            env.pop("REDIS_URL", None)
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True, cwd=ROOT)
        subprocess.run(
            [*manage, "seed_demo", "--patients", "30", "--no-user-keys"],
            env=env,
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        stack = Stack(
            urls=urls,
            env=env,
            description=(
                f"{processes} {server}, "
                + ("PostgreSQL + Redis" if services else "SQLite + in-memory layer")
            ),
            ports=ports,
            log_dir=log_dir,
            server=server,
        )
        with serve(stack):
            if balancer_port is None:
                yield stack
                return
            log = log_dir / "haproxy.log" if log_dir else None
            with start_balancer(ports, balancer_port, Path(tmp), log) as balancer:
                stack.balancer = balancer
                yield stack


@contextlib.contextmanager
def start_floor(
    processes: int = 1,
    services: bool = False,
    extra_env: dict[str, str] | None = None,
    *,
    balanced: bool = False,
    server: str = "daphne",
) -> Iterator[Stack]:
    """Yield the floor (bench/floor/) on the same server and layer as start_stack would.

    No database: only daphne processes and, with services, Redis under a
    prefix of this run's own; with `balanced` too, HAProxy in front from
    deploy/haproxy.cfg, as Rounds has (the floor answers its health checks).
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
        description=f"{processes} {server}, " + ("Redis" if services else "in-memory layer"),
        ports=ports,
        application="bench.floor.asgi:application",
        server=server,
    )
    with serve(stack):
        if not (services and balanced):
            yield stack
            return
        with (
            tempfile.TemporaryDirectory(prefix="rounds-floor-") as tmp,
            start_balancer(stack.ports, free_port(), Path(tmp)) as balancer,
        ):
            stack.balancer = balancer
            yield stack


def through_balancer(stack: Stack) -> Stack:
    """The same deployment, its clients all coming through HAProxy: every client
    address is the balancer's, which spreads the sockets over the processes."""
    if stack.balancer is None:
        raise RuntimeError("this deployment has no load balancer (run with --services)")
    return dataclasses.replace(
        stack,
        urls=[stack.balancer.url] * len(stack.urls),
        description=stack.description + " via HAProxy",
    )


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


def daphne_flags(port: int, application: str) -> list[str]:
    """One set of server flags for Rounds and the floor, so they run on the same server."""
    return ["-b", "127.0.0.1", "-p", str(port), application]


def daphne_command(port: int, application: str) -> list[str]:
    """The floor: daphne itself."""
    daphne = str(Path(sys.executable).parent / "daphne")
    return [daphne, *daphne_flags(port, application)]


def serve_command(port: int, application: str = ROUNDS_APPLICATION) -> list[str]:
    """Rounds: its production entry point, daphne with the same flags and a drain on
    SIGTERM (rounds/serve.py). The floor has no drain to run (it has no sockets'
    state to hand over), so it keeps daphne's own command."""
    return [sys.executable, "-m", "rounds.serve", *daphne_flags(port, application)]


def uvicorn_command(port: int, application: str) -> list[str]:
    """uvicorn instead of daphne (--server uvicorn), for Rounds and the floor alike: its
    websockets implementation, no access log (daphne's is off too), no drain of
    Rounds' own (uvicorn closes the sockets on SIGTERM)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        application,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ws",
        "websockets",
        "--no-access-log",
        "--lifespan",
        "off",
    ]


def raise_open_files_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (children inherit it): one fd per socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def spawn_sealer(stack: Stack) -> subprocess.Popen:
    """`manage.py audit_sealer`, as a deployment runs it (docs/operations.md)."""
    with contextlib.ExitStack() as files:
        output = (
            files.enter_context((stack.log_dir / "sealer.log").open("ab"))
            if stack.log_dir
            else subprocess.DEVNULL
        )
        return subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "audit_sealer"],
            env=stack.env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


@contextlib.contextmanager
def serve(stack: Stack) -> Iterator[None]:
    """Run one process per port until the block ends; healthy before it starts. With
    ROUNDS_AUDIT_SEALER=process, the deployment's sealer runs beside them."""
    raise_open_files_limit()
    try:
        for index in range(len(stack.ports)):
            stack.spawn(index)
        if stack.env.get("ROUNDS_AUDIT_SEALER") == "process":
            stack.helpers.append(spawn_sealer(stack))
        for url, process in zip(stack.urls, stack.processes, strict=True):
            wait_healthy(url, process)
        yield
    finally:
        for process in [*stack.processes, *stack.helpers]:
            if process.poll() is None:
                process.terminate()
        for process in [*stack.processes, *stack.helpers]:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
