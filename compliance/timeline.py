"""What a case releases about a thread, read only after the release is audited.

Everything a tool holding the compliance private key offline needs to
decrypt and to check every signature: the envelopes (redacted ones too,
marked with who, when and why), every version of a corrected message (each
correction's envelope, who and when), the photos' attachment records, read
receipts, the department's membership history and signed chain, and every
key version record with the compliance key's wraps. Nothing here decides
who may read it (rooms/access/) or audits it (compliance/release.py).
"""

from datetime import UTC, datetime
from typing import Any

from accounts.keys import active_institution_key
from accounts.models import IdentityKey
from audit.models import AuditEvent
from chat.actions import thread_data
from chat.events import MESSAGE_COLUMNS, message_row_payload
from chat.models import Correction, Message, Receipt, Thread, ThreadKeyVersion, ThreadKeyWrap
from compliance.models import Case
from media.models import Attachment, AttachmentKeyword
from rooms.chain import chain_payload
from rooms.models import KeyWrap, Membership, RoomKeyVersion

PAGE_MAX = 500


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat()


def thread_page(case: Case, thread: Thread, after_seq: int, limit: int) -> dict[str, Any]:
    """Messages after `after_seq` (oldest first, within the case's dates), and the
    receipts and photos that belong to this page, with the department's keys and chain."""
    rows = case.covered_messages(Message.objects.filter(thread_id=thread.pk, seq__gt=after_seq))
    page = list(rows.order_by("seq").values_list(*MESSAGE_COLUMNS)[: limit + 1])
    has_more, page = len(page) > limit, page[:limit]
    messages = [message_row_payload(row, retained=True) for row in page]
    _mark_redactions(messages)
    _add_corrections(messages)
    last_seq = messages[-1]["seq"] if messages else after_seq
    # A receipt is "read up to N": it belongs to the page holding message N.
    receipts = case.covered_receipts(
        Receipt.objects.filter(thread_id=thread.pk, up_to_seq__gt=after_seq)
    )
    if has_more:
        receipts = receipts.filter(up_to_seq__lte=last_seq)
    senders = {m["sender"]["id"] for m in messages}
    return {
        "case": case.pk,
        "thread": thread_record(thread),
        "messages": messages,
        "has_more": has_more,
        "receipts": [
            {
                "user": {"id": r.user_id, "username": r.user.username},
                "up_to_seq": r.up_to_seq,
                "read_at": _iso(r.read_at),
            }
            for r in receipts.select_related("user").order_by("read_at", "id")
        ],
        "attachments": _attachments([m["id"] for m in messages]),
        "department": department_record(thread.department_id),
        "thread_key_versions": thread_key_record(thread),
        "identities": identities_of(senders),
    }


def thread_record(thread: Thread) -> dict[str, Any]:
    """A thread as members see it, with its patient's identity: a review names whom it
    is about, and the threads are released only under a case that covers them."""
    patient = thread.patient
    return {
        **thread_data(thread),
        "patient": {
            "id": patient.pk,
            "ipp": patient.ipp,
            "family_name": patient.family_name,
            "given_name": patient.given_name,
            "birth_date": patient.birth_date.isoformat(),
        },
    }


def _mark_redactions(messages: list[dict[str, Any]]) -> None:
    """Add the why of each redaction, kept only in its `message.redacted` audit entry."""
    redacted = {str(m["id"]): m for m in messages if m["redacted"] is not None}
    if not redacted:
        return
    entries = AuditEvent.objects.filter(
        action="message.redacted", object_type="message", object_id__in=list(redacted)
    ).values_list("object_id", "data")
    for object_id, data in entries:
        redacted[object_id]["redacted"].update(reason=data.get("reason", ""), right=data.get("as"))


def _add_corrections(messages: list[dict[str, Any]]) -> None:
    """Every correction of each message, oldest first: a review shows every version, not
    only the latest one members see (`correction`)."""
    by_message: dict[int, list[dict[str, Any]]] = {m["id"]: [] for m in messages}
    rows = (
        Correction.objects.filter(message_id__in=list(by_message))
        .order_by("message_id", "version")
        .values_list(
            "pk", "message_id", "version", "client_msg_id", "header", "ciphertext", "created_at"
        )
    )
    for pk, message_id, version, client_msg_id, header, ciphertext, created_at in rows:
        by_message[message_id].append(
            {
                "id": pk,
                "version": version,
                "client_msg_id": client_msg_id,
                "envelope": {"header": header, "ciphertext": ciphertext},
                "corrected_at": _iso(created_at),
            }
        )
    for message in messages:
        message["corrections"] = by_message[message["id"]]


def _attachments(message_ids: list[int]) -> list[dict[str, Any]]:
    if not message_ids:
        return []
    rows = list(
        Attachment.objects.filter(message_id__in=message_ids)
        .order_by("message_id", "position")
        .values(
            "id",
            "message_id",
            "position",
            "upload_id",
            "thumbnail_id",
            "captured_at",
            "consent",
            "annotates_id",
            "sender_id",
            "patient_id",
        )
    )
    keywords: dict[int, list[str]] = {}
    for attachment_id, code in (
        AttachmentKeyword.objects.filter(attachment_id__in=[r["id"] for r in rows])
        .order_by("id")
        .values_list("attachment_id", "keyword_id")
    ):
        keywords.setdefault(attachment_id, []).append(code)
    return [
        {
            "id": r["id"],
            "message": r["message_id"],
            "position": r["position"],
            "upload": str(r["upload_id"]),
            "thumbnail": None if r["thumbnail_id"] is None else str(r["thumbnail_id"]),
            "captured_at": _iso(r["captured_at"]),
            "consent": r["consent"],
            "annotates": r["annotates_id"],
            "sender": r["sender_id"],
            "patient": r["patient_id"],
            "keywords": keywords.get(r["id"], []),
        }
        for r in rows
    ]


def _compliance_wraps(wraps: Any) -> dict[int, list[dict[str, Any]]]:
    """The wraps sealed for the compliance key (no recipient user), by key version."""
    found: dict[int, list[dict[str, Any]]] = {}
    for wrap in wraps.filter(recipient_user__isnull=True).order_by("id"):
        found.setdefault(wrap.key_version_id, []).append(
            {
                "recipient_fingerprint": wrap.recipient_fingerprint,
                "wrapper": wrap.wrapper_id,
                "record": wrap.record,
                "created_at": _iso(wrap.created_at),
            }
        )
    return found


def thread_key_record(thread: Thread) -> list[dict[str, Any]]:
    """A consult thread's own key versions (docs/crypto.md §14), each with the wraps sealed
    for the compliance key, as `department_record` gives the room key's; none otherwise."""
    versions = ThreadKeyVersion.objects.filter(consult__thread=thread).order_by("version")
    wraps = _compliance_wraps(ThreadKeyWrap.objects.filter(key_version__consult__thread=thread))
    return [
        {
            "version": v.version,
            "signed": v.record,
            "created_by": v.created_by_id,
            "created_at": _iso(v.created_at),
            "compliance_wraps": wraps.get(v.pk, []),
        }
        for v in versions
    ]


def department_record(department_id: int) -> dict[str, Any]:
    """Who was a member at each moment (rows and signed chain), and every key version
    with the wraps sealed for the institution's compliance key."""
    memberships = Membership.objects.filter(department_id=department_id).select_related("user")
    versions = list(RoomKeyVersion.objects.filter(department_id=department_id).order_by("version"))
    wraps = _compliance_wraps(KeyWrap.objects.filter(key_version__department_id=department_id))
    compliance = active_institution_key("compliance")
    wrapper_ids = {w["wrapper"] for ws in wraps.values() for w in ws}
    wrapper_ids |= {v.created_by_id for v in versions}
    return {
        "id": department_id,
        "memberships": [
            {
                "user": {"id": m.user_id, "username": m.user.username},
                "role": m.role,
                "admitted_at": _iso(m.admitted_at),
                "admitted_by": m.admitted_by_id,
                "removed_at": _iso(m.removed_at),
                "removed_by": m.removed_by_id,
            }
            for m in memberships.order_by("admitted_at", "id")
        ],
        "chain": chain_payload(department_id),
        "key_versions": [
            {
                "version": v.version,
                "signed": v.record,
                "created_by": v.created_by_id,
                "created_at": _iso(v.created_at),
                "compliance_wraps": wraps.get(v.pk, []),
            }
            for v in versions
        ],
        "compliance": {"fingerprint": compliance.fingerprint, "public": compliance.as_public()}
        if compliance
        else None,
        "wrappers": identities_of(wrapper_ids),
    }


def identities_of(user_ids: set[int]) -> dict[str, dict[str, Any]]:
    """Every identity key these users ever published (a replaced key keeps its row, so
    what it signed can still be checked), by fingerprint."""
    return {
        key.fingerprint: {
            "user": key.user_id,
            "public": key.as_public(),
            "replaced_at": _iso(key.replaced_at),
        }
        for key in IdentityKey.objects.filter(user_id__in=user_ids).order_by("id")
    }
