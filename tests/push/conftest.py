"""Wiring: a local push receiver, the sender inline, local endpoints allowed."""

from collections.abc import Iterator

import pytest

from bench.push_receiver import PushReceiver, push_receiver
from push import sender


@pytest.fixture
def receiver() -> Iterator[PushReceiver]:
    with push_receiver() as running:
        yield running


@pytest.fixture(autouse=True)
def _push_settings(settings) -> Iterator[None]:
    settings.ROUNDS_PUSH_SENDER = "inline"
    settings.ROUNDS_PUSH_ALLOW_LOCAL_ENDPOINTS = True
    sender._last_message_push.clear()
    yield
    sender._last_message_push.clear()
