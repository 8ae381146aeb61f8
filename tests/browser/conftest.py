"""Playwright (system Chromium) against real daphne processes (tests/live/servers.py).

The cluster is the live tests' one: SQLite and the in-memory layer by
default, PostgreSQL and Redis when DATABASE_URL and REDIS_URL are set. The
browser talks to the first server. IT's deployment file of pinned
institution fingerprints (docs/browser.md) is written from the demo keys
seed_demo made, as IT would from their offline keys.

Wiring only: the helpers are in tests/browser/support.py.
"""

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, VECTORS, demo_cluster
from tests.live.servers import LiveCluster


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> None:
    """The suite's async layer flush does not apply: these tests drive separate daphne
    processes, and an async fixture would fight sync Playwright's event loop."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[LiveCluster]:
    with demo_cluster() as running:
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def vectors() -> dict:
    return {
        name: json.loads((VECTORS / f"{name}.json").read_text())
        for name in ("envelope", "wrap", "statement", "stream", "backup")
    }
