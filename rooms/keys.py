"""Room keys and signed membership, as the server keeps and checks them.

The server never holds a room key. It stores key versions as wraps (one
sealed copy per recipient identity, signed by whoever wrapped it), refuses a
version that leaves out a current member or the compliance key, and marks
the department as needing a new version after a removal. Membership statements signed by heads are
checked against the signer's published key and kept for clients to verify.
"""

from typing import Any

from django.db import IntegrityError, transaction

from accounts.keys import active_identity, active_institution_key
from accounts.models import IdentityKey
from audit.actions import record
from chat.crypto import (
    CONTEXT_WRAP,
    CryptoError,
    PublicIdentity,
    SignedStatement,
    WrapRecord,
    verify_statement,
)
from chat.errors import ErrorCode, Forbidden, InvalidRequest, RoundsError
from chat.events import append_event
from chat.models import EventKind
from rooms import access
from rooms.models import Department, KeyWrap, Membership, MembershipStatement, RoomKeyVersion

MAX_WRAPS = 1000


CRYPTO_CODES = {"bad_signature": ErrorCode.BAD_SIGNATURE, "invalid_key": ErrorCode.INVALID_KEY}


def _crypto_refusal(error: CryptoError) -> RoundsError:
    """A record that fails a signature or key check, or does not parse at all."""
    code = CRYPTO_CODES.get(error.code, ErrorCode.INVALID_REQUEST)
    return RoundsError(f"Refused: {error}", code=code)


def _public(key: Any) -> PublicIdentity:
    return PublicIdentity.from_dict(key.as_public())


def _caller_identity(actor: Any) -> IdentityKey:
    identity = active_identity(actor.pk)
    if identity is None:
        raise RoundsError("Publish your identity key first.", code=ErrorCode.INVALID_KEY)
    return identity


def required_recipients(department_id: int) -> dict[str, int | None]:
    """Fingerprint → user id (None for the compliance key) that a new version must cover.

    Members who have not published an identity yet cannot be covered; they
    receive every version once they publish (history sharing).
    """
    members = Membership.objects.active().filter(department_id=department_id)
    identities = IdentityKey.objects.filter(
        user_id__in=members.values("user_id"), replaced_at__isnull=True
    )
    required: dict[str, int | None] = {key.fingerprint: key.user_id for key in identities}
    compliance = active_institution_key("compliance")
    if compliance is not None:
        required[compliance.fingerprint] = None
    return required


def _checked_wraps(
    raw_wraps: list[Any], *, department_id: int, wrapper: IdentityKey
) -> dict[int, list[WrapRecord]]:
    """Parse every wrap and check its signature by the caller. Returns them by version."""
    if not isinstance(raw_wraps, list) or not 0 < len(raw_wraps) <= MAX_WRAPS:
        raise InvalidRequest(f"Send 1 to {MAX_WRAPS} wrap records.")
    wrapper_public = _public(wrapper)
    by_version: dict[int, list[WrapRecord]] = {}
    try:
        for raw in raw_wraps:
            wrap = WrapRecord.from_dict(raw)
            if wrap.department != department_id:
                raise InvalidRequest("A wrap names another department.")
            if wrap.wrapper_fp != wrapper.fingerprint:
                # As chat.crypto has it: a record made by another wrapper is a bad signature.
                raise RoundsError(
                    "Wraps must be signed by the caller's own identity.",
                    code=ErrorCode.BAD_SIGNATURE,
                )
            wrapper_public.verify(CONTEXT_WRAP, wrap.signed_bytes(), wrap.signature)
            by_version.setdefault(wrap.version, []).append(wrap)
    except CryptoError as error:
        raise _crypto_refusal(error) from None
    return by_version


def check_publish_key_version(actor: Any, department_id: int, version: int, wraps: list) -> dict:
    """A member publishes the next room key version, wrapped for everyone who must read it."""
    access.access_membership(actor, department_id)
    wrapper = _caller_identity(actor)
    if active_institution_key("compliance") is None:
        raise RoundsError(
            "The institution's compliance key is not set; an administrator must set it first.",
            code=ErrorCode.WRAPS_INCOMPLETE,
        )
    by_version = _checked_wraps(wraps, department_id=department_id, wrapper=wrapper)
    if set(by_version) != {version}:
        raise InvalidRequest("Every wrap must be of the version published.")
    return do_publish_key_version(actor, department_id, version, by_version[version])


def do_publish_key_version(
    actor: Any, department_id: int, version: int, wraps: list[WrapRecord]
) -> dict:
    """Assumes the wraps were parsed and their signatures checked."""
    with transaction.atomic():
        department = Department.objects.select_for_update().get(pk=department_id)
        if version != department.key_version + 1:
            raise RoundsError(
                "Key versions go up one at a time.",
                code=ErrorCode.CONFLICT,
                data={"current_version": department.key_version},
            )
        required = required_recipients(department_id)
        given = {wrap.recipient_fp for wrap in wraps}
        if len(given) != len(wraps) or not given <= set(required):
            raise InvalidRequest("Wraps must go to current members and the compliance key, once.")
        if missing := set(required) - given:
            raise RoundsError(
                "This version leaves out someone who must read it.",
                code=ErrorCode.WRAPS_INCOMPLETE,
                data={"missing": sorted(str(required[fp] or "compliance") for fp in missing)},
            )
        key_version = RoomKeyVersion.objects.create(
            department_id=department_id, version=version, created_by=actor
        )
        KeyWrap.objects.bulk_create(
            KeyWrap(
                key_version=key_version,
                recipient_fingerprint=wrap.recipient_fp,
                recipient_user_id=required[wrap.recipient_fp],
                wrapper=actor,
                record=wrap.to_dict(),
            )
            for wrap in wraps
        )
        Department.objects.filter(pk=department_id).update(
            key_version=version, rotation_required=False
        )
        record(
            "key.version_published",
            actor=actor,
            department_id=department_id,
            object_type="room_key",
            object_id=key_version.pk,
            data={"version": version, "wraps": len(wraps)},
        )
        append_event(
            department_id,
            EventKind.KEY_ROTATED,
            {"key_version": version, "by": {"id": actor.pk, "username": actor.username}},
        )
    return {"department": department_id, "key_version": version, "wraps": len(wraps)}


def check_share_wraps(actor: Any, department_id: int, wraps: list) -> dict:
    """Wrap earlier versions for a member who lacks them: a newcomer reads the history."""
    access.access_membership(actor, department_id)
    wrapper = _caller_identity(actor)
    by_version = _checked_wraps(wraps, department_id=department_id, wrapper=wrapper)
    required = required_recipients(department_id)
    versions = {
        v.version: v
        for v in RoomKeyVersion.objects.filter(department_id=department_id, version__in=by_version)
    }
    if set(by_version) - set(versions):
        raise InvalidRequest("A wrap names a key version that does not exist.")
    added, recipients = 0, set()
    try:
        with transaction.atomic():
            for version, records in by_version.items():
                for wrap in records:
                    if wrap.recipient_fp not in required:
                        raise InvalidRequest("Wraps go to current members only.")
                    KeyWrap.objects.create(
                        key_version=versions[version],
                        recipient_fingerprint=wrap.recipient_fp,
                        recipient_user_id=required[wrap.recipient_fp],
                        wrapper=actor,
                        record=wrap.to_dict(),
                    )
                    added += 1
                    recipients.add(required[wrap.recipient_fp])
            record(
                "key.history_shared",
                actor=actor,
                department_id=department_id,
                object_type="department",
                object_id=department_id,
                data={
                    "wraps": added,
                    "recipients": sorted(str(r) for r in recipients),
                    "versions": sorted(by_version),
                },
            )
    except IntegrityError:
        raise RoundsError("One of these wraps already exists.", code=ErrorCode.CONFLICT) from None
    return {"department": department_id, "added": added}


def department_keys(actor: Any, department_id: int) -> dict:
    """What a member's client needs: the current version, the members' keys, its own wraps."""
    access.access_membership(actor, department_id)
    department = Department.objects.get(pk=department_id)
    members = Membership.objects.active().filter(department_id=department_id)
    identities = {
        key.user_id: key
        for key in IdentityKey.objects.filter(
            user_id__in=members.values("user_id"), replaced_at__isnull=True
        )
    }
    mine = active_identity(actor.pk)
    wraps = (
        KeyWrap.objects.filter(
            key_version__department_id=department_id, recipient_fingerprint=mine.fingerprint
        ).order_by("key_version__version")
        if mine
        else KeyWrap.objects.none()
    )
    wrapper_ids = {w.wrapper_id for w in wraps}
    wrappers = {
        key.fingerprint: {"user": key.user_id, "public": key.as_public()}
        for key in IdentityKey.objects.filter(user_id__in=wrapper_ids)
    }
    compliance = active_institution_key("compliance")
    return {
        "department": department_id,
        "key_version": department.key_version,
        "rotation_required": department.rotation_required,
        "members": [
            {
                "user": m.user_id,
                "role": m.role,
                "identity": identities[m.user_id].as_public() if m.user_id in identities else None,
                "fingerprint": identities[m.user_id].fingerprint
                if m.user_id in identities
                else None,
            }
            for m in members.order_by("user_id")
        ],
        "compliance": {"fingerprint": compliance.fingerprint, "public": compliance.as_public()}
        if compliance
        else None,
        "my_wraps": [w.record for w in wraps],
        # Who wrapped each of my wraps (every identity they ever published,
        # since a wrap outlives a replaced key), so a client can check them.
        "wrappers": wrappers,
    }


def check_post_statement(actor: Any, department_id: int, signed: Any) -> dict:
    """Keep a membership statement signed by the caller, a head of the department.

    It must describe the membership as the server has it: the subject, their
    role and their published fingerprint.
    """
    access.access_membership(actor, department_id, head=True)
    signer = _caller_identity(actor)
    try:
        parsed = SignedStatement.from_dict(signed)
        statement = verify_statement(parsed, _public(signer))
    except CryptoError as error:
        raise _crypto_refusal(error) from None
    if statement.department != department_id or statement.signer_user != actor.pk:
        raise InvalidRequest("The statement names another department or signer.")
    subject_key = active_identity(statement.subject_user)
    if subject_key is None or subject_key.fingerprint != statement.subject_fingerprint:
        raise InvalidRequest("The statement's fingerprint is not the subject's published key.")
    membership = (
        Membership.objects.active()
        .filter(user_id=statement.subject_user, department_id=department_id)
        .first()
    )
    present = membership is not None and membership.role == statement.role
    if (statement.kind in ("admit", "role")) != present:
        raise Forbidden("The statement does not match the department's membership.")
    was_member = Membership.objects.filter(
        user_id=statement.subject_user, department_id=department_id
    ).exists()
    if statement.kind == "remove" and not was_member:
        raise Forbidden("The statement removes someone who was never a member.")
    last = (
        MembershipStatement.objects.filter(
            department_id=department_id, subject_id=statement.subject_user
        )
        .order_by("-id")
        .first()
    )
    if last is not None and _same_change(last.signed["statement"], statement):
        # A retry, or a second head saying the same: the chain keeps one.
        return {"id": last.pk, "kind": statement.kind, "subject": statement.subject_user}
    stored = MembershipStatement.objects.create(
        department_id=department_id,
        kind=statement.kind,
        subject_id=statement.subject_user,
        signer=actor,
        signed=parsed.to_dict(),
    )
    record(
        "key.statement_signed",
        actor=actor,
        department_id=department_id,
        object_type="statement",
        object_id=stored.pk,
        data={"kind": statement.kind, "subject": statement.subject_user},
    )
    return {"id": stored.pk, "kind": statement.kind, "subject": statement.subject_user}


def _same_change(previous: dict, statement: Any) -> bool:
    """Would this statement repeat the subject's last one (same change, same key)?"""
    kind = previous.get("kind")
    same_effect = kind == statement.kind or {kind, statement.kind} == {"admit", "role"}
    return (
        same_effect
        and previous.get("role") == statement.role
        and previous.get("subject_fingerprint") == statement.subject_fingerprint
    )


def list_statements(actor: Any, department_id: int) -> list[dict]:
    access.access_membership(actor, department_id)
    return [
        {"id": s.pk, "signed": s.signed, "created_at": s.created_at.isoformat()}
        for s in MembershipStatement.objects.filter(department_id=department_id).order_by("id")
    ]
