"""python -m bench.fill_library N: N photo attachments in a deployment's database.

Run with a deployment's environment (bench/stack.py `Stack.env`), as
bench/seed_members.py is. Writes what posting photos would have written,
in bulk: one message per sequence (1 to 4 photos), its attachment snapshot,
an attached upload per photo and per thumbnail, 1 to 3 keywords per photo,
capture dates spread over two years, every member of both demo departments
as senders, and about PHOTOS_PER_PATIENT photos per patient (the Surgeon
paper's platform held 8,112 photos of 979 patients), so patients are added
to the deployment's until there are enough. No blobs are stored (a
library query never reads one) and no audit entries are written for the
fill (a query does not read them). Prints one JSON line.
"""

import json
import os
import random
import secrets
import sys
import time
import uuid
from datetime import timedelta

import django

BATCH = 5000
PHOTOS_PER_PATIENT = 8
CONSENTS = ["care", "care", "care", "teaching", "publication"]


def main(count: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rounds.settings")
    django.setup()
    from django.db import connection, transaction
    from django.db.models import Max
    from django.utils import timezone

    from chat.models import Message, Thread
    from media.models import Attachment, AttachmentKeyword, Keyword, Upload, UploadState
    from patients.models import Patient
    from rooms.models import Department, Membership

    random.seed(20261123)
    started = time.perf_counter()
    keywords = list(Keyword.objects.values_list("code", flat=True))
    departments = list(Department.objects.filter(slug__in=["plastic-surgery", "vascular-surgery"]))
    add_patients(count // PHOTOS_PER_PATIENT - Patient.objects.count())
    patients = list(Patient.objects.values_list("pk", flat=True))
    senders = {
        d.pk: list(
            Membership.objects.active().filter(department=d).values_list("user_id", flat=True)
        )
        for d in departments
    }
    # One thread per (department, patient), as a ward would have.
    Thread.objects.bulk_create(
        Thread(
            department=department,
            patient_id=patient,
            title="Photo follow-up",
            created_by_id=senders[department.pk][0],
        )
        for department in departments
        for patient in patients
    )
    threads = {
        (thread.department_id, thread.patient_id): thread
        for thread in Thread.objects.filter(title="Photo follow-up", department__in=departments)
    }
    now = timezone.now()
    next_attachment = (Attachment.objects.aggregate(m=Max("id"))["m"] or 0) + 1
    written = 0
    while written < count:
        messages, uploads, attachments, links = [], [], [], []
        while written < count and len(attachments) < BATCH:
            department = random.choice(departments)
            patient = random.choice(patients)
            thread = threads[(department.pk, patient)]
            sender = random.choice(senders[department.pk])
            captured = now - timedelta(minutes=random.randint(0, 2 * 365 * 24 * 60))
            thread.last_seq += 1
            message = Message(
                thread=thread,
                seq=thread.last_seq,
                sender_id=sender,
                client_msg_id=uuid.uuid4().hex,
                header={"v": 2, "room": department.pk, "thread": thread.pk},
                ciphertext=secrets.token_urlsafe(400),
                body_hash=secrets.token_hex(32),
                created_at=captured + timedelta(minutes=5),
            )
            snapshot = []
            for position in range(min(random.randint(1, 4), count - written)):
                photo = Upload(
                    owner_id=sender,
                    department=department,
                    size=random.randint(1_500_000, 4_000_000),
                    received=0,
                    state=UploadState.ATTACHED,
                    sha256=secrets.token_hex(32),
                    expires_at=now,
                    attached_at=message.created_at,
                )
                photo.received = photo.size
                photo.storage_name = f"blobs/{photo.pk}"
                thumbnail = Upload(
                    owner_id=sender,
                    department=department,
                    size=12_000,
                    received=12_000,
                    state=UploadState.ATTACHED,
                    sha256=secrets.token_hex(32),
                    storage_name="",
                    expires_at=now,
                    attached_at=message.created_at,
                )
                thumbnail.storage_name = f"blobs/{thumbnail.pk}"
                chosen = random.sample(keywords, random.randint(1, 3))
                consent = random.choice(CONSENTS)
                attachment = Attachment(
                    id=next_attachment,
                    message=message,
                    position=position,
                    upload=photo,
                    thumbnail=thumbnail,
                    department=department,
                    thread=thread,
                    patient_id=patient,
                    sender_id=sender,
                    captured_at=captured,
                    consent=consent,
                    created_at=message.created_at,
                )
                snapshot.append(
                    {
                        "id": next_attachment,
                        "upload": str(photo.pk),
                        "thumbnail": str(thumbnail.pk),
                        "keywords": chosen,
                        "consent": consent,
                        "captured_at": captured.isoformat(),
                        "annotates": None,
                    }
                )
                next_attachment += 1
                uploads += [photo, thumbnail]
                attachments.append(attachment)
                links += [AttachmentKeyword(attachment=attachment, keyword_id=k) for k in chosen]
                written += 1
            if hasattr(message, "attachments"):
                message.attachments = snapshot
            messages.append(message)
        with transaction.atomic():
            Message.objects.bulk_create(messages)
            Upload.objects.bulk_create(uploads)
            for attachment in attachments:
                attachment.message_id = attachment.message.pk
            Attachment.objects.bulk_create(attachments)
            for link in links:
                link.attachment_id = link.attachment.pk
            AttachmentKeyword.objects.bulk_create(links)
    Thread.objects.bulk_update(list(threads.values()), ["last_seq"])
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [Attachment]):
            cursor.execute(sql)
        if connection.vendor == "postgresql":
            for table in (
                "media_attachment",
                "media_attachmentkeyword",
                "media_upload",
                "chat_message",
                "chat_thread",
                "patients_patient",
            ):
                cursor.execute(f"ANALYZE {table}")
    print(
        json.dumps(
            {
                "attachments": written,
                "patients": len(patients),
                "fill_seconds": round(time.perf_counter() - started, 1),
            }
        )
    )


def add_patients(missing: int) -> None:
    """Synthetic patients with IPPs of their own ("B" and a number)."""
    from datetime import date

    from patients.models import Patient, name_key

    families = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand"]
    rows = []
    for number in range(max(0, missing)):
        family = f"{random.choice(families)}-{number}"
        rows.append(
            Patient(
                ipp=f"B{number:07d}",
                family_name=family,
                given_name="Camille",
                birth_date=date(1930 + number % 80, 1 + number % 12, 1 + number % 28),
                family_name_key=name_key(family),
            )
        )
    Patient.objects.bulk_create(rows, batch_size=BATCH)


def no_style():
    from django.core.management.color import no_style as style

    return style()


if __name__ == "__main__":
    main(int(sys.argv[1]))
