"""Consults across departments: one thread of a department opened to a guest.

A clinician of another department asks a department's on-call role for a
consult about a patient (advice/actions.py makes the consult's thread and its
request). A member the request was put to, or a head, opens it: their client
signs the guest in (a `guest` statement in the department's chain) and makes
the thread key's first version, wrapped for the members, the guest and the
compliance key, in one call. The guest then reads and writes that thread and
nothing else of the department; whoever ends the consult signs the guest out
(`unguest`), and the next writer makes a new version without them. The
cryptography is docs/crypto.md §14; the server keeps and checks what clients
will verify again, as for the room key (rooms/keys.py).
"""

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.keys import active_identity, active_institution_key
from accounts.models import IdentityKey, User
from audit.actions import record
from chat.events import append_event
from chat.models import Consult, ConsultState, Thread, ThreadKeyVersion, ThreadKeyWrap
from core.crypto import (
    CONTEXT_KEY_VERSION,
    CONTEXT_WRAP,
    CryptoError,
    SignedKeyVersion,
    SignedStatement,
    WrapRecord,
    b64encode,
    verify_statement,
)
from core.errors import N_, ErrorCode, Forbidden, InvalidRequest, RoundsError
from core.events import EventKind
from rooms import access
from rooms.chain import crypto_refusal, do_append_statement, public_of
from rooms.keys import (
    MAX_WRAPS,
    allowed_recipients,
    check_next_version,
    check_wrap_recipients,
    required_recipients,
)
from rooms.models import Department, OnCallRole


def consult_data(consult: Consult) -> dict[str, Any]:
    thread = consult.thread
    return {
        "thread": consult.thread_id,
        "department": thread.department_id,
        "patient": thread.patient_id,
        "title": thread.title,
        "state": consult.state,
        "guest": {"id": consult.guest_id, "username": consult.guest.username},
        "opened_by": consult.opened_by_id,
        "opened_at": consult.opened_at.isoformat() if consult.opened_at else None,
        "ended_at": consult.ended_at.isoformat() if consult.ended_at else None,
        "key_version": consult.key_version,
    }


def open_guest_of(thread: Thread) -> int | None:
    """The guest to tell of an event of this thread: its consult's, while it is open."""
    if not thread.is_consult:
        return None
    return (
        Consult.objects.filter(thread_id=thread.pk, state=ConsultState.OPEN)
        .values_list("guest_id", flat=True)
        .first()
    )


def do_create_consult(requester: User, department_id: int, patient_id: int, title: str) -> Thread:
    """The consult's thread, awaiting the department; the caller checked who may ask."""
    thread = Thread.objects.create(
        department_id=department_id,
        patient_id=patient_id,
        title=title,
        created_by=requester,
        is_consult=True,
    )
    consult = Consult.objects.create(thread=thread, guest=requester)
    record(
        "consult.requested",
        actor=requester,
        department_id=department_id,
        object_type="thread",
        object_id=thread.pk,
        data={"patient": patient_id, "guest": requester.pk},
    )
    _announce(consult)
    return thread


def _announce(consult: Consult) -> None:
    """`consult.updated` to the department's members, and to the guest's sockets."""
    append_event(
        consult.thread.department_id,
        EventKind.CONSULT_UPDATED,
        {"consult": consult_data(consult)},
        guest_user_id=consult.guest_id,
    )


def _parsed_statement(actor: User, signed: Any, kind: str, consult: Consult) -> SignedStatement:
    """A `guest` or `unguest` statement for this consult, signed by the caller's own key."""
    try:
        parsed = SignedStatement.from_dict(signed)
    except CryptoError as error:
        raise crypto_refusal(error) from None
    st = parsed.statement
    if (st.kind, st.thread, st.department, st.subject_user) != (
        kind,
        consult.thread_id,
        consult.thread.department_id,
        consult.guest_id,
    ):
        raise InvalidRequest(
            N_("The statement must be a %(kind)s of this consult's guest in its thread."),
            params={"kind": kind},
        )
    if st.signer_user != actor.pk:
        raise InvalidRequest(N_("The statement names another signer."))
    signer = IdentityKey.objects.filter(user_id=actor.pk, fingerprint=st.signer_fingerprint).first()
    if signer is None:
        raise RoundsError(
            N_("The statement is signed with a key you never published."),
            code=ErrorCode.INVALID_KEY,
        )
    try:
        verify_statement(parsed, public_of(signer))
    except CryptoError as error:
        raise crypto_refusal(error) from None
    return parsed


def _locked(consult: Consult, state: str, otherwise: str) -> Consult:
    """The consult again under its department's lock, then its own (the order posts
    and key publications take), if it is in `state`; else a conflict saying `otherwise`."""
    Department.objects.select_for_update().get(pk=consult.thread.department_id)
    locked = (
        Consult.objects.select_for_update(of=("self",))
        .select_related("thread", "guest")
        .get(pk=consult.pk)
    )
    if locked.state != state:
        raise RoundsError(
            otherwise, code=ErrorCode.CONFLICT, data={"consult": consult_data(locked)}
        )
    return locked


def check_open_consult(
    actor: User, thread_id: int, statement: Any, key_version: Any, wraps: list[Any]
) -> dict[str, Any]:
    """Sign the guest in and publish the thread key's first version, in one transaction."""
    consult, role = access.access_consult(actor, thread_id)
    access.check_may_open_consult(actor, consult, role)
    parsed = _parsed_statement(actor, statement, "guest", consult)
    guest_key = active_identity(consult.guest_id)
    if guest_key is None or guest_key.fingerprint != parsed.statement.subject_fingerprint:
        raise InvalidRequest(N_("The statement's fingerprint is not the guest's published key."))
    record_, by_wrap = _checked_version(actor, consult, key_version, wraps)
    department_id = consult.thread.department_id
    with transaction.atomic():
        consult = _locked(
            consult, ConsultState.PENDING, N_("This consult is already open or has ended.")
        )
        signed = do_append_statement(actor, department_id, parsed)
        consult.state = ConsultState.OPEN
        consult.opened_by = actor
        consult.opened_at = timezone.now()
        consult.guest_fingerprint = parsed.statement.subject_fingerprint
        consult.save(update_fields=["state", "opened_by", "opened_at", "guest_fingerprint"])
        _do_publish(actor, consult, record_, by_wrap)
        record(
            "consult.opened",
            actor=actor,
            department_id=department_id,
            object_type="thread",
            object_id=thread_id,
            data={"guest": consult.guest_id, "seq": signed["seq"]},
        )
        _announce(consult)
    return consult_data(consult)


def check_end_consult(actor: User, thread_id: int, statement: Any) -> dict[str, Any]:
    """The guest leaves, or a member ends the consult: the guest is signed out."""
    consult, _ = access.access_consult(actor, thread_id)
    parsed = _parsed_statement(actor, statement, "unguest", consult)
    department_id = consult.thread.department_id
    with transaction.atomic():
        consult = _locked(consult, ConsultState.OPEN, N_("Only an open consult ends."))
        signed = do_append_statement(actor, department_id, parsed)
        consult.state = ConsultState.ENDED
        consult.ended_by = actor
        consult.ended_at = timezone.now()
        consult.ended_seq = signed["seq"]
        consult.rotation_required = True
        consult.save(
            update_fields=["state", "ended_by", "ended_at", "ended_seq", "rotation_required"]
        )
        record(
            "consult.ended",
            actor=actor,
            department_id=department_id,
            object_type="thread",
            object_id=thread_id,
            data={"guest": consult.guest_id, "seq": signed["seq"]},
        )
        _announce(consult)
    return consult_data(consult)


def check_publish_thread_key(
    actor: User, thread_id: int, key_version: Any, wraps: list[Any]
) -> dict[str, Any]:
    """A member publishes the thread key's next version (after the guest left, or a
    member was removed); a guest never introduces a key."""
    consult, role = access.access_consult(actor, thread_id)
    if role == access.GUEST:
        raise Forbidden(N_("A consult's guest never makes a key version."))
    record_, by_wrap = _checked_version(actor, consult, key_version, wraps)
    with transaction.atomic():
        Department.objects.select_for_update().get(pk=consult.thread.department_id)
        consult = (
            Consult.objects.select_for_update(of=("self",))
            .select_related("thread")
            .get(pk=consult.pk)
        )
        if consult.state == ConsultState.PENDING:
            raise RoundsError(N_("The consult is not open yet."), code=ErrorCode.CONFLICT)
        _do_publish(actor, consult, record_, by_wrap)
    return {"thread": thread_id, "key_version": record_.record.version, "wraps": len(by_wrap)}


def _checked_version(
    actor: User, consult: Consult, signed: Any, raw_wraps: list[Any]
) -> tuple[SignedKeyVersion, list[WrapRecord]]:
    """The record and wraps, parsed and signed by the caller's published key."""
    creator = active_identity(actor.pk)
    if creator is None:
        raise RoundsError(N_("Publish your identity key first."), code=ErrorCode.INVALID_KEY)
    if active_institution_key("compliance") is None:
        raise RoundsError(
            N_("The institution's compliance key is not set; an administrator must set it first."),
            code=ErrorCode.WRAPS_INCOMPLETE,
        )
    if not isinstance(raw_wraps, list) or not 0 < len(raw_wraps) <= MAX_WRAPS:
        raise InvalidRequest(N_("Send 1 to %(max)s wrap records."), params={"max": MAX_WRAPS})
    public = public_of(creator)
    try:
        parsed = SignedKeyVersion.from_dict(signed)
        wraps = [WrapRecord.from_dict(raw) for raw in raw_wraps]
        record_ = parsed.record
        if (record_.creator_user, record_.creator_fingerprint) != (actor.pk, creator.fingerprint):
            raise RoundsError(
                N_("A key version is recorded by its creator, with their published key."),
                code=ErrorCode.BAD_SIGNATURE,
            )
        public.verify(CONTEXT_KEY_VERSION, record_.signed_bytes(), parsed.signature)
        for wrap in wraps:
            if wrap.wrapper_fp != creator.fingerprint:
                raise RoundsError(
                    N_("Wraps must be signed by the caller's own identity."),
                    code=ErrorCode.BAD_SIGNATURE,
                )
            public.verify(CONTEXT_WRAP, wrap.signed_bytes(), wrap.signature)
    except CryptoError as error:
        raise crypto_refusal(error) from None
    scope = (consult.thread.department_id, consult.thread_id)
    if (record_.department, record_.thread) != scope or any(
        (w.department, w.thread, w.version, w.commitment)
        != (*scope, record_.version, record_.commitment)
        for w in wraps
    ):
        raise InvalidRequest(
            N_("The record and every wrap must be of this consult's thread key version.")
        )
    return parsed, wraps


def _do_publish(
    actor: User, consult: Consult, signed: SignedKeyVersion, wraps: list[WrapRecord]
) -> None:
    """Store a thread key version under the department's and the consult's locks."""
    version = signed.record
    department = Department.objects.get(pk=consult.thread.department_id)
    check_next_version(actor, version, consult.key_version, department)
    allowed = allowed_recipients(department.pk)
    required = required_recipients(department.pk, allowed)
    if consult.state == ConsultState.OPEN:
        allowed[consult.guest_fingerprint] = consult.guest_id
        required[consult.guest_fingerprint] = consult.guest_id
    check_wrap_recipients(
        wraps,
        allowed,
        required,
        N_("Wraps must go to current members, the guest and the compliance key, once."),
    )
    commitment = b64encode(version.commitment)
    stored = ThreadKeyVersion.objects.create(
        consult=consult,
        version=version.version,
        created_by=actor,
        record=signed.to_dict(),
        commitment=commitment,
        chain_seq=version.chain_seq,
    )
    ThreadKeyWrap.objects.bulk_create(
        ThreadKeyWrap(
            key_version=stored,
            recipient_fingerprint=wrap.recipient_fp,
            recipient_user_id=allowed[wrap.recipient_fp],
            wrapper=actor,
            record=wrap.to_dict(),
        )
        for wrap in wraps
    )
    consult.key_version = version.version
    consult.rotation_required = False
    consult.key_commitment = commitment
    consult.key_chain_seq = version.chain_seq
    consult.save(
        update_fields=["key_version", "rotation_required", "key_commitment", "key_chain_seq"]
    )
    record(
        "key.thread_version_published",
        actor=actor,
        department_id=department.pk,
        object_type="thread",
        object_id=consult.thread_id,
        data={"version": version.version, "wraps": len(wraps), "chain_seq": version.chain_seq},
    )


def consult_keys(actor: User, thread_id: int) -> dict[str, Any]:
    """What a member's or the guest's client needs for the thread key: its versions,
    the caller's wraps and who made them, the guest's key, and the chain's head."""
    consult, role = access.access_consult(actor, thread_id)
    if role == access.GUEST and access.guest_role(consult.state) is None:
        raise RoundsError(N_("The consult is not open."), code=ErrorCode.CONFLICT)
    department = Department.objects.get(pk=consult.thread.department_id)
    mine = active_identity(actor.pk)
    wraps = (
        list(
            ThreadKeyWrap.objects.filter(
                key_version__consult=consult, recipient_fingerprint=mine.fingerprint
            ).order_by("key_version__version")
        )
        if mine
        else []
    )
    wrappers = {
        key.fingerprint: {"user": key.user_id, "public": key.as_public()}
        for key in IdentityKey.objects.filter(user_id__in={w.wrapper_id for w in wraps})
    }
    guest_key = active_identity(consult.guest_id)
    return {
        "consult": consult_data(consult),
        "rotation_required": consult.rotation_required,
        "chain": {"seq": department.chain_seq, "hash": department.chain_head},
        "guest_identity": guest_key.as_public() if guest_key else None,
        "versions": [
            {"version": v.version, "signed": v.record}
            for v in consult.key_versions.order_by("version")
        ],
        "my_wraps": [w.record for w in wraps],
        "wrappers": wrappers,
    }


def my_consults(actor: User, department_id: int | None = None) -> dict[str, Any]:
    """The consults the caller is the guest of, newest first; with `department_id`, that
    department's (to its members: a newcomer receives their keys' history)."""
    access.check_authenticated(actor)
    if department_id is None:
        rows = Consult.objects.filter(guest_id=actor.pk)
    else:
        access.access_membership(actor, department_id)
        rows = Consult.objects.filter(thread__department_id=department_id)
    consults = rows.select_related("thread", "guest").order_by("-created_at")[:500]
    return {"consults": [consult_data(c) for c in consults]}


def check_share_thread_wraps(actor: User, thread_id: int, raw_wraps: list[Any]) -> dict[str, Any]:
    """Wrap earlier thread key versions for a member who lacks them (a newcomer reads
    the consult's history, as the room's: rooms/keys.py `check_share_wraps`)."""
    consult, role = access.access_consult(actor, thread_id)
    if role == access.GUEST:
        raise Forbidden(N_("A consult's guest never wraps its keys."))
    wrapper = active_identity(actor.pk)
    if wrapper is None:
        raise RoundsError(N_("Publish your identity key first."), code=ErrorCode.INVALID_KEY)
    if not isinstance(raw_wraps, list) or not 0 < len(raw_wraps) <= MAX_WRAPS:
        raise InvalidRequest(N_("Send 1 to %(max)s wrap records."), params={"max": MAX_WRAPS})
    public = public_of(wrapper)
    try:
        wraps = [WrapRecord.from_dict(raw) for raw in raw_wraps]
        for wrap in wraps:
            if wrap.wrapper_fp != wrapper.fingerprint:
                raise RoundsError(
                    N_("Wraps must be signed by the caller's own identity."),
                    code=ErrorCode.BAD_SIGNATURE,
                )
            public.verify(CONTEXT_WRAP, wrap.signed_bytes(), wrap.signature)
    except CryptoError as error:
        raise crypto_refusal(error) from None
    versions = {v.version: v for v in consult.key_versions.all()}
    allowed = allowed_recipients(consult.thread.department_id)
    for wrap in wraps:
        stored = versions.get(wrap.version)
        if (wrap.department, wrap.thread) != (consult.thread.department_id, thread_id) or (
            stored is None or b64encode(wrap.commitment) != stored.commitment
        ):
            raise InvalidRequest(N_("A wrap names no version of this consult's thread key."))
        if wrap.recipient_fp not in allowed:
            raise InvalidRequest(N_("Wraps go to current members only."))
    try:
        with transaction.atomic():
            ThreadKeyWrap.objects.bulk_create(
                ThreadKeyWrap(
                    key_version=versions[wrap.version],
                    recipient_fingerprint=wrap.recipient_fp,
                    recipient_user_id=allowed[wrap.recipient_fp],
                    wrapper=actor,
                    record=wrap.to_dict(),
                )
                for wrap in wraps
            )
            record(
                "key.thread_history_shared",
                actor=actor,
                department_id=consult.thread.department_id,
                object_type="thread",
                object_id=thread_id,
                data={
                    "wraps": len(wraps),
                    "recipients": sorted(str(allowed[w.recipient_fp]) for w in wraps),
                    "versions": sorted({w.version for w in wraps}),
                },
            )
    except IntegrityError:
        raise RoundsError(
            N_("One of these wraps already exists."), code=ErrorCode.CONFLICT
        ) from None
    return {"thread": thread_id, "added": len(wraps)}


def consult_targets(actor: User) -> dict[str, Any]:
    """The departments a clinician may ask for a consult (those they are not a member
    of), each with its active on-call roles: what the ask sheet offers."""
    access.check_clinician(actor)
    mine = access.member_department_ids(actor)
    roles: dict[int, list[dict[str, Any]]] = {}
    for role in OnCallRole.objects.active().exclude(department_id__in=mine).order_by("name"):
        roles.setdefault(role.department_id, []).append({"id": role.pk, "name": role.name})
    departments = Department.objects.exclude(pk__in=mine).order_by("name")
    return {
        "departments": [
            {"id": d.pk, "name": d.name, "roles": roles.get(d.pk, [])} for d in departments
        ]
    }


def read_consult(actor: User, thread_id: int) -> dict[str, Any]:
    consult, _ = access.access_consult(actor, thread_id)
    return consult_data(consult)
