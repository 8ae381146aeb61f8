"""The ports the benchmarks and live tests listen on."""

import socket

from bench.ports import ephemeral_ports, free_port


def test_a_listening_port_is_never_one_an_outgoing_connection_could_take():
    """HAProxy exited with "address in use" in CI: a port from `bind(0)` had gone to a
    connection to PostgreSQL or Redis before HAProxy bound it."""
    ephemeral = ephemeral_ports()
    ports = {free_port() for _ in range(50)}
    assert not any(port in ephemeral for port in ports)
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_in_use_is_not_handed_out(monkeypatch):
    import bench.ports

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        taken = held.getsockname()[1]
        monkeypatch.setattr(bench.ports, "LISTEN_PORTS_FLOOR", taken)
        monkeypatch.setattr(bench.ports, "ephemeral_ports", lambda: range(taken + 2, 65536))
        # Two candidates below the range: the one held is passed over.
        assert {free_port() for _ in range(10)} == {taken + 1}
