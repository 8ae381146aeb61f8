"""Real daphne processes on a database of their own, for the live tests.

`LiveCluster` builds a fresh database (a new PostgreSQL database on the
server DATABASE_URL names, dropped at the end; otherwise a temporary SQLite
file), migrates and seeds it with `seed_demo` in a subprocess, then starts N
daphne processes serving `rounds.asgi:application` on free local ports. With
REDIS_URL they share Redis under a channel prefix unique to this run, so
parallel runs (and the rest of the suite, whose layer flushes every key under
"rounds") never see each other's groups. Processes are killed at teardown,
on failure, and at interpreter exit.

These tests never touch pytest-django's test database.
"""

import atexit
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from bench.ports import free_port

BASE_DIR = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
DEMO_PASSWORD = "live-rounds-demo-2026"
START_TIMEOUT = 30.0

# Variables of the test process that must not leak into a server's environment
# (tests.settings sets some of them, pytest-django sets DJANGO_SETTINGS_MODULE).
_SCRUBBED = ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY")

_live_processes: set[subprocess.Popen] = set()


def _kill_leftovers() -> None:
    for process in list(_live_processes):
        with contextlib.suppress(ProcessLookupError):
            process.kill()


atexit.register(_kill_leftovers)


def postgres_url(url: str | None) -> bool:
    return bool(url) and urlsplit(url).scheme in ("postgres", "postgresql")


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


class LiveDatabase:
    """A database made for one cluster and thrown away after it."""

    def __init__(self, root: Path, template_url: str | None) -> None:
        self.template_url = template_url
        if postgres_url(template_url):
            import psycopg

            self.name = f"rounds_live_{secrets.token_hex(6)}"
            self.admin_url = with_database(template_url, "postgres")
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            self.url = with_database(template_url, self.name)
        else:
            self.name = str(root / "live.sqlite3")
            self.admin_url = None
            self.url = f"sqlite:///{self.name}"

    @property
    def vendor(self) -> str:
        return "postgresql" if self.admin_url else "sqlite"

    def drop(self) -> None:
        if self.admin_url is None:
            return
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@dataclass
class Server:
    port: int
    log_path: Path
    process: subprocess.Popen | None = None
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    @property
    def root(self) -> Path:
        """The cluster's folder (its var/ holds seed_demo's demo keys and pins)."""
        return self.log_path.parent

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class LiveCluster:
    root: Path
    database: LiveDatabase
    redis_url: str | None
    prefix: str
    servers: list[Server] = field(default_factory=list)
    # The ASGI application daphne serves (tests/live/faulty_asgi.py injects faults).
    application: str = "rounds.asgi:application"
    # Settings of the servers' environment (ROUNDS_COMPLIANCE_FOUR_EYES, say).
    settings: dict[str, str] = field(default_factory=dict)
    # seed_demo's options: by default a small hospital whose users make their own keys
    # and sign their own chain, which is what most live tests exercise; {} is the demo
    # exactly as `make run` seeds it (every key ready, rooms/demo.py).
    seed: dict[str, object] = field(default_factory=lambda: {"patients": 8, "user_keys": False})
    # What seed_demo printed (the logins, and the recovery codes when it made keys).
    seed_output: str = ""

    @property
    def channel_backend(self) -> str:
        return "RedisPubSubChannelLayer" if self.redis_url else "InMemoryLayer"

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("ROUNDS_") and k not in _SCRUBBED
        }
        env.update(
            DJANGO_SETTINGS_MODULE="rounds.settings",
            DATABASE_URL=self.database.url,
            ROUNDS_VAR_DIR=str(self.root / "var"),
            ROUNDS_LIGHT_PASSWORD_HASH="1",
            ROUNDS_AUDIT_SEALER="thread",
            ROUNDS_DEMO_PASSWORD=DEMO_PASSWORD,
            ROUNDS_CHANNEL_PREFIX=self.prefix,
            # localhost too: WebAuthn takes no IP address as relying party (test_passkey.py).
            ROUNDS_ALLOWED_ORIGINS=",".join(
                [s.url for s in self.servers] + [f"http://localhost:{s.port}" for s in self.servers]
            ),
            ROUNDS_LOG_LEVEL="WARNING",
            # Heads and officers sign in with a password alone, as in `make run`; the second
            # factor's live tests set "privileged" in `settings`.
            ROUNDS_SECOND_FACTOR="off",
            PYTHONUNBUFFERED="1",
        )
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        env.update(self.settings)
        return env

    def manage(self, *args: str, timeout: float = 120) -> str:
        """Run manage.py against the cluster's database; returns its output."""
        done = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def prepare(self) -> None:
        # One interpreter for both: Django's start-up is most of their cost.
        self.seed_output = self.manage(
            "shell",
            "-c",
            "from django.core.management import call_command; "
            "call_command('migrate', interactive=False, verbosity=0); "
            f"call_command('seed_demo', **{self.seed!r})",
        )

    def spawn(self, server: Server) -> None:
        log = server.log_path.open("ab")
        try:
            server.process = subprocess.Popen(
                # The production entry point: daphne, draining on SIGTERM (rounds/serve.py).
                [
                    PYTHON,
                    "-m",
                    "rounds.serve",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(server.port),
                    self.application,
                ],
                cwd=BASE_DIR,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        _live_processes.add(server.process)

    def wait_healthy(self, server: Server, timeout: float = START_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            if server.process is None or server.process.poll() is not None:
                code = server.process.returncode if server.process else None
                raise RuntimeError(f"daphne on {server.port} exited ({code}):\n{server.log_tail()}")
            try:
                response = httpx.get(server.url + "/healthz", timeout=2)
                if response.status_code == 200:
                    return response.json()
                last_error = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                last_error = type(exc).__name__
            time.sleep(0.1)
        raise RuntimeError(
            f"daphne on {server.port} not healthy after {timeout}s ({last_error}):\n"
            f"{server.log_tail()}"
        )

    def start(self, count: int) -> None:
        self.servers = [
            Server(port=free_port(), log_path=self.root / f"daphne-{i}.log") for i in range(count)
        ]
        for server in self.servers:
            self.spawn(server)
        for server in self.servers:
            self.wait_healthy(server)

    def kill(self, server: Server, sig: int = signal.SIGKILL) -> None:
        process = server.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        _live_processes.discard(process)
        server.process = None

    def restart(self, server: Server) -> None:
        """A new process on the same port (so the origin allow-list still holds)."""
        self.kill(server)
        server.restarts += 1
        deadline = time.monotonic() + 10
        while True:
            self.spawn(server)
            try:
                self.wait_healthy(server)
                return
            except RuntimeError:
                # The port may linger for a moment after SIGKILL; try again.
                if time.monotonic() > deadline:
                    raise
                self.kill(server)
                time.sleep(0.2)

    def stop(self) -> None:
        for server in self.servers:
            self.kill(server, signal.SIGTERM)
        if self.redis_url:
            import redis

            client = redis.Redis.from_url(self.redis_url)
            try:
                keys = list(client.scan_iter(match=self.prefix + "*", count=1000))
                if keys:
                    client.delete(*keys)
            finally:
                client.close()


@contextlib.contextmanager
def live_cluster(
    count: int,
    application: str = "rounds.asgi:application",
    redis_url: str | None = None,
    settings: dict[str, str] | None = None,
    seed: dict[str, object] | None = None,
) -> Iterator[LiveCluster]:
    """Database, migrations, seed and `count` daphne processes serving `application`;
    all gone on exit. Redis: `redis_url`, else REDIS_URL's, else none. `seed`: the
    options of seed_demo (LiveCluster.seed)."""
    redis_url = redis_url or os.environ.get("REDIS_URL") or None
    with tempfile.TemporaryDirectory(prefix="rounds-live-") as tmp:
        root = Path(tmp)
        database = LiveDatabase(root, os.environ.get("DATABASE_URL"))
        # Not "rounds…": the suite's own layer flushes every key under "rounds".
        cluster = LiveCluster(
            root,
            database,
            redis_url,
            prefix=f"live{secrets.token_hex(5)}",
            application=application,
            settings=settings or {},
        )
        if seed is not None:
            cluster.seed = seed
        try:
            cluster.prepare()
            cluster.start(count)
            yield cluster
        finally:
            try:
                cluster.stop()
            finally:
                database.drop()


@pytest.fixture(scope="module")
def cluster() -> Iterator[LiveCluster]:
    """Two processes when they can share Redis; otherwise the one in-memory layer allows."""
    with live_cluster(2 if os.environ.get("REDIS_URL") else 1) as running:
        yield running
