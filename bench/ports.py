"""The ports the benchmarks' servers (and the live tests') listen on."""

import secrets
import socket
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LISTEN_PORTS_FLOOR = 10_000


def ephemeral_ports() -> range:
    """The ports the kernel hands to outgoing connections (Linux's default elsewhere)."""
    try:
        low, high = (int(part) for part in EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def free_port() -> int:
    """A port free now and outside the ephemeral range.

    A port the kernel picked for `bind(0)` comes from the range it also gives to
    outgoing connections: between this call and the server's own bind, one of the
    stack's connections to PostgreSQL or Redis could take it, and HAProxy or daphne
    would exit with "address in use". Outside the range only an explicit bind competes.
    """
    ephemeral = ephemeral_ports()
    candidates = [p for p in range(LISTEN_PORTS_FLOOR, 65536) if p not in ephemeral]
    for port in secrets.SystemRandom().sample(candidates, min(200, len(candidates))):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port outside the ephemeral range")
