"""The room key tests' hospital: identities, institution keys, and clients over HTTP.

`Keyed` drives the bare hospital through the API as the members' clients
do: it publishes identities, signs statements at the head of Plastic
surgery's chain and key version records made at that head. Its key pairs
are the hospital's own (`h.keys`), so tests/support/hospital.py's `signed_statement`
and `key_version_record` sign with them, and every statement the server
keeps is appended to `h.chains`: the head the next statement or version is
made at.
"""

from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from accounts.keys import check_publish_identity, check_set_institution_key
from audit.models import AuditEvent
from core.crypto import (
    ChainHead,
    IdentityKeyPair,
    MembershipChain,
    MembershipStatement,
    PublicIdentity,
    RoomKey,
    SignedKeyVersion,
    SignedStatement,
    WrapRecord,
    check_key_matches,
    replay_membership_chain,
    sign_statement,
    unwrap_room_key,
    verify_key_version,
    wrap_room_key,
)
from rooms.actions import check_admit_member
from rooms.models import Department, KeyWrap, RoomKeyVersion
from rooms.models import MembershipStatement as StoredStatement
from tests.support import Api, Hospital, key_version_record, make_user, signed_statement

MEMBERS = ("head_carol", "surgeon_bob", "nurse_alice")
COMPLIANCE = "compliance"
ADMIN = "institution_admin"


@dataclass
class Keyed:
    """The hospital and the room keys made so far (by version, Plastic surgery)."""

    h: Hospital
    room_keys: dict[int, RoomKey] = field(default_factory=dict)

    @property
    def pairs(self) -> dict[str, IdentityKeyPair]:
        """Identity key pairs by username, and the institution's under COMPLIANCE and ADMIN."""
        return self.h.keys

    @property
    def head(self) -> ChainHead:
        """The head of Plastic surgery's chain, as the server kept it."""
        return self.h.head(self.h.plastic)

    def user(self, name: str) -> Any:
        return getattr(self.h, name)

    def api(self, name: str) -> Api:
        return Api(self.user(name))

    def publish(self, name: str, user: Any = None, *, replace: bool = False) -> IdentityKeyPair:
        """Publish a new identity for a persona (or for `user`, under `name`)."""
        pair = IdentityKeyPair.generate()
        check_publish_identity(user or self.user(name), pair.public.to_dict(), replace=replace)
        self.pairs[name] = pair
        return pair

    def admit_in_tables(self, name: str) -> Any:
        """A new user, admitted by Carol in the membership tables, who publishes an
        identity: no head has signed their admission yet."""
        user = make_user(name)
        setattr(self.h, name, user)
        check_admit_member(self.h.head_carol, self.h.plastic.pk, user.pk)
        self.publish(name, user)
        return user

    def key(self, version: int, department: int | None = None) -> RoomKey:
        if department is not None:
            return RoomKey.generate(department=department, version=version)
        if version not in self.room_keys:
            self.room_keys[version] = RoomKey.generate(
                department=self.h.plastic.pk, version=version
            )
        return self.room_keys[version]

    def wrap(self, version: int, wrapper: str, recipient: str, **kwargs: Any) -> dict:
        return wrap_room_key(
            kwargs.get("room_key") or self.key(version),
            recipient=self.pairs[recipient].public,
            wrapper=self.pairs[wrapper],
        ).to_dict()

    def wraps(self, version: int, wrapper: str, recipients: tuple[str, ...]) -> list[dict]:
        return [self.wrap(version, wrapper, name) for name in recipients]

    def record(self, creator: str, version: int, **how: Any) -> dict:
        """The signed record of version `version` by `creator`, at the chain's head
        (or at `head`), committing to `room_key` (by default the version's key)."""
        room_key = how.get("room_key") or self.key(version)
        return key_version_record(self.h, room_key, creator, head=how.get("head")).to_dict()

    def publish_version(self, caller: str, version: int, recipients: tuple[str, ...], **kw: Any):
        """POST the version as `caller`'s client does: its record and the wraps."""
        wraps = kw.get("wraps") or self.wraps(version, caller, recipients)
        record = kw.get("record") or self.record(caller, version)
        body = {"version": version, "record": record, "wraps": wraps}
        return self.api(caller).post(keys_path(self.h), body)

    def statement(self, **changes: Any) -> MembershipStatement:
        """Carol's admission of Bob at the chain's head, with `changes`."""
        head = self.head
        fields: dict[str, Any] = {
            "department": self.h.plastic.pk,
            "seq": head.seq + 1,
            "prev": head.hash,
            "kind": "admit",
            "subject_user": self.h.surgeon_bob.pk,
            "subject_fingerprint": self.pairs["surgeon_bob"].fingerprint,
            "replaces": None,
            "role": "member",
            "issued_at": timezone.now().isoformat(),
            "signer_user": self.h.head_carol.pk,
            "signer_fingerprint": self.pairs["head_carol"].fingerprint,
        }
        fields.update(changes)
        return MembershipStatement(**fields)

    def signed_by(self, st: MembershipStatement, signer: str = "head_carol") -> dict:
        return sign_statement(st, self.pairs[signer]).to_dict()

    def post_statement(self, caller: str, signed: dict):
        """POST a signed statement as `caller`; a statement kept at the next position
        joins `h.chains`."""
        response = self.api(caller).post(statements_path(self.h), {"signed": signed})
        chain = self.h.chains.setdefault(self.h.plastic.pk, [])
        if response.status_code == 201 and response.json()["seq"] == len(chain) + 1:
            chain.append(SignedStatement.from_dict(signed))
        return response

    def attest(self, name: str, role: str = "member", signer: str | None = "head_carol", **how):
        """Sign a statement about `name` at the chain's head (by `signer`, or by the admin
        key when None, posted by admin_zoe) and post it, as the head's or the admin's
        client does. `how`: `kind`, `subject_key`, `replaces`, `head`."""
        signed = signed_statement(self.h, self.h.plastic, name, role, signer=signer, **how)
        return self.post_statement("admin_zoe" if signer is None else signer, signed.to_dict())

    def chain(self, as_user: str = "nurse_alice") -> MembershipChain:
        """The chain as a member's client replays it from the listed statements."""
        listed = self.api(as_user).get(statements_path(self.h)).json()
        statements = [SignedStatement.from_dict(s["signed"]) for s in listed["statements"]]
        keys = [PublicIdentity.from_dict(public) for public in listed["keys"].values()]
        return replay_membership_chain(statements, admin_key=self.pairs[ADMIN].public, keys=keys)


def keys_path(h: Hospital) -> str:
    return f"/api/departments/{h.plastic.pk}/keys"


def share_path(h: Hospital) -> str:
    return keys_path(h) + "/wraps"


def statements_path(h: Hospital) -> str:
    return f"/api/departments/{h.plastic.pk}/statements"


def set_compliance(k: Keyed) -> None:
    pair = IdentityKeyPair.generate()
    check_set_institution_key(k.h.admin_zoe, "compliance", pair.public.to_dict())
    k.pairs[COMPLIANCE] = k.h.compliance_key = pair


def set_admin_key(k: Keyed) -> None:
    pair = IdentityKeyPair.generate()
    check_set_institution_key(k.h.admin_zoe, "admin", pair.public.to_dict())
    k.pairs[ADMIN] = k.h.admin_key = pair


def state(h: Hospital) -> tuple:
    """What a refused publication or statement must leave as it was."""
    department = Department.objects.get(pk=h.plastic.pk)
    return (
        department.key_version,
        department.rotation_required,
        department.key_commitment,
        department.key_chain_seq,
        department.chain_seq,
        department.chain_head,
        department.event_seq,
        RoomKeyVersion.objects.count(),
        KeyWrap.objects.count(),
        StoredStatement.objects.count(),
        AuditEvent.objects.filter(action__startswith="key.").count(),
    )


def open_my_wraps(k: Keyed, name: str) -> dict[int, RoomKey]:
    """What a member's client does: fetch its wraps and the versions' records, check each
    record against the chain and each wrap against its wrapper and the record's commitment."""
    response = k.api(name).get(keys_path(k.h))
    assert response.status_code == 200, response.content
    body = response.json()
    chain = k.chain(name)
    records = {
        v["version"]: verify_key_version(SignedKeyVersion.from_dict(v["signed"]), chain)
        for v in body["versions"]
    }
    opened = {}
    for raw in body["my_wraps"]:
        wrap = WrapRecord.from_dict(raw)
        wrapper = PublicIdentity.from_dict(body["wrappers"][wrap.wrapper_fp]["public"])
        room_key = unwrap_room_key(wrap, recipient=k.pairs[name], wrapper=wrapper)
        check_key_matches(records[wrap.version], room_key)
        opened[wrap.version] = room_key
    return opened


EVERYONE = (*MEMBERS, COMPLIANCE)


def department(k: Keyed) -> Department:
    """Plastic surgery's row as it is now."""
    return Department.objects.get(pk=k.h.plastic.pk)
