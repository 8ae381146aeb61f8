"""rounds/serve.py: before daphne serves, the collector is set for a process that
holds thousands of sockets (docs/performance.md, "The collector, and the rights in
the numbers' round trip")."""

import gc
import weakref

import pytest
from daphne.server import Server

from rounds import serve


@pytest.fixture
def restored_collector():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_the_server_settles_the_collector_before_it_serves(monkeypatch, restored_collector):
    seen = {}

    def serve_now(self):
        seen["threshold"], seen["frozen"] = gc.get_threshold(), gc.get_freeze_count()

    monkeypatch.setattr(Server, "run", serve_now)
    monkeypatch.setattr(serve.reactor, "callWhenRunning", lambda *args: None)
    serve.DrainingServer(application=None, endpoints=["tcp:port=0"]).run()
    assert seen["threshold"][0] == serve.GC_YOUNG_THRESHOLD
    # The loaded application's objects (this test process's: Django, the apps, pytest).
    assert seen["frozen"] > 10_000


def test_garbage_made_after_the_freeze_is_still_collected(restored_collector):
    serve.settle_collector()

    class Node:
        pass

    node = Node()
    node.me = node  # a cycle: reference counting alone never frees it
    gone = weakref.ref(node)
    del node
    gc.collect()
    assert gone() is None
