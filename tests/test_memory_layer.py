"""The in-memory channel layer (rounds/layers.py `InMemoryLayer`): a broadcast reaches
every member of a crowd with one sweep of expired messages, not one per receive, and
expiry still holds."""

import time

import pytest

from rounds.layers import InMemoryLayer, channel_layers


class CountingLayer(InMemoryLayer):
    sweeps = 0

    def _clean_expired(self) -> None:
        before = self._next_sweep
        super()._clean_expired()
        if self._next_sweep != before:
            self.sweeps += 1


def test_the_embedded_configuration_uses_it(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert channel_layers("X", "x")["default"]["BACKEND"] == "rounds.layers.InMemoryLayer"


async def test_a_broadcast_to_a_crowd_sweeps_once_and_reaches_everyone():
    layer = CountingLayer(capacity=10)
    crowd = [await layer.new_channel() for _ in range(2000)]
    for channel in crowd:
        await layer.group_add("department-1", channel)
    await layer.group_send("department-1", {"type": "event", "seq": 1})
    received = [await layer.receive(channel) for channel in crowd]
    assert received == [{"type": "event", "seq": 1}] * len(crowd)
    assert layer.sweeps == 1  # the base layer swept 2,001 times: at every receive and send


async def test_an_expired_message_is_still_dropped_at_the_next_sweep(monkeypatch):
    layer = InMemoryLayer(expiry=60)
    await layer.group_add("department-1", "gone.inmemory!abc")
    await layer.send("gone.inmemory!abc", {"type": "event", "seq": 1})
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    layer._next_sweep = 0.0  # the next sweep is due
    layer._clean_expired()
    assert "gone.inmemory!abc" not in layer.channels
    assert "gone.inmemory!abc" not in layer.groups.get("department-1", {})


async def test_between_sweeps_nothing_is_swept():
    layer = CountingLayer()
    await layer.send("one.inmemory!abc", {"type": "event"})
    layer._clean_expired()
    layer._clean_expired()
    assert layer.sweeps == 1
    layer._next_sweep = time.monotonic() - 0.001  # a sweep_interval later
    layer._clean_expired()
    assert layer.sweeps == 2


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """These tests build layers of their own; the suite's shared one is not touched."""
