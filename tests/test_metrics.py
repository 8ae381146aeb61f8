"""GET /metrics (rounds/metrics.py, rounds/metrics_view.py): who may read it, and that what
happens to posts, sockets and publications shows in it, scraped as Prometheus would."""

import logging
import time

import pytest
from django.conf import settings
from django.db import transaction
from django.test import AsyncClient, Client
from prometheus_client.parser import text_string_to_metric_families

from audit.actions import record, seal_all
from chat.consumers import batching
from core import protocol
from rounds import metrics
from tests.support import open_socket, sealed
from tests.support.sockets import connect_as, finish, ok, post, post_frame, recv

# The view reads the audit backlog through database_sync_to_async, which closes a
# connection left inside a test transaction: these tests commit instead.
pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "metrics-scraper-token-0123456789"
ELSEWHERE = "10.20.30.40"


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class Scrape:
    """One scrape's samples; a missing series reads 0, as a counter not yet touched."""

    def __init__(self, text: str) -> None:
        self.samples = parse(text)

    def __call__(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)


async def scrape() -> Scrape:
    response = await AsyncClient().get("/metrics")
    assert response.status_code == 200
    return Scrape(response.content.decode())


# --- Who may read it -------------------------------------------------------------------


def test_metrics_answer_loopback_in_the_prometheus_format():
    response = Client().get("/metrics")  # the test client comes from 127.0.0.1
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    assert "# HELP rounds_posts_answered_total " in text
    assert "# TYPE rounds_ack_latency_seconds histogram" in text
    assert "rounds_audit_unsealed_entries " in text


def test_metrics_are_a_plain_404_to_anyone_else():
    unknown = Client().get("/no-such-page", REMOTE_ADDR=ELSEWHERE)
    refused = Client().get("/metrics", REMOTE_ADDR=ELSEWHERE)
    assert refused.status_code == 404
    assert refused.content == unknown.content  # no hint that it exists
    # Loopback, but forwarded by a proxy on the same host: the client is elsewhere.
    proxied = Client().get("/metrics", HTTP_X_FORWARDED_FOR=ELSEWHERE)
    assert proxied.status_code == 404
    # No token configured: no bearer opens it.
    assert (
        Client().get("/metrics", REMOTE_ADDR=ELSEWHERE, HTTP_AUTHORIZATION="Bearer ").status_code
        == 404
    )


def test_metrics_answer_the_scraper_token_from_anywhere(settings):
    settings.ROUNDS_METRICS_TOKEN = TOKEN
    allowed = Client().get("/metrics", REMOTE_ADDR=ELSEWHERE, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert allowed.status_code == 200
    wrong = Client().get("/metrics", REMOTE_ADDR=ELSEWHERE, HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 404
    missing = Client().get("/metrics", REMOTE_ADDR=ELSEWHERE)
    assert missing.status_code == 404
    assert TOKEN not in allowed.content.decode()


# --- What moves it -----------------------------------------------------------------------


async def test_a_stored_post_moves_posts_acks_and_deliveries(live_hospital):
    h = live_hospital
    before = await scrape()
    bob, _ = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    body = sealed(h, "surgeon_bob", h.thread, "bob-metrics-0001")
    ack = await post(bob, body)  # Bob's ack, then his own copy
    frame = await recv(alice)
    assert frame["message"]["id"] == ack["message_id"]
    again = await ok(bob, post_frame(body))  # a retry: acknowledged, not stored twice
    assert again["duplicate"] is True
    after = await scrape()

    def moved(name: str, **labels: str) -> float:
        return after(name, **labels) - before(name, **labels)

    assert moved("rounds_posts_received_total") == 2
    assert moved("rounds_posts_answered_total", outcome="stored") == 1
    assert moved("rounds_posts_answered_total", outcome="duplicate") == 1
    assert moved("rounds_ack_latency_seconds_count", type="message.post") == 2
    # One at a time: two batches of one in the posting thread.
    assert moved("rounds_post_batch_size_count") == 2
    assert moved("rounds_post_batch_size_sum") == 2
    assert moved("rounds_post_batch_seconds_count") == 2
    assert moved("rounds_post_batch_seconds_sum") > 0
    # Two sockets got the message.new live: Bob's own copy and Alice's.
    assert moved("rounds_delivery_seconds_count", path="live") == 2
    assert moved("rounds_sockets_open") == 2
    assert moved("rounds_channel_layer_errors_total", operation="publish") == 0
    await bob.disconnect()
    await alice.disconnect()
    closed = await scrape()
    assert closed("rounds_sockets_open") == before("rounds_sockets_open")
    assert (
        closed("rounds_sockets_closed_total", code="1000", by="client")
        - before("rounds_sockets_closed_total", code="1000", by="client")
        == 2
    )


@pytest.mark.slow
async def test_a_lost_publication_shows_as_a_layer_error_then_a_sweep_catch_up(
    live_hospital, monkeypatch
):
    async def refuse(publications):
        raise ConnectionError("injected: Redis is restarting")

    monkeypatch.setattr(batching, "publish_all", refuse)
    h = live_hospital
    before = await scrape()
    bob, _ = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    ack = await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-metrics-lost-1"))
    frame = await recv(alice, timeout=3)  # delivered by the sweep, from the database
    assert frame["message"]["id"] == ack["message_id"]
    after = await scrape()

    def moved(name: str, **labels: str) -> float:
        return after(name, **labels) - before(name, **labels)

    assert moved("rounds_posts_answered_total", outcome="stored") == 1
    assert moved("rounds_channel_layer_errors_total", operation="publish") == 1
    assert moved("rounds_sweep_catch_ups_total") >= 1
    assert moved("rounds_delivery_seconds_count", path="sweep") >= 1
    assert moved("rounds_delivery_seconds_count", path="live") == 0
    assert moved("rounds_sweeps_total") >= 2
    assert after("rounds_publications_pending") == 0
    await finish(bob)
    await finish(alice)


async def test_a_socket_the_server_refuses_is_counted_by_its_close_code(db):
    before = await scrape()
    communicator = await open_socket("not-a-token")
    connected, _ = await communicator.connect()
    assert connected  # accepted, then closed with the reason
    output = await communicator.receive_output(timeout=5)
    assert output == {"type": "websocket.close", "code": protocol.CLOSE_UNAUTHENTICATED}
    await communicator.disconnect()
    after = await scrape()
    labels = {"code": "4401", "by": "server"}
    assert (
        after("rounds_sockets_closed_total", **labels)
        - before("rounds_sockets_closed_total", **labels)
        == 1
    )
    assert after("rounds_sockets_opened_total") - before("rounds_sockets_opened_total") == 1


def test_the_redis_readers_lost_connection_is_counted_from_its_log():
    """channels-redis only logs it (no hook): settings.LOGGING counts its errors."""

    def receive_errors() -> float:
        return Scrape(Client().get("/metrics").content.decode())(
            "rounds_channel_layer_errors_total", operation="receive"
        )

    before = receive_errors()
    logging.getLogger("channels_redis.pubsub").error("Unexpected exception in receive task")
    assert receive_errors() - before == 1


def test_audit_entries_waiting_to_be_sealed_are_read_at_scrape_time(settings):
    settings.ROUNDS_AUDIT_SEALER = "off"  # nothing seals until asked

    def unsealed() -> Scrape:
        return Scrape(Client().get("/metrics").content.decode())

    assert unsealed()("rounds_audit_unsealed_entries") == 0
    assert unsealed()("rounds_audit_unsealed_oldest_seconds") == 0
    with transaction.atomic():
        record("test.metrics", object_type="probe", object_id=1)
        record("test.metrics", object_type="probe", object_id=2)
    waiting = unsealed()
    assert waiting("rounds_audit_unsealed_entries") == 2
    assert waiting("rounds_audit_unsealed_oldest_seconds") >= 0
    assert seal_all() == 2
    assert unsealed()("rounds_audit_unsealed_entries") == 0


def test_healthz_answers_are_counted_by_status():
    before = Scrape(Client().get("/metrics").content.decode())
    assert Client().get("/healthz").status_code == 200
    after = Scrape(Client().get("/metrics").content.decode())
    assert after("rounds_healthz_total", status="ok") - before("rounds_healthz_total", status="ok")
    assert after("rounds_health_check_up", check="database") == 1
    assert after("rounds_health_check_up", check="channel_layer") == 1


async def test_a_scrape_answers_while_the_database_does_not(db, monkeypatch):
    """A scrape waits SCRAPE_QUERY_SECONDS for the audit backlog, then answers without it:
    the metrics are there when the database is away, when they matter most."""

    def hung():
        time.sleep(1.0)
        return 0, None

    monkeypatch.setattr(metrics, "SCRAPE_QUERY_SECONDS", 0.2)
    monkeypatch.setattr("audit.actions.unsealed_backlog", hung)
    started = time.monotonic()
    response = await AsyncClient().get("/metrics")
    assert time.monotonic() - started < 0.9
    assert response.status_code == 200
    text = response.content.decode()
    assert "rounds_audit_unsealed_entries" not in text
    assert "rounds_posts_answered_total" in text


@pytest.mark.services
def test_the_postgresql_pool_is_read_at_scrape_time():
    assert Client().get("/healthz").status_code == 200  # the pool has lent a connection
    pool = Scrape(Client().get("/metrics").content.decode())
    expected = settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]
    assert pool("rounds_db_pool_max") == expected
    assert pool("rounds_db_pool_size") >= 1
    assert pool("rounds_db_pool_requests_total") >= 1
