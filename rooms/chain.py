"""A department's signed membership chain, as the server keeps and checks it.

Heads (and, for a first head, an administrator with the institution's admin
key) sign statements; the server checks each against the chain it keeps,
as clients will (a statement clients could not verify is refused), and
appends it at the next position under the department's row lock, so the
chain is one line with no gaps (docs/crypto.md §6). Clients verify it all
again: the server's checks keep an honest server consistent, they are not
what the clients trust.
"""

from typing import Any

from django.db import transaction

from accounts.keys import active_identity, active_institution_key
from accounts.models import IdentityKey, InstitutionKey, User
from audit.actions import record
from chat.events import append_event
from chat.models import Consult
from core.crypto import (
    CryptoError,
    PublicIdentity,
    SignedStatement,
    replay_membership_chain,
    verify_statement,
)
from core.crypto.statements import GUEST_KINDS
from core.errors import N_, ErrorCode, Forbidden, InvalidRequest, NotFound, RoundsError
from core.events import EventKind
from rooms import access
from rooms.models import Department, Membership, MembershipStatement

CRYPTO_CODES = {"bad_signature": ErrorCode.BAD_SIGNATURE, "invalid_key": ErrorCode.INVALID_KEY}


def crypto_refusal(error: CryptoError) -> RoundsError:
    """A record that fails a signature or key check, or does not parse at all."""
    code = CRYPTO_CODES.get(error.code, ErrorCode.INVALID_REQUEST)
    return RoundsError(N_("Refused: %(error)s"), code=code, params={"error": error})


def public_of(key: Any) -> PublicIdentity:
    return PublicIdentity.from_dict(key.as_public())


def chain_statements(department_id: int) -> list[dict[str, Any]]:
    """The department's stored chain, in order: the signed statements as sent."""
    return list(
        MembershipStatement.objects.filter(department_id=department_id, seq__isnull=False)
        .order_by("seq")
        .values_list("signed", flat=True)
    )


def chain_members(department_id: int) -> dict[int, tuple[str, str]]:
    """User id → (role, fingerprint) at the head of the stored chain.

    The statements were verified when stored, so this folds them without
    checking signatures again.
    """
    members: dict[int, tuple[str, str]] = {}
    for signed in chain_statements(department_id):
        st = signed["statement"]
        user = st["subject_user"]
        if st["kind"] in GUEST_KINDS:
            continue  # a consult's guest is no member (chat/consults.py)
        if st["kind"] == "remove":
            members.pop(user, None)
        elif st["kind"] == "role":
            members[user] = (st["role"], members[user][1])
        else:  # admit, replace
            members[user] = (st["role"], st["subject_fingerprint"])
    return members


def check_post_statement(actor: User, department_id: int, signed: Any) -> dict[str, Any]:
    """Keep a membership statement signed by the caller, a head of the department,
    or by the institution's admin key (posted by an administrator) to appoint a
    head or replace a head's lost key.

    It must describe the membership as the server has it (the subject, their
    role, their published key) and extend the stored chain at its head.
    """
    try:
        parsed = SignedStatement.from_dict(signed)
    except CryptoError as error:
        raise crypto_refusal(error) from None
    statement = parsed.statement
    if statement.kind in GUEST_KINDS:
        raise InvalidRequest(N_("A consult's guest is signed in and out on the consult."))
    signer_key: InstitutionKey | IdentityKey | None
    if statement.signer_user is None:
        access.check_admin(actor)
        if not Department.objects.filter(pk=department_id).exists():
            raise NotFound(N_("Department not found."))
        signer_key = active_institution_key("admin")
        if signer_key is None:
            raise RoundsError(
                N_("The institution's admin key is not set."), code=ErrorCode.INVALID_KEY
            )
        if not (statement.role == "head" and statement.kind in ("admit", "role", "replace")):
            raise Forbidden(N_("The admin key only appoints heads and replaces a head's key."))
    else:
        access.access_membership(actor, department_id, head=True)
        if statement.signer_user != actor.pk:
            raise InvalidRequest(N_("The statement names another signer."))
        # The key the chain holds for the caller, which may be one they have since replaced.
        signer_key = IdentityKey.objects.filter(
            user_id=actor.pk, fingerprint=statement.signer_fingerprint
        ).first()
        if signer_key is None:
            raise RoundsError(
                N_("The statement is signed with a key you never published."),
                code=ErrorCode.INVALID_KEY,
            )
    try:
        verify_statement(parsed, public_of(signer_key))
    except CryptoError as error:
        raise crypto_refusal(error) from None
    if statement.department != department_id:
        raise InvalidRequest(N_("The statement names another department."))
    # A retry of a kept statement gets its answer even if the tables have changed since:
    # comparing it with them again would tell the client it was not kept.
    kept = _kept(department_id, parsed)
    if kept is not None:
        return _statement_data(kept, statement)
    _check_statement_fits(statement, department_id)
    return do_append_statement(actor, department_id, parsed)


def do_append_statement(actor: User, department_id: int, parsed: SignedStatement) -> dict[str, Any]:
    """Append a verified statement at the head of the chain, under the department's lock.

    A repeat of the statement at its position answers as the first time;
    another statement at that position is a conflict (the caller signs again
    at the new head). A removal or key replacement requires a new room key
    version before the next message.
    """
    statement = parsed.statement
    digest = parsed.hash
    with transaction.atomic():
        department = Department.objects.select_for_update().get(pk=department_id)
        if statement.seq <= department.chain_seq:
            kept = _kept(department_id, parsed)
            if kept is not None:
                return _statement_data(kept, statement)
        if statement.seq != department.chain_seq + 1 or statement.prev != department.chain_head:
            raise RoundsError(
                N_("The chain has moved on: sign the statement again at its head."),
                code=ErrorCode.CONFLICT,
                data={"head": {"seq": department.chain_seq, "hash": department.chain_head}},
            )
        _check_extends_chain(department_id, parsed)
        stored = MembershipStatement.objects.create(
            department_id=department_id,
            kind=statement.kind,
            subject_id=statement.subject_user,
            signer=actor if statement.signer_user is not None else None,
            signed=parsed.to_dict(),
            seq=statement.seq,
            hash=digest,
        )
        changes: dict[str, Any] = {"chain_seq": statement.seq, "chain_head": digest}
        if statement.kind in ("remove", "replace") and department.key_version > 0:
            changes["rotation_required"] = True
        if statement.kind in ("remove", "replace"):
            # The consults' thread keys too (docs/crypto.md §14.1): the member held them.
            Consult.objects.filter(thread__department_id=department_id, key_version__gt=0).update(
                rotation_required=True
            )
        Department.objects.filter(pk=department_id).update(**changes)
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
                "seq": statement.seq,
                "signed_by": _signed_by(statement),
                **({"thread": statement.thread} if statement.thread else {}),
            },
        )
        # Members' screens (the member list, a member awaiting their signature) learn
        # of it live instead of polling the chain; `by` is null for the institution key.
        by = {"id": actor.pk, "username": actor.username} if statement.signer_user else None
        append_event(
            department_id,
            EventKind.MEMBERSHIP_SIGNED,
            {
                "kind": statement.kind,
                "subject": statement.subject_user,
                "seq": stored.seq,
                "hash": stored.hash,
                "by": by,
            },
        )
    return _statement_data(stored, statement)


def _signed_by(statement: Any) -> str:
    if statement.signer_user is None:
        return "admin_key"
    if statement.kind not in GUEST_KINDS:
        return "head"
    return "guest" if statement.signer_user == statement.subject_user else "member"


def _kept(department_id: int, parsed: SignedStatement) -> MembershipStatement | None:
    """This very statement (same position, same hash), if the chain already has it."""
    return MembershipStatement.objects.filter(
        department_id=department_id, seq=parsed.statement.seq, hash=parsed.hash
    ).first()


def _statement_data(stored: MembershipStatement, statement: Any) -> dict[str, Any]:
    return {
        "id": stored.pk,
        "kind": statement.kind,
        "subject": statement.subject_user,
        "seq": stored.seq,
        "hash": stored.hash,
    }


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
        if not IdentityKey.objects.filter(
            user_id=statement.subject_user, fingerprint=statement.subject_fingerprint
        ).exists():
            raise InvalidRequest(
                N_("The statement's fingerprint is not a key the subject published.")
            )
        if not Membership.objects.filter(
            user_id=statement.subject_user, department_id=department_id
        ).exists():
            raise Forbidden(N_("The statement removes someone who was never a member."))
        if membership is not None:
            raise Forbidden(N_("The statement removes someone who is still a member."))
        return
    if not current_key:
        raise InvalidRequest(N_("The statement's fingerprint is not the subject's published key."))
    if membership is None or membership.role != statement.role:
        raise Forbidden(N_("The statement does not match the department's membership."))
    if (
        statement.kind == "replace"
        and not IdentityKey.objects.filter(
            user_id=statement.subject_user, fingerprint=statement.replaces
        ).exists()
    ):
        raise InvalidRequest(N_("The replaced key is not one the subject published."))


def _check_extends_chain(department_id: int, signed: SignedStatement) -> None:
    """Refuse a statement that clients could not verify after the department's stored ones.

    A statement that breaks the chain (a signer who is not a head at that
    point, a removal of someone never admitted, a time going back) would
    make every client refuse the whole department, so the server replays
    the chain with it, as clients will, before keeping it.
    """
    admin_key = active_institution_key("admin")
    if admin_key is None:
        raise RoundsError(
            N_(
                "The institution's admin key is not set; "
                "it must appoint the department's head first."
            ),
            code=ErrorCode.INVALID_KEY,
        )
    chain = [*(SignedStatement.from_dict(s) for s in chain_statements(department_id)), signed]
    named = {
        fp
        for s in chain
        for fp in (s.statement.subject_fingerprint, s.statement.signer_fingerprint)
    }
    keys = [public_of(key) for key in IdentityKey.objects.filter(fingerprint__in=named)]
    try:
        replay_membership_chain(chain, admin_key=public_of(admin_key), keys=keys)
    except CryptoError as error:
        raise Forbidden(
            N_("The statement does not follow the department's signed membership: %(error)s"),
            params={"error": error},
        ) from None


def list_statements(actor: User, department_id: int) -> dict[str, Any]:
    """The department's chain in order, its head, every key it names, and the admin key.

    `keys` maps each fingerprint a statement names (subjects, replaced keys
    and signers) to its public key; a client checks each against its
    fingerprint, so the server cannot substitute one.
    """
    access.access_statements(actor, department_id)
    return chain_payload(department_id)


def chain_payload(department_id: int) -> dict[str, Any]:
    """`list_statements`' answer, for a caller already authorised (a member, an
    administrator, or a compliance case covering the department)."""
    stored = list(
        MembershipStatement.objects.filter(department_id=department_id, seq__isnull=False).order_by(
            "seq"
        )
    )
    named: set[str] = set()
    for entry in stored:
        statement = entry.signed["statement"]
        named.update((statement["subject_fingerprint"], statement["signer_fingerprint"]))
        if statement.get("replaces"):
            named.add(statement["replaces"])
    keys = {
        key.fingerprint: key.as_public()
        for key in IdentityKey.objects.filter(fingerprint__in=named)
    }
    admin = active_institution_key("admin")
    head = stored[-1] if stored else None
    return {
        "department": department_id,
        "statements": [
            {"id": s.pk, "seq": s.seq, "signed": s.signed, "created_at": s.created_at.isoformat()}
            for s in stored
        ],
        "head": {"seq": head.seq, "hash": head.hash} if head else {"seq": 0, "hash": "0" * 64},
        "keys": keys,
        "admin": {"fingerprint": admin.fingerprint, "public": admin.as_public()} if admin else None,
    }
