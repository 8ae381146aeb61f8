"""GET /healthz: the database answers and the channel layer carries a message."""

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


@pytest.mark.services
def test_pooled_connections_killed_by_a_database_restart_cost_no_request():
    """After PostgreSQL restarts, every pooled connection is dead; the pool checks each
    before lending it (CONN_HEALTH_CHECKS), so no request fails on one."""
    from django.db import connection

    assert Client().get("/healthz").status_code == 200  # pooled connections in use
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1
    for _ in range(3):
        response = Client().get("/healthz")
        assert response.status_code == 200, response.content
        assert response.json()["database"]["ok"] is True


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
