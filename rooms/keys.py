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
    replay_membership_chain,
    verify_statement,
)
from chat.errors import ErrorCode, Forbidden, InvalidRequest, NotFound, RoundsError
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


def _member_fingerprints(department_id: int) -> dict[int, str]:
    """User id → current published fingerprint, for the active members who have one."""
    members = Membership.objects.active().filter(department_id=department_id)
    return dict(
        IdentityKey.objects.filter(
            user_id__in=members.values("user_id"), replaced_at__isnull=True
        ).values_list("user_id", "fingerprint")
    )


def attested_members(department_id: int, published: dict[int, str] | None = None) -> dict[int, str]:
    """User id → fingerprint of the current members whose admission is signed.

    A member is attested when their latest statement in the department
    admits them (or changes their role) with the key they have published
    now. The statements were checked when stored; clients check them again
    and wrap only for these members. `published` is `_member_fingerprints`,
    when the caller already has it.
    """
    latest: dict[int, dict] = {}
    for signed in (
        MembershipStatement.objects.filter(department_id=department_id)
        .order_by("id")
        .values_list("signed", flat=True)
    ):
        statement = signed["statement"]
        latest[statement["subject_user"]] = statement
    if published is None:
        published = _member_fingerprints(department_id)
    return {
        user: fingerprint
        for user, fingerprint in published.items()
        if (statement := latest.get(user)) is not None
        and statement["kind"] in ("admit", "role")
        and statement["subject_fingerprint"] == fingerprint
    }


def allowed_recipients(department_id: int) -> dict[str, int | None]:
    """Fingerprint → user id of everyone a wrap may go to: current members with a
    published key, and the compliance key (None)."""
    allowed: dict[str, int | None] = {
        fingerprint: user for user, fingerprint in _member_fingerprints(department_id).items()
    }
    compliance = active_institution_key("compliance")
    if compliance is not None:
        allowed[compliance.fingerprint] = None
    return allowed


def required_recipients(
    department_id: int, allowed: dict[str, int | None] | None = None
) -> dict[str, int | None]:
    """Fingerprint → user id (None for the compliance key) that a new version must cover.

    The attested members and the compliance key: the part of
    `allowed_recipients` (passed in when the caller has it) clients will
    wrap for. A member not attested yet (no published key, or no signed
    admission) cannot be required: clients refuse to wrap for them. They
    receive every version once a head signs their admission (history
    sharing).
    """
    if allowed is None:
        allowed = allowed_recipients(department_id)
    published = {user: fp for fp, user in allowed.items() if user is not None}
    attested = attested_members(department_id, published)
    return {fp: user for fp, user in allowed.items() if user is None or attested.get(user) == fp}


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
        allowed = allowed_recipients(department_id)
        required = required_recipients(department_id, allowed)
        given = {wrap.recipient_fp for wrap in wraps}
        if len(given) != len(wraps) or not given <= set(allowed):
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
                recipient_user_id=allowed[wrap.recipient_fp],
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
    allowed = allowed_recipients(department_id)
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
                    if wrap.recipient_fp not in allowed:
                        raise InvalidRequest("Wraps go to current members only.")
                    KeyWrap.objects.create(
                        key_version=versions[version],
                        recipient_fingerprint=wrap.recipient_fp,
                        recipient_user_id=allowed[wrap.recipient_fp],
                        wrapper=actor,
                        record=wrap.to_dict(),
                    )
                    added += 1
                    recipients.add(allowed[wrap.recipient_fp])
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
    attested = attested_members(
        department_id, {user: key.fingerprint for user, key in identities.items()}
    )
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
                # A head signed this member's admission with the key above.
                "attested": m.user_id in attested,
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
    """Keep a membership statement signed by the caller, a head of the department,
    or by the institution's admin key (posted by an administrator) to appoint a head.

    It must describe the membership as the server has it: the subject, their
    role and their published fingerprint. A `remove` may also retire a key
    the subject has replaced, while they stay a member (a new `admit` with
    the new key follows).
    """
    try:
        parsed = SignedStatement.from_dict(signed)
    except CryptoError as error:
        raise _crypto_refusal(error) from None
    if parsed.statement.signer_user is None:
        access.check_admin(actor)
        if not Department.objects.filter(pk=department_id).exists():
            raise NotFound("Department not found.")
        admin_key = active_institution_key("admin")
        if admin_key is None:
            raise RoundsError("The institution's admin key is not set.", code=ErrorCode.INVALID_KEY)
        signer_key = admin_key
    else:
        access.access_membership(actor, department_id, head=True)
        signer_key = _caller_identity(actor)
    try:
        statement = verify_statement(parsed, _public(signer_key))
    except CryptoError as error:
        raise _crypto_refusal(error) from None
    if statement.department != department_id or statement.signer_user not in (None, actor.pk):
        raise InvalidRequest("The statement names another department or signer.")
    if statement.signer_user is None and (statement.role != "head" or statement.kind == "remove"):
        raise Forbidden("The admin key only appoints heads.")
    _check_statement_fits(statement, department_id)
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
    _check_extends_chain(department_id, parsed)
    stored = MembershipStatement.objects.create(
        department_id=department_id,
        kind=statement.kind,
        subject_id=statement.subject_user,
        signer=actor if statement.signer_user is not None else None,
        signed=parsed.to_dict(),
    )
    record(
        "key.statement_signed",
        actor=actor,
        department_id=department_id,
        object_type="statement",
        object_id=stored.pk,
        data={
            "kind": statement.kind,
            "subject": statement.subject_user,
            "role": statement.role,
            "signed_by": "admin_key" if statement.signer_user is None else "head",
        },
    )
    return {"id": stored.pk, "kind": statement.kind, "subject": statement.subject_user}


def _check_statement_fits(statement: Any, department_id: int) -> None:
    """Refuse a statement that does not describe the department's membership as it is."""
    membership = (
        Membership.objects.active()
        .filter(user_id=statement.subject_user, department_id=department_id)
        .first()
    )
    subject_key = active_identity(statement.subject_user)
    current_key = subject_key is not None and (
        subject_key.fingerprint == statement.subject_fingerprint
    )
    if statement.kind == "remove":
        published = IdentityKey.objects.filter(
            user_id=statement.subject_user, fingerprint=statement.subject_fingerprint
        ).exists()
        if not published:
            raise InvalidRequest("The statement's fingerprint is not a key the subject published.")
        was_member = Membership.objects.filter(
            user_id=statement.subject_user, department_id=department_id
        ).exists()
        if not was_member:
            raise Forbidden("The statement removes someone who was never a member.")
        if membership is not None and current_key:
            raise Forbidden("The statement does not match the department's membership.")
        return
    if not current_key:
        raise InvalidRequest("The statement's fingerprint is not the subject's published key.")
    if membership is None or membership.role != statement.role:
        raise Forbidden("The statement does not match the department's membership.")


def _check_extends_chain(department_id: int, signed: SignedStatement) -> None:
    """Refuse a statement that clients could not verify after the department's stored ones.

    A statement that breaks the chain (a signer who is not a head at that
    point, a removal of someone never admitted, a time going back) would
    make every client refuse to wrap keys for anyone, so the server replays
    the chain with it, as clients will, before keeping it.
    """
    admin_key = active_institution_key("admin")
    if admin_key is None:
        raise RoundsError(
            "The institution's admin key is not set; it must appoint the department's head first.",
            code=ErrorCode.INVALID_KEY,
        )
    stored = [
        SignedStatement.from_dict(entry)
        for entry in MembershipStatement.objects.filter(department_id=department_id)
        .order_by("id")
        .values_list("signed", flat=True)
    ]
    chain = [*stored, signed]
    named = {
        fp
        for s in chain
        for fp in (s.statement.subject_fingerprint, s.statement.signer_fingerprint)
    }
    keys = [_public(key) for key in IdentityKey.objects.filter(fingerprint__in=named)]
    try:
        replay_membership_chain(chain, admin_key=_public(admin_key), keys=keys)
    except CryptoError as error:
        raise Forbidden(
            f"The statement does not follow the department's signed membership: {error}"
        ) from None


def _same_change(previous: dict, statement: Any) -> bool:
    """Would this statement repeat the subject's last one (same change, same key)?"""
    kind = previous.get("kind")
    same_effect = kind == statement.kind or {kind, statement.kind} == {"admit", "role"}
    return (
        same_effect
        and previous.get("role") == statement.role
        and previous.get("subject_fingerprint") == statement.subject_fingerprint
    )


def list_statements(actor: Any, department_id: int) -> dict:
    """The department's statements in order, with every key they name.

    `keys` maps each fingerprint a statement names (subjects and signers,
    replaced keys included) to its public key; a client checks each against
    its fingerprint, so the server cannot substitute one.
    """
    access.access_statements(actor, department_id)
    stored = list(MembershipStatement.objects.filter(department_id=department_id).order_by("id"))
    named = set()
    for entry in stored:
        statement = entry.signed["statement"]
        named.update((statement["subject_fingerprint"], statement["signer_fingerprint"]))
    keys = {
        key.fingerprint: key.as_public()
        for key in IdentityKey.objects.filter(fingerprint__in=named)
    }
    admin = active_institution_key("admin")
    return {
        "department": department_id,
        "statements": [
            {"id": s.pk, "signed": s.signed, "created_at": s.created_at.isoformat()} for s in stored
        ],
        "keys": keys,
        "admin": {"fingerprint": admin.fingerprint, "public": admin.as_public()} if admin else None,
    }
