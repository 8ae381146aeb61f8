"""Thread and department numbers are taken in one lock order (chat/numbering.py), and a
sender's key kept by the process is checked against the database's under those locks."""

import os
import re
import threading
import time
import uuid
from collections.abc import Callable

import psycopg
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from psycopg import pq

from accounts.models import IdentityKey
from chat.actions import Post, check_post_messages
from chat.models import Thread
from chat.numbering import LOCK_ORDER, take_post_numbers
from core.crypto import IdentityKeyPair
from core.errors import RoundsError
from tests.support import Hospital, sealed

pytestmark = pytest.mark.django_db

LOCKING = re.compile(
    r'^\s*(?:UPDATE\s+"?(?P<updated>\w+)"?.*?WHERE\s+"?(?:\w+"?\.)?"?id"?\s*=\s*(?P<id>\d+)'
    r'|SELECT .* FROM\s+"?(?P<selected>chat_consult)"?)',
    re.IGNORECASE | re.DOTALL,
)


def post(h: Hospital, who: str, thread: Thread) -> Post:
    cmid = uuid.uuid4().hex
    return Post(h.user(who), thread.pk, cmid, sealed(h, who, thread, cmid))


def locks_taken(queries: list[dict]) -> list[tuple[str, int]]:
    """(table, id) of each statement that takes a row lock, in the order sent."""
    taken = []
    for query in queries:
        match = LOCKING.match(query["sql"])
        if match and match["updated"] in ("chat_thread", "rooms_department"):
            taken.append((match["updated"], int(match["id"])))
        elif match and match["selected"]:
            taken.append((match["selected"], 0))
    return taken


def test_a_batch_locks_threads_then_departments_each_by_ascending_id(hospital: Hospital):
    h = hospital
    second = Thread.objects.create(
        department=h.plastic, patient=h.patient, title="Second", created_by=h.surgeon_bob
    )
    # Given in the reverse order: the locks must not follow the posts.
    posts = [
        post(h, "nurse_ines", h.vascular_thread),
        post(h, "surgeon_bob", second),
        post(h, "surgeon_bob", h.thread),
    ]
    with CaptureQueriesContext(connection) as queries:
        outcomes = check_post_messages(posts)
    assert not [o for o in outcomes if isinstance(o, RoundsError)], outcomes
    taken = locks_taken(queries.captured_queries)
    threads = sorted([h.thread.pk, second.pk, h.vascular_thread.pk])
    departments = sorted([h.plastic.pk, h.vascular.pk])
    assert taken == [("chat_thread", pk) for pk in threads] + [
        ("rooms_department", pk) for pk in departments
    ]
    order = [LOCK_ORDER.index(table) for table, _ in taken]
    assert order == sorted(order)


def test_a_key_replaced_elsewhere_is_seen_under_the_locks(hospital: Hospital):
    """This process keeps senders' keys; another process replaces Bob's. A post signed
    with the old key is refused, one signed with the new key is stored."""
    h = hospital
    assert check_post_messages([post(h, "surgeon_bob", h.thread)])[0]["seq"] == 1  # kept
    old, new = h.keys["surgeon_bob"], IdentityKeyPair.generate()
    # What the other process's publication writes (accounts.keys.do_publish_identity).
    IdentityKey.objects.filter(user=h.surgeon_bob, replaced_at__isnull=True).update(
        replaced_at=timezone.now()
    )
    IdentityKey.objects.create(
        user=h.surgeon_bob, fingerprint=new.fingerprint, **new.public.to_dict()
    )
    (refused,) = check_post_messages([post(h, "surgeon_bob", h.thread)])
    assert isinstance(refused, RoundsError) and refused.code == "bad_signature"
    h.keys["surgeon_bob"] = new
    (stored,) = check_post_messages([post(h, "surgeon_bob", h.thread)])
    assert stored["seq"] == 2
    # And the other way: the process now keeps the new key; the old one is refused.
    h.keys["surgeon_bob"] = old
    (refused,) = check_post_messages([post(h, "surgeon_bob", h.thread)])
    assert isinstance(refused, RoundsError) and refused.code == "bad_signature"


POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")


def another_connection() -> psycopg.Connection:
    """A connection of its own to the test database, outside Django and its pool."""
    db = connection.settings_dict
    return psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"],
        host=db["HOST"],
        port=db["PORT"] or None,
        password=db["PASSWORD"] or None,
    )


def started(work: Callable[[], object], failure: list[BaseException]) -> threading.Thread:
    """`work` in a thread of its own, on its own connection; what it raises goes to
    `failure`, for the test's thread to report."""

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            failure.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def until_a_statement_waits_for_a_lock(probe: psycopg.Connection, what: str) -> None:
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    for _ in range(100):
        if probe.execute(waiting).fetchone()[0]:
            return
        time.sleep(0.05)
    pytest.fail(f"the post never waited for {what}")


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not POSTGRES, reason="row locks between two connections need PostgreSQL")
def test_a_post_alone_locks_its_thread_before_its_department(live_hospital: Hospital):
    """On PostgreSQL a batch for one thread takes both numbers in one statement
    (chat/numbering.py). While another transaction holds the thread, that statement
    waits with the department still free: it never holds the department while waiting
    for the thread, which is how two posts would deadlock."""
    h = live_hospital
    holder, prober = another_connection(), another_connection()
    taken: list[tuple] = []
    failure: list[BaseException] = []

    def take() -> None:
        with transaction.atomic():
            threads, departments, _ = take_post_numbers({h.thread.pk: 2})
            taken.append((threads[h.thread.pk], departments[h.plastic.pk]))

    try:
        holder.execute("SELECT 1 FROM chat_thread WHERE id = %s FOR UPDATE", [h.thread.pk])
        worker = started(take, failure)
        until_a_statement_waits_for_a_lock(prober, "the thread")
        prober.execute("SET lock_timeout = '1s'")
        prober.execute(
            "SELECT 1 FROM rooms_department WHERE id = %s FOR UPDATE NOWAIT", [h.plastic.pk]
        )  # raises LockNotAvailable if the department were already held
        prober.rollback()
        holder.rollback()
        worker.join(10)
    finally:
        holder.close()
        prober.close()
    assert not failure, failure
    [(thread, department)] = taken
    assert (thread.taken, department.taken) == (2, 2)
    h.thread.refresh_from_db()
    h.plastic.refresh_from_db()
    assert h.thread.last_seq == thread.first + 2
    assert h.plastic.event_seq == department.first + 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not POSTGRES, reason="row locks between two connections need PostgreSQL")
def test_a_removal_committed_while_a_post_waits_for_the_department_is_seen(
    live_hospital: Hospital,
):
    """On PostgreSQL the senders' rights are read in the numbers' round trip, but as a
    statement of their own (chat/numbering.py): a removal that holds the department,
    and commits while the post waits for it, refuses the post. Read in the numbers'
    own statement, with its snapshot from before the wait, the post would be stored."""
    h = live_hospital
    bob = post(h, "surgeon_bob", h.thread)
    remover = another_connection()
    outcomes: list = []
    failure: list[BaseException] = []

    try:
        # What a removal does (rooms.actions): it holds the department, then ends the row.
        remover.execute("SELECT 1 FROM rooms_department WHERE id = %s FOR UPDATE", [h.plastic.pk])
        remover.execute(
            "UPDATE rooms_membership SET removed_at = now() "
            "WHERE user_id = %s AND department_id = %s AND removed_at IS NULL",
            [h.surgeon_bob.pk, h.plastic.pk],
        )
        worker = started(lambda: outcomes.extend(check_post_messages([bob])), failure)
        until_a_statement_waits_for_a_lock(remover, "the department")
        remover.commit()
        worker.join(10)
    finally:
        remover.close()
    assert not failure, failure
    [refused] = outcomes
    assert isinstance(refused, RoundsError) and refused.code == "not_found"
    assert not h.thread.messages.exists()


@pytest.mark.skipif(not POSTGRES, reason="the round trip is saved on PostgreSQL only")
def test_a_post_alone_reads_its_rights_in_the_numbers_round_trip(hospital: Hospital):
    """The numbers and the rights are two statements sent in one pipeline: psycopg
    sends the second without waiting for the first's answer, and both are answered
    together (rounds/prepared.py `one_round_trip`)."""
    h = hospital
    check_post_messages([post(h, "surgeon_bob", h.thread)])  # the process keeps Bob's key
    sent: list[tuple[str, bool]] = []

    def record(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        in_pipeline = connection.connection.pgconn.pipeline_status != pq.PipelineStatus.OFF
        sent.append((sql, in_pipeline))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        [stored] = check_post_messages([post(h, "surgeon_bob", h.thread)])
    assert stored["seq"] == 2
    pipelined = [sql for sql, in_pipeline in sent if in_pipeline]
    assert len(pipelined) == 2, sent
    assert "UPDATE chat_thread" in pipelined[0]
    assert "rooms_membership" in pipelined[1]
    assert sum("rooms_membership" in sql for sql, _ in sent) == 1
