"""Thread and department numbers are taken in one lock order (chat/numbering.py), and a
sender's key kept by the process is checked against the database's under those locks."""

import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import IdentityKey
from chat.actions import Post, check_post_messages
from chat.models import Thread
from chat.numbering import LOCK_ORDER
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
