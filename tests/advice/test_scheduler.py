"""The advice scheduler (advice/scheduler.py): timers that are rows, fired once each
when several schedulers race for them (threads here, each with its own database
connection, as two daphne processes would; tests/live/test_advice_live.py does it
with processes), and its thread, which sleeps until the next timer."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from advice import scheduler
from advice.actions import check_request_advice
from advice.models import AdviceRequest, AdviceStep, Status
from tests.support import Hospital
from tests.support.posts import post

pytestmark = pytest.mark.django_db(transaction=True)


def open_requests(h: Hospital, count: int) -> list[int]:
    ids = []
    for n in range(count):
        message = post(h, "nurse_alice", h.thread, f"race-question-{n:04d}")
        made, _ = check_request_advice(h.nurse_alice, message, "urgent", h.surgeon_bob.pk, None)
        ids.append(made["id"])
    return ids


def test_racing_schedulers_fire_each_timer_once(live_hospital, settings):
    settings.ROUNDS_ADVICE_MAX_OPEN = 100
    h = live_hospital
    ids = open_requests(h, 30)
    moment = timezone.now() + timedelta(seconds=301)
    fired: list[int] = []
    failures: list[BaseException] = []
    start = threading.Barrier(3)

    def race() -> None:
        try:
            start.wait()
            for _ in range(3):
                fired.append(scheduler.run_due(moment, batch=4))
        except BaseException as error:  # a failure in a thread must fail the test
            failures.append(error)
        finally:
            connection.close()

    racers = [threading.Thread(target=race) for _ in range(3)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=60)
    assert not failures, failures
    assert sum(fired) == len(ids)
    for request_id in ids:
        kinds = list(
            AdviceStep.objects.filter(request_id=request_id)
            .order_by("number")
            .values_list("kind", flat=True)
        )
        assert kinds == ["requested", "escalated"], (request_id, kinds)


def test_the_thread_fires_a_due_timer_and_sleeps_until_the_next(live_hospital, settings):
    settings.ROUNDS_ADVICE_ESCALATE_SECONDS = {"urgent": 0.3, "emergency": 0.1}
    settings.ROUNDS_SCHEDULER_POLL_SECONDS = 5.0
    h = live_hospital
    [request_id] = open_requests(h, 1)
    due = AdviceRequest.objects.get(pk=request_id).due_at
    # Nothing due yet: it sleeps until the timer, not the (long) poll interval.
    pause = scheduler.run_round()
    assert 0 < pause <= 0.3
    waited = threading.Event()
    while not waited.wait(0.05):
        if AdviceStep.objects.filter(request_id=request_id, kind="escalated").exists():
            break
        scheduler.run_round()
    step = AdviceStep.objects.get(request_id=request_id, kind="escalated")
    assert step.at >= due
    assert step.data["due_at"] == due.isoformat()


def test_nothing_due_means_a_poll_interval_of_sleep(live_hospital, settings):
    settings.ROUNDS_SCHEDULER_POLL_SECONDS = 0.5
    assert scheduler.next_due() is None
    assert scheduler.run_round() == 0.5


def test_a_round_with_nothing_due_reads_only_the_earliest_timer(live_hospital, settings):
    """The locked, joined read of the due rows is the round's dear part (docs/performance.md):
    a round that finds no timer due, or one not due yet, does not make it."""
    settings.ROUNDS_ADVICE_ESCALATE_SECONDS = {"urgent": 60, "emergency": 30}
    h = live_hospital
    open_requests(h, 1)
    for _ in range(2):  # one not due yet; then none open at all
        with CaptureQueriesContext(connection) as queries:
            scheduler.run_round()
        assert len(queries) == 1, [q["sql"] for q in queries]
        assert "FOR UPDATE" not in queries[0]["sql"] and "MIN(" in queries[0]["sql"]
        AdviceRequest.objects.update(status=Status.CANCELLED, due_at=None)


def test_a_failed_round_is_counted_logged_and_retried(live_hospital, settings, monkeypatch, caplog):
    from rounds import metrics

    settings.ROUNDS_SCHEDULER_POLL_SECONDS = 0.5

    def broken(*args, **kwargs):
        raise RuntimeError("database restarting")

    monkeypatch.setattr(scheduler, "next_due", broken)
    before = metrics.ADVICE_SCHEDULER_FAILURES._value.get()
    assert scheduler.run_round() == 0.5
    assert metrics.ADVICE_SCHEDULER_FAILURES._value.get() == before + 1
    assert "advice scheduler round failed" in caplog.text
