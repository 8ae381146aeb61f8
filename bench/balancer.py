"""HAProxy in front of a deployment's daphne processes, from deploy/haproxy.cfg.

The benchmarks run the same file the operators' guide explains (docs/operations.md,
"Behind a load balancer"): its `${…}` are set in HAProxy's environment, and its
`server` lines are replaced by one per process of the deployment. HAProxy runs
in the foreground as a child of the benchmark (`-db`); its admin socket tells
which processes it has in rotation.
"""

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "haproxy.cfg"
SERVER_LINE = re.compile(r"^\s*server\s+daphne\d+\s")


def haproxy_binary() -> str:
    """Debian installs it in /usr/sbin, which a user's PATH may lack."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError("HAProxy is not installed (Debian: apt-get install haproxy)")
    return found


def render(ports: list[int], template: Path = TEMPLATE) -> str:
    """The template with its `server daphneN` lines replaced by one per port, in place."""
    lines = template.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if SERVER_LINE.match(line))
    kept = [line for line in lines if not SERVER_LINE.match(line)]
    servers = [f"    server daphne{n} 127.0.0.1:{port}" for n, port in enumerate(ports, 1)]
    return "\n".join(kept[:first] + servers + kept[first:]) + "\n"


@dataclass
class Balancer:
    port: int
    stats_path: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, line: str) -> str:
        """One command on the admin socket (HAProxy's management guide, section 9.3)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(str(self.stats_path))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self) -> dict[str, str]:
        """Each daphne process's state as HAProxy sees it: UP, DOWN, "UP 1/2" (rising)…"""
        rows = self.command("show stat").splitlines()
        header = rows[0].lstrip("# ").split(",")
        name, server, status = (
            header.index("pxname"),
            header.index("svname"),
            header.index("status"),
        )
        states = {}
        for row in rows[1:]:
            fields = row.split(",")
            if len(fields) > status and fields[name] == "daphne" and fields[server] != "BACKEND":
                states[fields[server]] = fields[status]
        return states

    def all_up(self) -> bool:
        states = self.servers()
        return bool(states) and all(state == "UP" for state in states.values())

    def wait_all_up(self, deadline: float = 30.0) -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.process.returncode}")
            with contextlib.suppress(OSError):
                if self.all_up():
                    return
            time.sleep(0.1)
        raise RuntimeError(f"HAProxy does not see every process up: {self.servers()}")


@contextlib.contextmanager
def start_balancer(
    ports: list[int], port: int, workdir: Path, log: Path | None = None
) -> Iterator[Balancer]:
    """HAProxy on `port` in front of the daphne processes on `ports`, every one up
    before the block starts; stopped afterwards."""
    config = workdir / "haproxy.cfg"
    config.write_text(render(ports))
    stats = workdir / "haproxy.sock"
    env = {
        **os.environ,
        "ROUNDS_LB_BIND": f"127.0.0.1:{port}",
        "ROUNDS_LB_HOST": "127.0.0.1",
        "ROUNDS_LB_STATS": str(stats),
    }
    binary = haproxy_binary()
    subprocess.run([binary, "-c", "-q", "-f", str(config)], env=env, check=True)
    with contextlib.ExitStack() as files:
        output = files.enter_context(log.open("ab")) if log else subprocess.DEVNULL
        process = subprocess.Popen(
            [binary, "-db", "-f", str(config)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    balancer = Balancer(port, stats, process)
    try:
        balancer.wait_all_up()
        yield balancer
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
