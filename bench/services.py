"""PostgreSQL and Redis instances of the benchmark's own, on spare ports, to stop and restart.

The faults scenario (bench/faults.py) restarts them under load, so they must
never be the machine's own (5432, 6379): each lives in a temporary directory
and is removed at the end. PostgreSQL refuses to run as root, so under root
its commands run as the `postgres` user (`runuser`), in a directory that user
owns; trust authentication on 127.0.0.1 only.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.ports import free_port

PG_BIN = Path(os.environ.get("ROUNDS_BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))


def accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Postgres:
    """A PostgreSQL cluster in a temporary directory: `start`, `stop` (fast, as a
    deploy would), `start` again; `url` names its `postgres` database."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.data = root / "data"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        command = [str(PG_BIN / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def ready(self) -> bool:
        return accepts(self.port)


@contextlib.contextmanager
def own_postgres() -> Iterator[Postgres]:
    """A fresh cluster on a spare port, started; stopped and removed afterwards."""
    if not (PG_BIN / "postgres").exists():
        raise RuntimeError(f"PostgreSQL binaries not found in {PG_BIN} (ROUNDS_BENCH_PG_BIN)")
    root = Path(tempfile.mkdtemp(prefix="rounds-faults-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    root.chmod(0o700)
    postgres = Postgres(root, free_port())
    try:
        postgres.init()
        postgres.start()
        yield postgres
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            postgres.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


class Redis:
    """redis-server on a spare port, no persistence: `stop` and `start` again (empty)."""

    def __init__(self, port: int, log: Path | None = None) -> None:
        self.port = port
        self.log = log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, deadline: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        with contextlib.ExitStack() as files:
            output = files.enter_context(self.log.open("ab")) if self.log else subprocess.DEVNULL
            self.process = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        end = time.monotonic() + deadline
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"redis-server on {self.port} did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@contextlib.contextmanager
def own_redis(log: Path | None = None) -> Iterator[Redis]:
    redis = Redis(free_port(), log)
    try:
        redis.start()
        yield redis
    finally:
        redis.stop()
