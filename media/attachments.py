"""The photos of a post: a message's attachment refs become library rows.

`do_attach_uploads` runs inside the post's transaction
(`chat.posting`, a post with photos being a transaction of its own), once
the message row exists: any refusal
rolls the whole post back, so a message is never stored with some of its
photos, and an upload is attached at most once (its row is locked here, and
`Attachment.upload` is unique besides). What the server learns is only what
the refs carry (docs/media.md, docs/threat-model.md): blob ids, keyword
codes, consent scope and capture date; keys and captions stay in the body.
"""

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from pydantic import ValidationError

from audit.actions import record
from chat.models import Message
from core.errors import N_, ErrorCode, InvalidRequest, RoundsError
from core.protocol import MAX_ATTACHMENTS, AttachmentRef
from media.models import (
    Attachment,
    AttachmentKeyword,
    Keyword,
    KeywordCategory,
    Upload,
    UploadState,
)
from rooms import access


def attachment_invalid(upload: str, reason: str, **extra: Any) -> RoundsError:
    return RoundsError(
        N_("An attachment cannot be used in this message."),
        code=ErrorCode.ATTACHMENT_INVALID,
        data={"upload": upload, "reason": reason, **extra},
    )


def check_attachment_refs(raw: Sequence[Any]) -> list[dict[str, Any]]:
    """The refs as plain dicts with every field of `AttachmentRef`, or InvalidRequest.

    The socket edge already parsed them; other callers (tests, tools) pass
    dicts, which get the same schema. The normalised dicts are what the
    post's body hash covers, so a retry is compared field by field.
    """
    if len(raw) > MAX_ATTACHMENTS:
        raise InvalidRequest(
            N_("At most %(max)s attachments per message."), params={"max": MAX_ATTACHMENTS}
        )
    refs = []
    for item in raw:
        try:
            ref = item if isinstance(item, AttachmentRef) else AttachmentRef.model_validate(item)
        except ValidationError as error:
            problems = [
                {"field": ".".join(str(p) for p in err["loc"]), "problem": err["msg"]}
                for err in error.errors(include_input=False, include_url=False)
            ]
            raise InvalidRequest(
                N_("An attachment does not match its schema."), data={"errors": problems}
            ) from None
        refs.append(ref.model_dump())
    return refs


def do_attach_uploads(
    message: Message,
    thread_id: int,
    department_id: int,
    patient_id: int,
    sender: Any,
    refs: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Attach the sender's completed uploads to `message`, as the library's rows.

    Assumes: inside the post's transaction, under the thread's and the
    department's locks, with the sender's membership checked there and the
    message row just created; `refs` come from `check_attachment_refs`.
    Stores the snapshot that message.new, history and resume show on the
    message (`Message.attachments`) and returns it.

    Raises:
        RoundsError(attachment_invalid): an upload that is someone else's or
            missing (both `not_found`, so ids cannot be probed),
            `already_attached`, `not_complete`, of another department, named
            twice (`duplicate`), or an `annotates` that is no visible photo
            of this patient (`annotates_not_found`).
        InvalidRequest: a keyword outside the active nomenclature.
    """
    named = _named_uploads(refs)
    uploads = {
        str(upload.pk): upload
        # Locked in one order, so two posts naming the same uploads cannot deadlock.
        for upload in Upload.objects.select_for_update().filter(pk__in=named).order_by("pk")
    }
    for upload_id in named:
        _check_upload(uploads.get(upload_id), upload_id, sender.pk, department_id)
    _check_keywords(refs)
    _check_annotated(refs, patient_id, sender)
    rows = Attachment.objects.bulk_create(
        Attachment(
            message=message,
            position=position,
            upload_id=ref["upload"],
            thumbnail_id=ref["thumbnail"],
            department_id=department_id,
            thread_id=thread_id,
            patient_id=patient_id,
            sender_id=sender.pk,
            captured_at=_captured_at(ref, message),
            consent=ref["consent"],
            annotates_id=ref["annotates"],
            created_at=message.created_at,
        )
        for position, ref in enumerate(refs)
    )
    AttachmentKeyword.objects.bulk_create(
        AttachmentKeyword(attachment_id=row.pk, keyword_id=code)
        for row, ref in zip(rows, refs, strict=True)
        for code in ref["keywords"]
    )
    Upload.objects.filter(pk__in=named).update(
        state=UploadState.ATTACHED, attached_at=timezone.now()
    )
    snapshot = [attachment_data(row, ref["keywords"]) for row, ref in zip(rows, refs, strict=True)]
    message.attachments = snapshot
    message.save(update_fields=["attachments"])
    record(
        "attachment.attached",
        actor=sender,
        department_id=department_id,
        object_type="message",
        object_id=message.pk,
        data={
            "thread_id": thread_id,
            "patient_id": patient_id,
            "attachments": [row.pk for row in rows],
            "uploads": named,
            "keywords": sorted({code for ref in refs for code in ref["keywords"]}),
            "consents": [ref["consent"] for ref in refs],
        },
    )
    return snapshot


def attachment_data(row: Attachment, keywords: list[str]) -> dict[str, Any]:
    """An attachment as a message shows it (outbound.AttachmentOut)."""
    return {
        "id": row.pk,
        "upload": str(row.upload_id),
        "thumbnail": None if row.thumbnail_id is None else str(row.thumbnail_id),
        "keywords": list(keywords),
        "consent": row.consent,
        "captured_at": row.captured_at.astimezone(UTC).isoformat(),
        "annotates": row.annotates_id,
    }


def _named_uploads(refs: list[dict[str, Any]]) -> list[str]:
    """Every blob the refs name (photos, then thumbnails); one named twice is refused."""
    named = [ref["upload"] for ref in refs] + [ref["thumbnail"] for ref in refs if ref["thumbnail"]]
    seen: set[str] = set()
    for upload_id in named:
        if upload_id in seen:
            raise attachment_invalid(upload_id, "duplicate")
        seen.add(upload_id)
    return named


def _check_upload(
    upload: Upload | None, upload_id: str, sender_id: int, department_id: int
) -> None:
    if upload is None or upload.owner_id != sender_id:
        raise attachment_invalid(upload_id, "not_found")
    if upload.state == UploadState.ATTACHED:
        raise attachment_invalid(upload_id, "already_attached")
    if upload.state != UploadState.COMPLETE:
        raise attachment_invalid(upload_id, "not_complete")
    if upload.department_id != department_id:
        raise attachment_invalid(upload_id, "other_department")


def _check_keywords(refs: list[dict[str, Any]]) -> None:
    codes = {code for ref in refs for code in ref["keywords"]}
    if not codes:
        return
    known = set(Keyword.objects.filter(code__in=codes, active=True).values_list("code", flat=True))
    if unknown := sorted(codes - known):
        raise InvalidRequest(
            N_("Keywords must be codes of the nomenclature (GET /api/library/keywords)."),
            data={"keywords": unknown},
        )


def _check_annotated(refs: list[dict[str, Any]], patient_id: int, sender: Any) -> None:
    """An overlay annotates a photo of the same patient that the sender may see."""
    targets = {ref["annotates"] for ref in refs if ref["annotates"] is not None}
    if not targets:
        return
    visible = set(
        Attachment.objects.filter(
            pk__in=targets,
            patient_id=patient_id,
            department_id__in=access.member_department_ids(sender),
        ).values_list("pk", flat=True)
    )
    for ref in refs:
        if ref["annotates"] is not None and ref["annotates"] not in visible:
            raise attachment_invalid(
                ref["upload"], "annotates_not_found", annotates=ref["annotates"]
            )


def _captured_at(ref: dict[str, Any], message: Message) -> datetime:
    """The capture time the client read from the photo, else the post's time."""
    if ref["captured_at"] is None:
        return message.created_at
    return datetime.fromisoformat(ref["captured_at"]).astimezone(UTC)


# --- The nomenclature ---------------------------------------------------------

KEYWORD_CODE = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")


def check_load_keywords(terms: Any) -> dict[str, int]:
    """Make the nomenclature the given list of {code, label, category} (manage.py load_keywords).

    Terms are created or updated and (re)activated; a term absent from the
    list is deactivated, never deleted, so the photos indexed by it keep it.
    All or nothing, in one transaction, audited with its counts.

    Raises:
        InvalidRequest: not a list of well-formed, distinct terms.
    """
    if not isinstance(terms, list) or not terms:
        raise InvalidRequest(N_("The nomenclature is a non-empty JSON list of terms."))
    wanted: dict[str, tuple[str, str]] = {}
    for index, term in enumerate(terms):
        if not isinstance(term, dict) or set(term) != {"code", "label", "category"}:
            raise InvalidRequest(
                N_("Term %(index)s must have exactly code, label and category."),
                params={"index": index},
            )
        code, label, category = term["code"], term["label"], term["category"]
        if not isinstance(code, str) or not KEYWORD_CODE.match(code) or code in wanted:
            raise InvalidRequest(
                N_("Term %(index)s: code must be a new slug of 1 to 64 characters."),
                params={"index": index},
            )
        if not isinstance(label, str) or not 1 <= len(label.strip()) <= 200:
            raise InvalidRequest(
                N_("Term %(index)s: label has 1 to 200 characters."), params={"index": index}
            )
        if category not in KeywordCategory.values:
            raise InvalidRequest(
                N_("Term %(index)s: category is one of %(categories)s."),
                params={"index": index, "categories": KeywordCategory.values},
            )
        wanted[code] = (label.strip(), category)
    return do_load_keywords(wanted)


def do_load_keywords(wanted: dict[str, tuple[str, str]]) -> dict[str, int]:
    """Assumes the terms were checked (`check_load_keywords`)."""
    counts = {"created": 0, "updated": 0, "unchanged": 0, "deactivated": 0}
    with transaction.atomic():
        existing = {k.code: k for k in Keyword.objects.select_for_update()}
        for code, (label, category) in wanted.items():
            keyword = existing.get(code)
            if keyword is None:
                Keyword.objects.create(code=code, label=label, category=category, active=True)
                counts["created"] += 1
            elif (keyword.label, keyword.category, keyword.active) != (label, category, True):
                keyword.label, keyword.category, keyword.active = label, category, True
                keyword.save(update_fields=["label", "category", "active"])
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
        retired = [c for c, k in existing.items() if c not in wanted and k.active]
        counts["deactivated"] = Keyword.objects.filter(code__in=retired).update(active=False)
        record("keywords.loaded", object_type="keyword", data=counts)
    return counts
