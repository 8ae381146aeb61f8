"""Unread counts from the server (chat/unread.py), on the department list and the
thread listing: what counts, whose receipts count, and a fixed number of
queries however many threads a department has.
"""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat.actions import check_post_message, check_read_receipt, do_create_thread
from chat.models import Message, Receipt, Thread
from chat.redaction import check_redact_message
from rooms.actions import do_remove_member
from tests.support import Api, Hospital, sealed

pytestmark = pytest.mark.django_db


def posts(h: Hospital, who: str, count: int, thread: Any = None) -> list[int]:
    """`count` messages by `who` in `thread` (the plastic thread by default); their ids."""
    thread = thread or h.thread
    ids = []
    for _ in range(count):
        cmid = f"{who}-{Message.objects.count() + 1:04d}"
        body = sealed(h, who, thread, cmid)
        ids.append(check_post_message(h.user(who), thread.pk, cmid, body)["message_id"])
    return ids


def threads_of(h: Hospital, who: str, department: Any = None) -> dict[int, dict]:
    department = department or h.plastic
    response = Api(h.user(who)).get(f"/api/departments/{department.pk}/threads")
    assert response.status_code == 200, response.content
    return {t["id"]: t for t in response.json()}


def departments_of(h: Hospital, who: str) -> dict[int, dict]:
    response = Api(h.user(who)).get("/api/departments")
    assert response.status_code == 200, response.content
    return {d["id"]: d for d in response.json()}


def counts(h: Hospital, who: str) -> tuple[int, int, int]:
    """(thread unread, thread last_read_seq, department unread) of the plastic thread."""
    thread = threads_of(h, who)[h.thread.pk]
    return thread["unread"], thread["last_read_seq"], departments_of(h, who)[h.plastic.pk]["unread"]


def test_a_reader_counts_what_came_after_their_receipt(hospital: Hospital):
    h = hospital
    assert counts(h, "nurse_alice") == (0, 0, 0)
    posts(h, "surgeon_bob", 3)
    assert counts(h, "nurse_alice") == (3, 0, 3)
    check_read_receipt(h.nurse_alice, h.thread.pk, 2)
    assert counts(h, "nurse_alice") == (1, 2, 1)
    check_read_receipt(h.nurse_alice, h.thread.pk, 3)
    assert counts(h, "nurse_alice") == (0, 3, 0)
    posts(h, "head_carol", 1)
    assert counts(h, "nurse_alice") == (1, 3, 1)


def test_my_own_messages_are_not_unread(hospital: Hospital):
    h = hospital
    posts(h, "surgeon_bob", 2)
    posts(h, "nurse_alice", 1)
    assert counts(h, "surgeon_bob") == (1, 0, 1)
    assert counts(h, "nurse_alice") == (2, 0, 2)


def test_a_redacted_message_is_not_unread(hospital: Hospital):
    h = hospital
    first, _ = posts(h, "surgeon_bob", 2)
    check_redact_message(h.surgeon_bob, first, "wrong patient")
    assert counts(h, "nurse_alice") == (1, 0, 1)
    assert counts(h, "head_carol") == (1, 0, 1)


def test_another_members_receipts_do_not_change_mine(hospital: Hospital):
    h = hospital
    posts(h, "surgeon_bob", 3)
    check_read_receipt(h.head_carol, h.thread.pk, 3)
    assert counts(h, "head_carol") == (0, 3, 0)
    assert counts(h, "nurse_alice") == (3, 0, 3)


def test_the_highest_of_my_receipts_counts(hospital: Hospital):
    """Receipts are a history of advances: only the furthest one matters."""
    h = hospital
    posts(h, "surgeon_bob", 4)
    for seq in (1, 3, 2):
        check_read_receipt(h.nurse_alice, h.thread.pk, seq)
    assert Receipt.objects.filter(user=h.nurse_alice).count() == 2  # 2 was a no-op
    assert counts(h, "nurse_alice") == (1, 3, 1)


def test_a_removed_member_sees_no_department(hospital: Hospital):
    h = hospital
    posts(h, "surgeon_bob", 2)
    assert h.plastic.pk not in departments_of(h, "intern_erin")
    do_remove_member(h.head_carol, h.plastic.pk, h.nurse_alice.pk)
    assert h.plastic.pk not in departments_of(h, "nurse_alice")
    response = Api(h.nurse_alice).get(f"/api/departments/{h.plastic.pk}/threads")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_the_department_count_is_the_sum_over_its_threads(hospital: Hospital):
    h = hospital
    second = Thread.objects.get(
        pk=do_create_thread(h.head_carol, h.plastic.pk, h.other_patient.pk, "Flap check")["id"]
    )
    do_create_thread(h.head_carol, h.plastic.pk, h.patient.pk, "Nothing said yet")
    posts(h, "surgeon_bob", 3)
    posts(h, "head_carol", 2, thread=second)
    posts(h, "nurse_alice", 1, thread=second)
    posts(h, "nurse_ines", 4, thread=h.vascular_thread)  # another department
    check_read_receipt(h.nurse_alice, h.thread.pk, 1)
    for who in ("nurse_alice", "surgeon_bob", "head_carol"):
        threads = threads_of(h, who)
        assert len(threads) == 3
        mine = departments_of(h, who)
        assert mine[h.plastic.pk]["unread"] == sum(t["unread"] for t in threads.values())
    assert departments_of(h, "nurse_alice")[h.plastic.pk]["unread"] == 2 + 2
    assert departments_of(h, "head_grace")[h.vascular.pk]["unread"] == 4
    assert departments_of(h, "nurse_ines")[h.vascular.pk]["unread"] == 0


def test_the_socket_hello_is_unchanged(hospital: Hospital):
    """`hello` lists departments without counts (its schema forbids other fields)."""
    from rooms.actions import list_my_departments

    posts(hospital, "surgeon_bob", 1)
    for department in list_my_departments(hospital.nurse_alice):
        assert "unread" not in department


# --- A fixed number of queries ------------------------------------------------


def add_threads(h: Hospital, count: int) -> None:
    """`count` more plastic threads, each with messages from others and a receipt of
    alice's: written directly, as only the number of rows matters here."""
    now = timezone.now()
    threads = Thread.objects.bulk_create(
        Thread(
            department=h.plastic,
            patient=h.patient,
            title=f"Thread {n}",
            created_by=h.surgeon_bob,
            last_seq=3,
        )
        for n in range(count)
    )
    Message.objects.bulk_create(
        Message(
            thread=thread,
            seq=seq,
            sender=h.surgeon_bob if seq < 3 else h.nurse_alice,
            client_msg_id=f"bulk-{thread.pk}-{seq}",
            header={},
            ciphertext="",
            body_hash="",
            created_at=now,
        )
        for thread in threads
        for seq in (1, 2, 3)
    )
    Receipt.objects.bulk_create(
        Receipt(thread=thread, user=h.nurse_alice, up_to_seq=1, read_at=now) for thread in threads
    )


def queries_of(call: Any) -> int:
    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured)


def test_the_thread_listing_does_not_grow_with_its_threads(
    hospital: Hospital, django_assert_max_num_queries: Any
):
    from chat.actions import list_department_threads

    h = hospital
    posts(h, "surgeon_bob", 2)
    few = queries_of(lambda: list_department_threads(h.nurse_alice, h.plastic.pk))
    assert few <= 2  # the membership, then the threads with their counts
    add_threads(h, 60)
    with django_assert_max_num_queries(few):
        listed = list_department_threads(h.nurse_alice, h.plastic.pk)
    assert len(listed) == 61
    assert {t["unread"] for t in listed if t["id"] != h.thread.pk} == {1}
    assert {t["last_read_seq"] for t in listed if t["id"] != h.thread.pk} == {1}


def test_the_department_list_does_not_grow_with_threads(
    hospital: Hospital, django_assert_max_num_queries: Any
):
    from rooms.actions import list_my_departments

    h = hospital
    few = queries_of(lambda: list_my_departments(h.nurse_alice, unread=True))
    assert few <= 2  # the memberships, then the counts of all their threads
    add_threads(h, 60)
    with django_assert_max_num_queries(few):
        listed = list_my_departments(h.nurse_alice, unread=True)
    assert [d["unread"] for d in listed] == [60]
