"""A corrected message under review: the timeline releases every version with its own
envelope (compliance/timeline.py), and the offline reader (client/compliance.py) opens
each, checks its binding to the message, and prints them all; the case export's PDF
transcript is made of the same lines."""

import copy
import uuid
from typing import Any

import pytest

from chat.actions import check_post_message
from chat.corrections import check_correct_message
from chat.models import Correction, Message
from client.compliance import review_thread
from client.compliance_cli import format_review
from tests.support import Api, Hospital, sealed
from tests.support.cases import open_case

pytestmark = pytest.mark.django_db

VERSIONS = (b"Flap warm, refill 3 s", b"Flap warm, refill 2 s", b"Flap warm, refill 2 s, pink")


def corrected(h: Hospital) -> int:
    """Bob's note, corrected twice: three versions."""
    cmid = uuid.uuid4().hex
    first = sealed(h, "surgeon_bob", h.thread, cmid, VERSIONS[0])
    message_id = check_post_message(h.surgeon_bob, h.thread.pk, cmid, first)["message_id"]
    for text in VERSIONS[1:]:
        fix = uuid.uuid4().hex
        envelope = sealed(h, "surgeon_bob", h.thread, fix, text, corrects=cmid)
        check_correct_message(h.surgeon_bob, message_id, fix, envelope)
    return message_id


def timeline(h: Hospital) -> dict[str, Any]:
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    response = Api(h.compliance_dan).get(
        f"/api/compliance/cases/{case.pk}/threads/{h.thread.pk}/timeline"
    )
    assert response.status_code == 200, response.content
    return response.json()


def review(h: Hospital, page: dict[str, Any]) -> dict[str, Any]:
    assert h.compliance_key and h.admin_key
    return review_thread([page], h.compliance_key, h.admin_key.fingerprint)


def test_the_timeline_releases_every_version_and_the_review_shows_each(hospital):
    h = hospital
    message_id = corrected(h)
    page = timeline(h)
    (message,) = page["messages"]
    stored = Message.objects.get(pk=message_id)
    assert message["envelope"] == {"header": stored.header, "ciphertext": stored.ciphertext}
    rows = Correction.objects.filter(message_id=message_id).order_by("version")
    assert [c["version"] for c in message["corrections"]] == [2, 3]
    assert [c["envelope"]["ciphertext"] for c in message["corrections"]] == [
        r.ciphertext for r in rows
    ]
    assert message["correction"]["version"] == 3

    done = review(h, page)
    assert done["failed"] == 0
    (event,) = done["messages"]
    assert event["text"] == VERSIONS[0].decode() and event["check"] == {"ok": True}
    assert [(v["version"], v["text"], v["check"]) for v in event["versions"]] == [
        (2, VERSIONS[1].decode(), {"ok": True}),
        (3, VERSIONS[2].decode(), {"ok": True}),
    ]
    assert all(v["corrected_at"] and v["sent_at"] for v in event["versions"])
    text = "\n".join(format_review(done))
    assert "version 2 [signature ok]" in text and "version 3 [signature ok]" in text
    for version in VERSIONS:
        assert version.decode() in text


def test_a_version_spliced_from_another_message_fails_its_check(hospital):
    h = hospital
    corrected(h)
    cmid = uuid.uuid4().hex
    envelope = sealed(h, "surgeon_bob", h.thread, cmid, b"Drain removed")
    check_post_message(h.surgeon_bob, h.thread.pk, cmid, envelope)
    page = copy.deepcopy(timeline(h))
    first, second = page["messages"]
    # A server moves the first message's last correction onto the second.
    second["corrections"] = [first["corrections"][-1]]
    done = review(h, page)
    assert done["failed"] == 1
    assert done["messages"][1]["text"] == "Drain removed"
    (moved,) = done["messages"][1]["versions"]
    assert moved["check"]["code"] == "correction_mismatch" and moved["text"] is None
    assert "CHECK FAILED: correction_mismatch" in "\n".join(format_review(done))
