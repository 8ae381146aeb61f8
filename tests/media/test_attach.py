"""Photos in message.post: uploads become attachments in the post's transaction, or nothing
is stored at all; every refusal is typed, and the events say what was attached."""

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import TestCase

from audit.models import AuditEvent
from chat.actions import Post, check_history, check_post_messages, events_after
from chat.models import Message, Thread
from core import outbound, protocol
from core.errors import RoundsError
from media.models import Attachment, AttachmentKeyword, Keyword, Upload
from tests.support import Hospital, sealed
from tests.support.sockets import assert_alive, connect_as, expect_refused, ok, post_frame, recv
from tests.support.uploads import complete_upload, photo, post_photos, published_frames

pytestmark = pytest.mark.django_db


def stored_state(h: Hospital) -> dict[str, Any]:
    return {
        "messages": Message.objects.count(),
        "attachments": Attachment.objects.count(),
        "keywords": AttachmentKeyword.objects.count(),
        "attached": Upload.objects.filter(state="attached").count(),
        "last_seq": Thread.objects.get(pk=h.thread.pk).last_seq,
        "audit": AuditEvent.objects.filter(
            action__in=("message.posted", "attachment.attached")
        ).count(),
    }


def refused(h: Hospital, who: str, refs: list[dict], code: str, reason: str | None = None):
    """The post is refused with `code` (and `data.reason`), and nothing at all is stored."""
    before = stored_state(h)
    with pytest.raises(RoundsError) as error:
        post_photos(h, who, refs)
    assert error.value.code == code, error.value.as_dict()
    if reason is not None:
        assert error.value.data["reason"] == reason, error.value.data
    assert stored_state(h) == before
    return error.value


def test_a_photo_post_stores_its_attachments_and_shows_them_everywhere(hospital: Hospital):
    h = hospital
    first = photo(h, "surgeon_bob", keywords=("hand", "wound-follow-up"), consent="teaching")
    first["captured_at"] = "2026-11-23T09:15:00+01:00"
    second = photo(h, "surgeon_bob", keywords=(), thumbnail=False)
    ack, frames = post_photos(h, "surgeon_bob", [first, second])
    message = Message.objects.get(pk=ack["message_id"])
    rows = list(Attachment.objects.filter(message=message).order_by("position"))
    assert [str(r.upload_id) for r in rows] == [first["upload"], second["upload"]]
    assert [r.position for r in rows] == [0, 1]
    for row in rows:
        assert (row.department_id, row.thread_id, row.patient_id, row.sender_id) == (
            h.plastic.pk,
            h.thread.pk,
            h.patient.pk,
            h.surgeon_bob.pk,
        )
    assert rows[0].captured_at == datetime(2026, 11, 23, 8, 15, tzinfo=UTC)
    assert rows[1].captured_at == message.created_at  # no capture date: the post's time
    codes = AttachmentKeyword.objects.filter(attachment=rows[0]).order_by("id")
    assert [k.keyword_id for k in codes] == ["hand", "wound-follow-up"]
    named = [first["upload"], first["thumbnail"], second["upload"]]
    for upload in Upload.objects.filter(pk__in=named):
        assert upload.state == "attached" and upload.attached_at is not None
    expected = [
        {
            "id": rows[0].pk,
            "upload": first["upload"],
            "thumbnail": first["thumbnail"],
            "keywords": ["hand", "wound-follow-up"],
            "consent": "teaching",
            "captured_at": "2026-11-23T08:15:00+00:00",
            "annotates": None,
        },
        {
            "id": rows[1].pk,
            "upload": second["upload"],
            "thumbnail": None,
            "keywords": [],
            "consent": "care",
            "captured_at": message.created_at.isoformat(),
            "annotates": None,
        },
    ]
    assert message.attachments == expected
    (event,) = [f for f in frames if f["type"] == "message.new"]
    assert event["message"]["attachments"] == expected
    page = check_history(h.nurse_alice, h.thread.pk, None, 50)
    assert page["messages"][-1]["attachments"] == expected
    replayed = [f for _, f in events_after(h.nurse_alice, h.plastic.pk, 0) if "message" in f]
    assert replayed[-1]["message"]["attachments"] == expected
    for frame in replayed:
        outbound.validate_outbound(frame)
    (entry,) = AuditEvent.objects.filter(action="attachment.attached")
    assert entry.object_id == str(message.pk)
    assert entry.data["attachments"] == [r.pk for r in rows]
    assert entry.data["keywords"] == ["hand", "wound-follow-up"]
    assert entry.data["patient_id"] == h.patient.pk
    assert set(entry.data) == {
        "thread_id", "patient_id", "attachments", "uploads", "keywords", "consents"
    }  # fmt: skip
    assert "Lefèvre" not in str(entry.data)


def test_a_text_message_shows_no_attachments(hospital: Hospital):
    h = hospital
    ack, frames = post_photos(h, "surgeon_bob", [])
    assert frames[0]["message"]["attachments"] == []
    assert Message.objects.get(pk=ack["message_id"]).attachments is None
    assert check_history(h.surgeon_bob, h.thread.pk, None, 50)["messages"][0]["attachments"] == []


def test_someone_elses_upload_is_not_found_like_a_missing_one(hospital: Hospital):
    h = hospital
    alices = photo(h, "nurse_alice")
    error = refused(h, "surgeon_bob", [alices], "attachment_invalid", "not_found")
    assert error.data["upload"] == alices["upload"]
    missing = photo(h, "surgeon_bob") | {"upload": str(uuid.uuid4())}
    refused(h, "surgeon_bob", [missing], "attachment_invalid", "not_found")
    someone_elses_thumbnail = photo(h, "surgeon_bob") | {"thumbnail": alices["thumbnail"]}
    refused(h, "surgeon_bob", [someone_elses_thumbnail], "attachment_invalid", "not_found")


def test_an_upload_of_another_department_is_refused(hospital: Hospital):
    h = hospital
    vascular = photo(h, "surgeon_bob", h.vascular)
    error = refused(h, "surgeon_bob", [vascular], "attachment_invalid", "other_department")
    assert error.data["upload"] == vascular["upload"]
    assert Upload.objects.get(pk=vascular["upload"]).state == "complete"


@pytest.mark.parametrize("state", ["receiving", "failed", "expired"])
def test_an_upload_that_is_not_complete_is_refused(hospital: Hospital, state: str):
    h = hospital
    ref = photo(h, "surgeon_bob")
    ref["upload"] = str(complete_upload(h.surgeon_bob, h.plastic, state=state).pk)
    error = refused(h, "surgeon_bob", [ref], "attachment_invalid", "not_complete")
    assert error.data["upload"] == ref["upload"]
    assert Upload.objects.get(pk=ref["upload"]).state == state


def test_an_upload_is_attached_once_only(hospital: Hospital):
    h = hospital
    ref = photo(h, "surgeon_bob")
    post_photos(h, "surgeon_bob", [ref])
    again = refused(h, "surgeon_bob", [ref], "attachment_invalid", "already_attached")
    as_thumbnail = photo(h, "surgeon_bob") | {"thumbnail": ref["upload"]}
    refused(h, "surgeon_bob", [as_thumbnail], "attachment_invalid", "already_attached")
    assert again.data["upload"] == ref["upload"]
    assert Attachment.objects.filter(upload_id=ref["upload"]).count() == 1


def test_an_upload_named_twice_in_one_message_is_refused(hospital: Hospital):
    h = hospital
    ref = photo(h, "surgeon_bob")
    twice = refused(h, "surgeon_bob", [ref, ref], "attachment_invalid", "duplicate")
    own_thumbnail = ref | {"thumbnail": ref["upload"]}
    refused(h, "surgeon_bob", [own_thumbnail], "attachment_invalid", "duplicate")
    assert twice.data["upload"] == ref["upload"]
    assert not Attachment.objects.filter(upload_id=ref["upload"]).exists()


def test_a_keyword_outside_the_nomenclature_is_invalid(hospital: Hospital):
    h = hospital
    error = refused(
        h, "surgeon_bob", [photo(h, "surgeon_bob", keywords=("hand", "elbow"))], "invalid_request"
    )
    assert error.data == {"keywords": ["elbow"]}
    Keyword.objects.filter(code="heel").update(active=False)  # retired: older photos keep it
    refused(h, "surgeon_bob", [photo(h, "surgeon_bob", keywords=("heel",))], "invalid_request")


def test_an_annotation_names_a_visible_photo_of_the_same_patient(hospital: Hospital):
    h = hospital
    ack, _ = post_photos(h, "surgeon_bob", [photo(h, "surgeon_bob")])
    original = Attachment.objects.get(message_id=ack["message_id"])
    overlay = photo(h, "nurse_alice", annotates=original.pk)
    ack, frames = post_photos(h, "nurse_alice", [overlay])
    assert frames[0]["message"]["attachments"][0]["annotates"] == original.pk
    assert Attachment.objects.get(message_id=ack["message_id"]).annotates_id == original.pk
    # Missing, of another patient, or in a department the sender is not in: the same refusal.
    other_thread = Thread.objects.create(
        department=h.plastic, patient=h.other_patient, title="Other", created_by=h.head_carol
    )
    ack, _ = post_photos(h, "surgeon_bob", [photo(h, "surgeon_bob")], thread=other_thread)
    other_patients = Attachment.objects.get(message_id=ack["message_id"]).pk
    ack, _ = post_photos(
        h, "nurse_ines", [photo(h, "nurse_ines", h.vascular)], thread=h.vascular_thread
    )
    vascular = Attachment.objects.get(message_id=ack["message_id"]).pk
    for target in (other_patients, vascular, 10**9):
        error = refused(
            h,
            "surgeon_bob",
            [photo(h, "surgeon_bob", annotates=target)],
            "attachment_invalid",
            "annotates_not_found",
        )
        assert error.data["annotates"] == target


def test_an_identical_retry_gets_its_first_ack_and_another_post_a_conflict(hospital: Hospital):
    h = hospital
    refs = [photo(h, "surgeon_bob"), photo(h, "surgeon_bob", keywords=("face",))]
    cmid = uuid.uuid4().hex
    envelope = sealed(h, "surgeon_bob", h.thread, cmid, b'{"type":"photos"}')
    first, _ = post_photos(h, "surgeon_bob", refs, cmid=cmid, envelope=envelope)
    again, frames = post_photos(h, "surgeon_bob", refs, cmid=cmid, envelope=envelope)
    assert again == {**first, "duplicate": True}
    assert frames == []  # nothing new to tell anyone
    assert Attachment.objects.count() == 2
    for other in (
        [refs[1], refs[0]],  # same photos, other order
        [refs[0] | {"consent": "publication"}],
        [photo(h, "surgeon_bob")],
        [],  # the same envelope as a text post
    ):
        with pytest.raises(RoundsError) as error:
            post_photos(h, "surgeon_bob", other, cmid=cmid, envelope=envelope)
        assert error.value.code == "client_msg_id_conflict"
        assert error.value.data == {"message_id": first["message_id"]}
    assert Message.objects.count() == 1


def test_text_posts_stay_batched_and_photo_posts_keep_their_place(hospital: Hospital):
    h = hospital

    def text(who: str) -> Post:
        cmid = uuid.uuid4().hex
        return Post(h.user(who), h.thread.pk, cmid, sealed(h, who, h.thread, cmid))

    def photos(who: str, refs: list[dict]) -> Post:
        cmid = uuid.uuid4().hex
        return Post(h.user(who), h.thread.pk, cmid, sealed(h, who, h.thread, cmid), tuple(refs))

    bad = photo(h, "nurse_alice")
    posts = [
        text("surgeon_bob"),
        photos("surgeon_bob", [photo(h, "surgeon_bob")]),
        text("nurse_alice"),
        photos("surgeon_bob", [bad]),  # alice's upload: refused, alone
        text("head_carol"),
        text("surgeon_bob"),
    ]
    with TestCase.captureOnCommitCallbacks() as callbacks:
        outcomes = check_post_messages(posts)
    codes = [o.code if isinstance(o, RoundsError) else "ok" for o in outcomes]
    assert codes == ["ok", "ok", "ok", "attachment_invalid", "ok", "ok"]
    assert [o["seq"] for o in outcomes if isinstance(o, dict)] == [1, 2, 3, 4, 5]
    stored = list(Message.objects.order_by("seq").values_list("client_msg_id", flat=True))
    assert stored == [p.client_msg_id for i, p in enumerate(posts) if i != 3]
    frames = published_frames(callbacks)
    assert [len(f["message"]["attachments"]) for f in frames] == [0, 1, 0, 0, 0]


def test_the_frame_schema_bounds_attachments():
    ref = {"upload": str(uuid.uuid4()), "consent": "care"}
    frame = {
        "id": "1",
        "type": "message.post",
        "thread": 1,
        "client_msg_id": "abcdefgh",
        "envelope": {"header": {}, "ciphertext": "AAAA"},
    }
    assert protocol.parse_inbound(frame).attachments == []
    assert protocol.parse_inbound({**frame, "attachments": [ref]}).attachments[0].keywords == []
    bad = [
        [ref] * 11,
        [ref | {"keywords": [f"k{i}" for i in range(17)]}],
        [ref | {"keywords": ["hand", "hand"]}],
        [ref | {"keywords": ["not a slug"]}],
        [ref | {"consent": "research"}],
        [ref | {"captured_at": "2026-11-23T08:15:00"}],  # no offset
        [ref | {"captured_at": "yesterday"}],
        [ref | {"upload": ref["upload"].upper()}],
        [ref | {"annotates": 0}],
        [ref | {"size": 12}],
    ]
    for attachments in bad:
        with pytest.raises(ValueError):
            protocol.parse_inbound({**frame, "attachments": attachments})


# --- Over the socket --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_photos_over_the_socket_reach_every_member_and_history(live_hospital: Hospital):
    h = live_hospital
    # Transactional tests start from a flushed database, without the migration's terms.
    await database_sync_to_async(Keyword.objects.get_or_create)(
        code="hand", defaults={"label": "Hand", "category": "site"}
    )
    bob, _ = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    ref = await database_sync_to_async(photo)(h, "surgeon_bob", keywords=("hand",))
    cmid = uuid.uuid4().hex
    body = await database_sync_to_async(sealed)(h, "surgeon_bob", h.thread, cmid, b"{}")
    frame = post_frame(body) | {"attachments": [ref]}
    result = await ok(bob, frame)
    for socket in (bob, alice):
        event = await recv(socket)
        assert event["type"] == "message.new"
        (shown,) = event["message"]["attachments"]
        assert (shown["upload"], shown["thumbnail"]) == (ref["upload"], ref["thumbnail"])
        assert shown["keywords"] == ["hand"]
    again = await ok(bob, frame)  # a retry whose ack was lost
    assert again == {**result, "duplicate": True}
    page = await ok(alice, {"type": "history.fetch", "thread": h.thread.pk})
    assert page["messages"][-1]["attachments"][0]["upload"] == ref["upload"]
    await bob.disconnect()
    await alice.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_refused_photo_post_over_the_socket_stores_nothing(live_hospital: Hospital):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    alices = await database_sync_to_async(photo)(h, "nurse_alice")
    cmid = uuid.uuid4().hex
    body = await database_sync_to_async(sealed)(h, "surgeon_bob", h.thread, cmid, b"{}")
    before = await database_sync_to_async(stored_state)(h)
    error = await expect_refused(
        bob, post_frame(body) | {"attachments": [alices]}, "attachment_invalid"
    )
    assert error["data"] == {"upload": alices["upload"], "reason": "not_found"}
    bad_frame = post_frame(body) | {"attachments": [alices | {"consent": "research"}]}
    await expect_refused(bob, bad_frame, "invalid_frame")
    assert await database_sync_to_async(stored_state)(h) == before
    await assert_alive(bob)
    await bob.disconnect()
