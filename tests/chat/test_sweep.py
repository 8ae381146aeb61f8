"""The delivery sweep (chat/lifecycle.py) tells a lost publication from a late one.

A socket still short of the head the previous sweep saw is caught up from the
database only if it was sent nothing of that department since: one that is still
being sent events is late (a process under load), and reading for it would add to
the load. The end-to-end catch-up of a lost publication is in
tests/chat/test_delivery_faults.py; here the heads are given, so the rule alone
is tested.
"""

import pytest

from chat import lifecycle

# The sweep's database thread closes stale connections around its (replaced) read.
pytestmark = pytest.mark.django_db(transaction=True)

DEPARTMENT = 7


class Socket:
    """What the sweep reads and calls of a consumer."""

    auth = None
    pending_groups: set[str] = set()

    def __init__(self, delivered: int) -> None:
        self.delivered = {DEPARTMENT: delivered}
        self.caught: list[tuple[int, int]] = []

    async def catch_up(self, department_id: int, upto: int) -> None:
        self.caught.append((department_id, upto))
        self.delivered[department_id] = upto


def sweeping(monkeypatch, heads: dict[int, int]) -> lifecycle.Process:
    monkeypatch.setattr(lifecycle, "read_state", lambda departments, sessions: (heads, set()))
    return lifecycle.Process()


async def test_a_socket_still_being_sent_events_is_late_not_lost(monkeypatch):
    heads = {DEPARTMENT: 10}
    process = sweeping(monkeypatch, heads)
    socket = Socket(delivered=0)
    process.consumers.add(socket)  # type: ignore[arg-type]

    await process.sweep()  # behind: noted
    socket.delivered[DEPARTMENT] = 4  # sent events since, still short of 10
    heads[DEPARTMENT] = 20
    await process.sweep()
    assert socket.caught == []

    await process.sweep()  # nothing sent since: up to the head the sweep before saw
    assert socket.caught == [(DEPARTMENT, 20)]
    assert process.caught_up == 1


async def test_a_socket_sent_nothing_is_caught_up_at_the_second_sweep(monkeypatch):
    process = sweeping(monkeypatch, {DEPARTMENT: 3})
    socket = Socket(delivered=2)
    process.consumers.add(socket)  # type: ignore[arg-type]

    await process.sweep()
    assert socket.caught == []
    await process.sweep()
    assert socket.caught == [(DEPARTMENT, 3)]
    await process.sweep()  # up to date: left alone
    assert socket.caught == [(DEPARTMENT, 3)]


async def test_while_publications_stay_lost_every_sweep_catches_up(monkeypatch):
    """What a sweep sent itself does not count as the socket being sent events."""
    heads = {DEPARTMENT: 10}
    process = sweeping(monkeypatch, heads)
    socket = Socket(delivered=0)
    process.consumers.add(socket)  # type: ignore[arg-type]

    await process.sweep()
    for head in (20, 30, 40):
        heads[DEPARTMENT] = head
        await process.sweep()
    assert socket.caught == [(DEPARTMENT, 10), (DEPARTMENT, 20), (DEPARTMENT, 30)]
