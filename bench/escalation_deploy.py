"""The escalation benchmark's side inside a deployment (bench/escalation.py runs it).

`seed COUNT SPREAD LEAD SUBSCRIBERS_JSON`: COUNT open urgent advice requests to
Plastic surgery's "On-call plastic surgeon", made through the real action (the
roster resolved, the step, audit entry and event written), then their timers
staggered evenly over SPREAD seconds starting LEAD seconds from now, in one
transaction, so the servers' schedulers find them due one after another. The
questions are stored as the server stores any message (their ciphertext is
never read here, so a placeholder stands in for it). Each doctor of the
department gets the push subscription SUBSCRIBERS_JSON names for them, on a
live login, so the escalations' alerts reach the benchmark's push receiver.

`measure IDS_FILE`: for each request, its escalation steps for the first timer:
the due time, the step's time, and how many steps that timer made (1 when it
fired once). Prints one JSON line.
"""

import json
import os
import secrets
import sys
from datetime import timedelta

import django


def seed(count: int, spread: float, lead: float, subscribers: dict[str, dict[str, str]]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rounds.settings")
    django.setup()
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import AuthSession, User
    from advice.actions import do_request_advice
    from advice.models import AdviceRequest
    from chat.actions import do_create_thread
    from chat.models import Message, Thread
    from patients.models import Patient
    from push.models import PushSubscription
    from rooms.models import Department, OnCallRole

    plastic = Department.objects.get(name="Plastic surgery")
    role = OnCallRole.objects.get(department=plastic, name="On-call plastic surgeon")
    alice = User.objects.get(username="nurse_alice")
    patient = Patient.objects.order_by("pk").first()
    assert patient is not None
    made = do_create_thread(alice, plastic.pk, patient.pk, "Escalation benchmark")
    thread = Thread.objects.get(pk=made["id"])
    now = timezone.now()
    for username, subscription in subscribers.items():
        user = User.objects.get(username=username)
        login = AuthSession.objects.create(
            user=user, token_hash=secrets.token_hex(32), expires_at=now + timedelta(days=1)
        )
        PushSubscription.objects.create(user=user, auth_session=login, **subscription)
    messages = Message.objects.bulk_create(
        Message(
            thread=thread,
            seq=n + 1,
            sender=alice,
            client_msg_id=f"bench-escalation-{n:06d}",
            header={},
            ciphertext="AAAA",
            body_hash=f"{n:064d}",
            created_at=now,
        )
        for n in range(count)
    )
    Thread.objects.filter(pk=thread.pk).update(last_seq=count)
    ids = []
    for message in messages:
        with transaction.atomic():
            ids.append(do_request_advice(alice, thread, message, "urgent", None, role)["id"])
    start = timezone.now() + timedelta(seconds=lead)
    with transaction.atomic():
        for index, request_id in enumerate(ids):
            due = start + timedelta(seconds=spread * index / max(1, count - 1))
            AdviceRequest.objects.filter(pk=request_id).update(due_at=due)
    print(json.dumps({"ids": ids, "first_due": start.timestamp()}))


def measure(ids_file: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rounds.settings")
    django.setup()
    from advice.models import AdviceStep

    with open(ids_file) as file:
        ids = json.load(file)
    fired: dict[int, list[dict[str, float]]] = {}
    rows = AdviceStep.objects.filter(request_id__in=ids, number__gt=1).order_by("number")
    first_due: dict[int, str] = {}
    for step in rows.iterator():
        due = step.data.get("due_at")
        first_due.setdefault(step.request_id, due)
        if due == first_due[step.request_id]:
            fired.setdefault(step.request_id, []).append(
                {"at": step.at.timestamp(), "kind": step.kind, "holder": step.holder_id or 0}
            )
    from datetime import datetime

    report = {
        str(request_id): {
            "due": datetime.fromisoformat(first_due[request_id]).timestamp(),
            "steps": steps,
        }
        for request_id, steps in fired.items()
    }
    print(json.dumps(report))


if __name__ == "__main__":
    if sys.argv[1] == "seed":
        seed(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), json.loads(sys.argv[5]))
    else:
        measure(sys.argv[2])
