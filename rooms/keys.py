"""Room key versions and their wraps, as the server keeps and checks them.

The server never holds a room key. A member publishes a version as its
signed record (docs/crypto.md §7: the chain head it was made at, its
creator, its key's commitment) and one wrap per recipient, signed by them;
the server refuses a version that is not made at the chain's current head
by a member the chain admitted, or that leaves out an attested member or
the compliance key, and marks the department as needing a new version after
a removal or key replacement. Clients check all of it again.
"""

from typing import Any

from django.db import IntegrityError, transaction

from accounts.keys import active_identity, active_institution_key
from accounts.models import IdentityKey, User
from audit.actions import record
from chat.events import append_event
from core.crypto import (
    CONTEXT_KEY_VERSION,
    CONTEXT_WRAP,
    CryptoError,
    SignedKeyVersion,
    WrapRecord,
    b64encode,
)
from core.errors import N_, ErrorCode, InvalidRequest, RoundsError
from core.events import EventKind
from rooms import access
from rooms.chain import chain_members, crypto_refusal, public_of
from rooms.models import Department, KeyWrap, Membership, RoomKeyVersion

MAX_WRAPS = 1000


def _caller_identity(actor: User) -> IdentityKey:
    identity = active_identity(actor.pk)
    if identity is None:
        raise RoundsError(N_("Publish your identity key first."), code=ErrorCode.INVALID_KEY)
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
    """User id → fingerprint of the current members whose key the chain holds for them.

    Clients wrap only for these members (docs/crypto.md §9, R4). `published`
    is `_member_fingerprints`, when the caller already has it.
    """
    if published is None:
        published = _member_fingerprints(department_id)
    chain = chain_members(department_id)
    return {
        user: fingerprint
        for user, fingerprint in published.items()
        if user in chain and chain[user][1] == fingerprint
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
    wrap for. A member not attested yet cannot be required: clients refuse
    to wrap for them; they receive every version once a head signs their
    admission (history sharing).
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
        raise InvalidRequest(N_("Send 1 to %(max)s wrap records."), params={"max": MAX_WRAPS})
    wrapper_public = public_of(wrapper)
    by_version: dict[int, list[WrapRecord]] = {}
    try:
        for raw in raw_wraps:
            wrap = WrapRecord.from_dict(raw)
            if wrap.department != department_id:
                raise InvalidRequest(N_("A wrap names another department."))
            if wrap.wrapper_fp != wrapper.fingerprint:
                # As core.crypto has it: a record made by another wrapper is a bad signature.
                raise RoundsError(
                    N_("Wraps must be signed by the caller's own identity."),
                    code=ErrorCode.BAD_SIGNATURE,
                )
            wrapper_public.verify(CONTEXT_WRAP, wrap.signed_bytes(), wrap.signature)
            by_version.setdefault(wrap.version, []).append(wrap)
    except CryptoError as error:
        raise crypto_refusal(error) from None
    return by_version


def _checked_record(actor: User, signed: Any, creator: IdentityKey) -> SignedKeyVersion:
    """The version's record, made and signed by the caller with their published key."""
    try:
        parsed = SignedKeyVersion.from_dict(signed)
        if (
            parsed.record.creator_user != actor.pk
            or parsed.record.creator_fingerprint != creator.fingerprint
        ):
            raise RoundsError(
                N_("A key version is recorded by its creator, with their published key."),
                code=ErrorCode.BAD_SIGNATURE,
            )
        public_of(creator).verify(
            CONTEXT_KEY_VERSION, parsed.record.signed_bytes(), parsed.signature
        )
    except CryptoError as error:
        raise crypto_refusal(error) from None
    return parsed


def check_publish_key_version(
    actor: User, department_id: int, version: int, signed_record: Any, wraps: list[Any]
) -> dict[str, Any]:
    """A member publishes the next room key version: its record, and wraps for
    everyone who must read it."""
    access.access_membership(actor, department_id)
    creator = _caller_identity(actor)
    if active_institution_key("compliance") is None:
        raise RoundsError(
            N_("The institution's compliance key is not set; an administrator must set it first."),
            code=ErrorCode.WRAPS_INCOMPLETE,
        )
    parsed = _checked_record(actor, signed_record, creator)
    by_version = _checked_wraps(wraps, department_id=department_id, wrapper=creator)
    if (parsed.record.department, parsed.record.version) != (department_id, version) or set(
        by_version
    ) != {version}:
        raise InvalidRequest(N_("The record and every wrap must be of the version published."))
    if any(wrap.commitment != parsed.record.commitment for wrap in by_version[version]):
        raise InvalidRequest(N_("Every wrap must carry the version's commitment."))
    return do_publish_key_version(actor, department_id, parsed, by_version[version])


def check_next_version(
    actor: User, version: Any, current_version: int, department: Department
) -> None:
    """A new version (of the room key, or of a consult's thread key) comes next after
    `current_version`, at the department's chain head, made by a member the chain holds
    with the key it names. Under the department's lock."""
    if version.version != current_version + 1:
        raise RoundsError(
            N_("Key versions go up one at a time."),
            code=ErrorCode.CONFLICT,
            data={"current_version": current_version},
        )
    if (version.chain_seq, version.chain_head) != (department.chain_seq, department.chain_head):
        raise RoundsError(
            N_("A key version is made at the head of the department's chain."),
            code=ErrorCode.CONFLICT,
            data={"head": {"seq": department.chain_seq, "hash": department.chain_head}},
        )
    held = chain_members(department.pk).get(actor.pk)
    if held is None or held[1] != version.creator_fingerprint:
        raise RoundsError(
            N_("Your admission with this key is not in the department's signed membership."),
            code=ErrorCode.NOT_ATTESTED,
        )


def check_wrap_recipients(
    wraps: list[WrapRecord],
    allowed: dict[str, int | None],
    required: dict[str, int | None],
    not_allowed: str,
) -> None:
    """Each recipient once and allowed (else `not_allowed`), and none of `required` left out."""
    given = {wrap.recipient_fp for wrap in wraps}
    if len(given) != len(wraps) or not given <= set(allowed):
        raise InvalidRequest(not_allowed)
    if missing := set(required) - given:
        raise RoundsError(
            N_("This version leaves out someone who must read it."),
            code=ErrorCode.WRAPS_INCOMPLETE,
            data={"missing": sorted(str(required[fp] or "compliance") for fp in missing)},
        )


def do_publish_key_version(
    actor: User, department_id: int, signed: SignedKeyVersion, wraps: list[WrapRecord]
) -> dict[str, Any]:
    """Assumes the record and the wraps were parsed and their signatures checked."""
    version = signed.record
    with transaction.atomic():
        department = Department.objects.select_for_update().get(pk=department_id)
        check_next_version(actor, version, department.key_version, department)
        allowed = allowed_recipients(department_id)
        required = required_recipients(department_id, allowed)
        check_wrap_recipients(
            wraps,
            allowed,
            required,
            N_("Wraps must go to current members and the compliance key, once."),
        )
        commitment = b64encode(version.commitment)
        key_version = RoomKeyVersion.objects.create(
            department_id=department_id,
            version=version.version,
            created_by=actor,
            record=signed.to_dict(),
            commitment=commitment,
            chain_seq=version.chain_seq,
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
            key_version=version.version,
            rotation_required=False,
            key_commitment=commitment,
            key_chain_seq=version.chain_seq,
        )
        record(
            "key.version_published",
            actor=actor,
            department_id=department_id,
            object_type="room_key",
            object_id=key_version.pk,
            data={"version": version.version, "wraps": len(wraps), "chain_seq": version.chain_seq},
        )
        append_event(
            department_id,
            EventKind.KEY_ROTATED,
            {"key_version": version.version, "by": {"id": actor.pk, "username": actor.username}},
        )
    return {"department": department_id, "key_version": version.version, "wraps": len(wraps)}


def check_share_wraps(actor: User, department_id: int, wraps: list[Any]) -> dict[str, Any]:
    """Wrap earlier versions for a member who lacks them: a newcomer reads the history."""
    access.access_membership(actor, department_id)
    wrapper = _caller_identity(actor)
    by_version = _checked_wraps(wraps, department_id=department_id, wrapper=wrapper)
    allowed = allowed_recipients(department_id)
    versions = {
        v.version: v
        for v in RoomKeyVersion.objects.filter(
            department_id=department_id, version__in=by_version, record__isnull=False
        )
    }
    if set(by_version) - set(versions):
        raise InvalidRequest(N_("A wrap names a key version that does not exist."))
    for version, records in by_version.items():
        if any(b64encode(wrap.commitment) != versions[version].commitment for wrap in records):
            raise InvalidRequest(N_("A wrap carries another commitment than its version's."))
    added, recipients = 0, set()
    try:
        with transaction.atomic():
            for version, records in by_version.items():
                for wrap in records:
                    if wrap.recipient_fp not in allowed:
                        raise InvalidRequest(N_("Wraps go to current members only."))
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
        raise RoundsError(
            N_("One of these wraps already exists."), code=ErrorCode.CONFLICT
        ) from None
    return {"department": department_id, "added": added}


# Reads of the key state are tried again when a version or a statement lands during one.
KEY_STATE_TRIES = 3


def _key_state(department_id: int) -> tuple[int, bool, int, str]:
    return (
        Department.objects.filter(pk=department_id)
        .values_list("key_version", "rotation_required", "chain_seq", "chain_head")
        .get()
    )


def department_keys(actor: User, department_id: int) -> dict[str, Any]:
    """What a member's client needs: the current version and every version's record,
    the chain's head, the members' keys, its own wraps and who wrapped them.

    One consistent answer, without a lock: it is read in several statements, and a
    version published between them would list version N while naming N-1 as current,
    which a client rightly takes for a rollback (`key_version_rollback`). So the
    department's key state is read again at the end and, if it moved, the whole
    answer is read again. Raises Conflict if it keeps moving (three versions or
    statements within one read: not a ward's pace).
    """
    access.access_membership(actor, department_id)
    for _ in range(KEY_STATE_TRIES):
        before = _key_state(department_id)
        answer = _department_keys(actor, department_id)
        if _key_state(department_id) == before:
            return answer
    raise RoundsError(
        N_("The department's keys changed while they were read: ask again."),
        code=ErrorCode.CONFLICT,
    )


def _department_keys(actor: User, department_id: int) -> dict[str, Any]:
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
            key_version__department_id=department_id,
            key_version__record__isnull=False,
            recipient_fingerprint=mine.fingerprint,
        ).order_by("key_version__version")
        if mine
        else KeyWrap.objects.none()
    )
    wrapper_ids = {w.wrapper_id for w in wraps}
    wrappers = {
        key.fingerprint: {"user": key.user_id, "public": key.as_public()}
        for key in IdentityKey.objects.filter(user_id__in=wrapper_ids)
    }
    versions = RoomKeyVersion.objects.filter(
        department_id=department_id, record__isnull=False
    ).order_by("version")
    compliance = active_institution_key("compliance")
    attested = attested_members(
        department_id, {user: key.fingerprint for user, key in identities.items()}
    )
    return {
        "department": department_id,
        "key_version": department.key_version,
        "rotation_required": department.rotation_required,
        "chain": {"seq": department.chain_seq, "hash": department.chain_head},
        "versions": [
            {"version": v.version, "signed": v.record, "created_at": v.created_at.isoformat()}
            for v in versions
        ],
        "members": [
            {
                "user": m.user_id,
                "role": m.role,
                "identity": identities[m.user_id].as_public() if m.user_id in identities else None,
                "fingerprint": identities[m.user_id].fingerprint
                if m.user_id in identities
                else None,
                # The chain holds this member with the key above.
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
