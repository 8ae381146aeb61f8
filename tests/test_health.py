"""GET /healthz: the database answers and the channel layer carries a message."""

import time

import pytest
from django.conf import settings
from django.test import Client

# The view checks the database through database_sync_to_async, which closes a
# connection left inside a test transaction: these tests commit instead.
pytestmark = pytest.mark.django_db(transaction=True)


def test_healthz_reports_database_and_channel_layer():
    response = Client().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["channel_layer"]["ok"] is True
    expected_vendor = (
        "postgresql" if "postgres" in settings.DATABASES["default"]["ENGINE"] else "sqlite"
    )
    assert body["database"]["vendor"] == expected_vendor
    expected_layer = "RedisPubSubChannelLayer" if settings.REDIS_URL else "InMemoryLayer"
    assert body["channel_layer"]["backend"] == expected_layer


def test_healthz_needs_no_login_and_reveals_no_secrets():
    body = Client().get("/healthz").content.decode()
    assert settings.SECRET_KEY not in body
    if settings.REDIS_URL:
        assert settings.REDIS_URL not in body


def test_healthz_reports_a_broken_channel_layer_as_degraded_but_serving(monkeypatch):
    """Without Redis a process still serves (its sweep delivers): it stays in the load
    balancer's rotation, and says it is degraded."""
    import rounds.health

    class Broken:
        async def new_channel(self, prefix):
            raise ConnectionError("redis is down")

    monkeypatch.setattr(rounds.health, "get_channel_layer", lambda: Broken())
    response = Client().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] is True
    assert body["channel_layer"] == {"ok": False, "error": "ConnectionError"}


def test_healthz_reports_an_unreachable_database_as_503(monkeypatch):
    import rounds.health

    def unreachable():
        raise ConnectionError("the database is restarting")

    monkeypatch.setattr(rounds.health, "_check_database", unreachable)
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["database"] == {"ok": False, "error": "ConnectionError"}


def terminate_the_other_backends() -> int:
    """End every other session of the test database, as a restart does, and wait until
    they are gone (pg_terminate_backend only signals them)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(array_agg(pid), '{}') FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        ended = cursor.fetchone()[0]
        cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [ended])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [ended])
            if cursor.fetchone()[0] == 0:
                break
            time.sleep(0.02)
    return len(ended)


@pytest.mark.services
def test_pooled_connections_killed_by_a_database_restart_cost_no_request():
    """After PostgreSQL restarts, every pooled connection is dead; the pool checks each
    before lending it (CONN_HEALTH_CHECKS), so no request fails on one."""
    assert Client().get("/healthz").status_code == 200  # pooled connections in use
    assert terminate_the_other_backends() >= 1
    for _ in range(3):
        response = Client().get("/healthz")
        assert response.status_code == 200, response.content
        assert response.json()["database"]["ok"] is True


@pytest.mark.services
def test_a_quiet_pooled_connection_is_lent_without_a_round_trip_a_dead_one_is_not(
    monkeypatch,
):
    """rounds/dbpool.py: the full check (an empty query) runs only when the idle socket
    has something on it; a terminated backend's has, and is replaced before it is lent."""
    from django.db import connection
    from psycopg_pool import ConnectionPool

    from rounds import dbpool

    full_checks = []

    def counted(conn):
        full_checks.append(conn)
        return ConnectionPool.check_connection(conn)

    assert Client().get("/healthz").status_code == 200
    assert connection.pool._check is dbpool.check_unless_quiet
    monkeypatch.setattr(
        dbpool, "ConnectionPool", type("Counted", (), {"check_connection": staticmethod(counted)})
    )
    for _ in range(5):
        assert Client().get("/healthz").status_code == 200
    assert full_checks == []
    assert terminate_the_other_backends() >= 1
    response = Client().get("/healthz")
    assert response.status_code == 200, response.content
    assert response.json()["database"]["ok"] is True
    assert full_checks  # the dead connection's socket was not quiet


@pytest.mark.services
def test_the_pool_tries_a_lost_connection_again_every_second_however_long_the_outage():
    """psycopg_pool doubles its pause after each failed attempt (1, 2, 4, 8 s…): after a
    long PostgreSQL outage the pool would come back long after the database. The
    settings keep the pause at a quarter of a second (rounds/dbpool.py)."""
    from psycopg_pool.base import AttemptWithBackoff

    attempt = AttemptWithBackoff(timeout=300)
    pauses = []
    for second in range(10):
        attempt.update_delay(float(second))
        pauses.append(attempt.delay)
    assert min(pauses) >= 0.2 and max(pauses) <= 0.3, pauses
