"""Wiring only: the fixtures every test may ask for, and the suite's hooks.

The helpers themselves (the personas' hospital, API clients, sockets, audit
readers) are in tests/support/, one copy each; import them from there.
- `hospital`, `bare_hospital` (before any key), `live_hospital` (committed);
- `checkpoint_sink`: an audit checkpoint key and file sink of the test's own;
- `moto_endpoint` (one S3 server for the session), `blob_store` (each test that asks
  for it runs twice: on disk, then on S3) and `uploader`, for tests/media,
  tests/retention and tests/audit;
- a fresh channel layer for every test; the services hook (tests that need
  PostgreSQL and Redis are skipped without them, never in CI).
"""

import importlib
import os
import time
from collections.abc import Iterator

import pytest
from channels.layers import get_channel_layer
from django.apps import apps as django_apps
from django.core.management.commands import flush
from django.db import connections
from django.utils import translation

from audit.guard import maintenance
from tests.support.hospital import Hospital, build_hospital
from tests.support.storage import BlobStore, disk_store, s3_store
from tests.support.uploads import UploadClient

SERVICES = bool(os.environ.get("DATABASE_URL", "").startswith("postgres")) and bool(
    os.environ.get("REDIS_URL")
)

# Emptying the test database between transactional tests has to get past the
# audit tables' append-only triggers; that is what maintenance mode is for. The flush
# also empties what a migration wrote (the default keyword nomenclature), which the
# next test, whichever file it comes from (xdist runs files side by side), expects:
# it is written back.
_original_flush = flush.Command.handle
_default_keywords = importlib.import_module("media.migrations.0002_default_keywords")


def _flush_in_maintenance(self, **options):
    database = options.get("database", "default")
    with maintenance(connections[database]):
        done = _original_flush(self, **options)
    _default_keywords.add_defaults(django_apps, None)
    return done


flush.Command.handle = _flush_in_maintenance


def pytest_collection_modifyitems(config, items):
    """Browser tests run last; tests on the moto server are marked `s3` (`make check`
    leaves them out); tests marked `services` need PostgreSQL and Redis: skipped
    without them, never in CI.

    Playwright's sync API keeps its event loop marked as running in the main
    thread for as long as the session's browser lives, and every async test
    after it would find a loop already running: so nothing follows them.
    """
    items.sort(key=lambda item: item.nodeid.startswith("tests/browser/"))
    in_browser = {item.nodeid.startswith("tests/browser/") for item in items}
    if os.environ.get("PYTEST_XDIST_WORKER") and len(in_browser) == 2:
        # xdist hands a worker whole files in no set order: a browser file could come
        # before an async test in the same process.
        raise pytest.UsageError(
            "with -n, run tests/browser in a pytest run of its own (make test does)"
        )
    if SERVICES:
        return
    reason = "needs DATABASE_URL (PostgreSQL) and REDIS_URL; .ci/run sets both"
    for item in items:
        if "services" in item.keywords:
            if os.environ.get("CI"):
                item.add_marker(
                    pytest.mark.xfail(reason="CI must provide services", strict=True, run=False)
                )
                raise pytest.UsageError(f"{item.nodeid}: {reason} (CI never skips it)")
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_itemcollected(item: pytest.Item) -> None:
    """Marked as each test is collected, so that `-m` sees the mark."""
    if talks_to_s3(item):
        item.add_marker(pytest.mark.s3)


def talks_to_s3(item: pytest.Item) -> bool:
    """A test on the moto server: it asks for it, or runs on the "s3" blob store."""
    callspec = getattr(item, "callspec", None)
    on_s3 = callspec is not None and callspec.params.get("blob_store") == "s3"
    return on_s3 or "moto_endpoint" in getattr(item, "fixturenames", ())


@pytest.fixture(autouse=True)
def _default_language_after_each_test() -> Iterator[None]:
    """A request leaves its language active in the thread (LocaleMiddleware does not
    undo it): the next test starts in the default again, whatever this one asked for."""
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
async def _fresh_channel_layer():
    layer = get_channel_layer()
    if hasattr(layer, "flush"):
        await layer.flush()
    yield


@pytest.fixture
def hospital(db) -> Hospital:
    return build_hospital()


@pytest.fixture
def bare_hospital(db) -> Hospital:
    """The hospital before any key: no identity, no compliance key, no room key version."""
    return build_hospital(keys=False)


@pytest.fixture
def live_hospital(transactional_db) -> Hospital:
    """The same hospital, committed, for tests whose work runs in other threads."""
    return build_hospital()


# Run the services hook after `-m` has deselected tests: .ci/run's first stage
# (`-m 'not services'` under CI=true) must not turn deselected tests into errors.
pytest_collection_modifyitems = pytest.hookimpl(trylast=True)(pytest_collection_modifyitems)


@pytest.fixture(scope="session", autouse=True)
def _release_database_connections(django_db_setup, django_db_blocker):
    """Close what worker threads left open, so the test database can be dropped.

    Consumers and actions run in asgiref's worker threads, each with its own
    connection; PostgreSQL refuses to drop a database that still has them.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def checkpoint_sink(settings, tmp_path):
    """A checkpoint key and a file sink of this test's own, nothing remembered from another
    test; the key's public half is returned (what a verifier pins)."""
    from audit import checkpoints

    settings.ROUNDS_AUDIT_CHECKPOINT_KEY = tmp_path / "checkpoint-keys" / "checkpoint.key"
    settings.ROUNDS_AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    settings.ROUNDS_AUDIT_CHECKPOINT_SINK = "file"
    checkpoints.reset_schedule()
    key = checkpoints.create_key(settings.ROUNDS_AUDIT_CHECKPOINT_KEY)
    yield bytes(key.verify_key)
    checkpoints.reset_schedule()


@pytest.fixture(scope="session")
def moto_endpoint():
    """One S3-compatible server for the session, on a free port."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["disk", "s3"])
def blob_store(request, settings, tmp_path) -> BlobStore:
    """The "attachments" storage of this test: on disk, then on S3 (the same test twice).

    Setting STORAGES through pytest-django's `settings` makes Django drop its
    cached storage objects (django.test.signals.storages_changed), and again
    when the test ends.
    """
    if request.param == "s3":
        return s3_store(settings, request.getfixturevalue("moto_endpoint"))
    return disk_store(settings, tmp_path)


@pytest.fixture
def uploader():
    """`uploader(user)`: an UploadClient for that persona."""
    return UploadClient


# Connections a worker may hold between tests without leaking any: the test's own, the
# audit sealer's and the push sender's daemon threads, and one being handed back.
POOL_CHECKED_OUT_AT_REST = 4


def _pool_checked_out() -> int | None:
    from django.db import connection

    pool = connection.pool if connection.vendor == "postgresql" else None
    if pool is None:
        return None
    stats = pool.get_stats()
    return int(stats.get("pool_size", 0)) - int(stats.get("pool_available", 0))


@pytest.fixture(autouse=True)
def _no_pooled_connection_left_behind(request) -> Iterator[None]:
    """A thread that ends holding a pooled connection takes it out of the pool for good,
    and some later test, anywhere, fails for want of one (the ADT listener's worker
    threads once did). Fail the test that leaves them, with the reason."""
    if not (
        request.node.get_closest_marker("django_db") or "django_db_setup" in request.fixturenames
    ):
        yield
        return
    before = _pool_checked_out()
    yield
    if before is None:
        return
    deadline = time.monotonic() + 2
    while (after := _pool_checked_out() or 0) > max(before, POOL_CHECKED_OUT_AT_REST):
        if time.monotonic() > deadline:
            pytest.fail(
                f"this test left {after - before} more pooled database connections checked "
                f"out ({after} now): a thread ended, or kept running, holding its connection"
            )
        time.sleep(0.05)
