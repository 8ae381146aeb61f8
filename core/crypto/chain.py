"""A department's membership chain, replayed: the root of every trust decision.

`replay_membership_chain` checks a department's statements in order, from
the pinned admin key, and returns a `MembershipChain`: who is a member now
and at every earlier point, with which key, and the hash of every point.
Clients decide everything from it, never from the server's say-so:

- whom to wrap a new room key for (the members at the head);
- whether a key version may be used (its creator was a member at the head it
  names, and it is not older than a removal: keyversions.py);
- which key a sender signs with (the one the chain admitted for them at the
  head their envelope names: envelope.py);
- whether the server withholds statements: a head this device verified
  earlier, or one a sender or key version names, must be in the chain
  served (`check_extends`, `check_covers`).

What a chain cannot show alone, and how the heads close the gap, is in
docs/crypto.md, section 6.
"""

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from .encoding import MAX_SAFE_INTEGER, check_hash
from .errors import (
    BadSignature,
    ChainFork,
    ChainRollback,
    ChainWithheld,
    CryptoError,
    InvalidEnvelope,
    InvalidKey,
)
from .identity import PublicIdentity
from .statements import (
    GENESIS,
    GUEST_KINDS,
    MembershipStatement,
    Role,
    SignedStatement,
    statement_hash,
    verify_statement,
)

# Statements after which no one may write under an older room key version.
EXCLUSIONS = ("remove", "replace")


@dataclass(frozen=True)
class ChainHead:
    """A point of a department's chain: `seq` statements, the last with hash `hash`.

    The empty chain is (0, GENESIS).
    """

    seq: int
    hash: str

    def __post_init__(self) -> None:
        if (
            isinstance(self.seq, bool)
            or not isinstance(self.seq, int)
            or not 0 <= self.seq <= MAX_SAFE_INTEGER
        ):
            raise InvalidEnvelope("chain_seq must be an integer from 0 to 2**53 - 1")
        check_hash(self.hash, "chain_head")
        if (self.seq == 0) != (self.hash == GENESIS):
            raise InvalidEnvelope("the empty chain's head is the genesis value, and only it")

    def to_dict(self) -> dict[str, int | str]:
        return {"seq": self.seq, "hash": self.hash}


EMPTY_HEAD = ChainHead(0, GENESIS)


@dataclass(frozen=True)
class AttestedMember:
    """A member as the chain has them: their role and the key they were admitted with."""

    role: Role
    fingerprint: str


@dataclass(frozen=True)
class _Span:
    """`member` from statement `start` (included) until statement `end` (excluded, None: now)."""

    start: int
    end: int | None
    member: AttestedMember


@dataclass(frozen=True)
class MembershipChain:
    """A verified chain, replayed.

    `members`: who is in the department at the head, by user id.
    `ever_admitted`: every fingerprint the chain ever admitted, so a client
    accepts a room key wrapped by someone who has since left and no one else.
    `keys`: the public keys the chain names, by fingerprint.
    `guests`: each consult thread's guests at the head, by thread then user
    (docs/crypto.md §14).
    """

    department: int | None
    hashes: tuple[str, ...]
    members: dict[int, AttestedMember]
    ever_admitted: frozenset[str]
    keys: dict[str, PublicIdentity] = field(repr=False)
    _spans: dict[int, tuple[_Span, ...]] = field(repr=False)
    _exclusions: tuple[int, ...] = field(repr=False)
    guests: dict[int, dict[int, AttestedMember]] = field(default_factory=dict)
    _guest_spans: dict[tuple[int, int], tuple[_Span, ...]] = field(default_factory=dict, repr=False)
    _thread_exclusions: dict[int, tuple[int, ...]] = field(default_factory=dict, repr=False)

    @property
    def head(self) -> ChainHead:
        return ChainHead(len(self.hashes), self.hashes[-1] if self.hashes else GENESIS)

    def roles(self) -> dict[int, str]:
        return {user: member.role for user, member in self.members.items()}

    def hash_at(self, seq: int) -> str | None:
        """The hash of the chain's point `seq`, or None beyond its head."""
        if seq == 0:
            return GENESIS
        return self.hashes[seq - 1] if 0 < seq <= len(self.hashes) else None

    def member_at(self, user: int, seq: int) -> AttestedMember | None:
        """`user` as a member once the first `seq` statements applied, or None."""
        return _span_at(self._spans.get(user, ()), seq)

    def guest_at(self, thread: int, user: int, seq: int) -> AttestedMember | None:
        """`user` as a guest of consult thread `thread` once `seq` statements applied, or None."""
        return _span_at(self._guest_spans.get((thread, user), ()), seq)

    def guests_of(self, thread: int) -> dict[int, AttestedMember]:
        """The guests of consult thread `thread` at the head, by user."""
        return dict(self.guests.get(thread, {}))

    def last_exclusion_at(self, seq: int, thread: int | None = None) -> int:
        """The latest removal or key replacement at or before `seq` (0: none).

        With a `thread`, that thread's `unguest` statements count too: they
        end a reader of its thread key, not of the room key.
        """
        latest = _latest_at(self._exclusions, seq)
        if thread is not None:
            latest = max(latest, _latest_at(self._thread_exclusions.get(thread, ()), seq))
        return latest

    def key_of(self, fingerprint: str) -> PublicIdentity:
        key = self.keys.get(fingerprint)
        if key is None:
            raise InvalidKey(f"no key for fingerprint {fingerprint[:16]}")
        return key

    def check_extends(self, known: ChainHead) -> None:
        """Refuse a chain that does not extend a head this device verified before.

        Raises:
            ChainRollback: The chain ends before `known`: statements were withheld
                or taken back.
            ChainFork: The chain has another statement at `known`'s position.
        """
        at = self.hash_at(known.seq)
        if at is None:
            raise ChainRollback(
                f"the chain served ends at statement {self.head.seq}; this device verified "
                f"it up to statement {known.seq}"
            )
        if at != known.hash:
            raise ChainFork(f"statement {known.seq} is not the one this device verified")

    def check_covers(self, named: ChainHead) -> None:
        """Refuse a chain that lacks a head someone else verified (a sender, a key version).

        Raises:
            ChainWithheld: `named` is beyond the chain served to this device.
            ChainFork: The chain has another statement at `named`'s position.
        """
        at = self.hash_at(named.seq)
        if at is None:
            raise ChainWithheld(
                f"statement {named.seq} was verified by another member, but the chain served "
                f"here ends at statement {self.head.seq}"
            )
        if at != named.hash:
            raise ChainFork(f"statement {named.seq} differs from the one another member verified")


def _span_at(spans: Iterable[_Span], seq: int) -> AttestedMember | None:
    for span in spans:
        if span.start <= seq and (span.end is None or seq < span.end):
            return span.member
    return None


def _latest_at(positions: tuple[int, ...] | list[int], seq: int) -> int:
    index = bisect.bisect_right(positions, seq)
    return positions[index - 1] if index else 0


def _at(index: int, statement: MembershipStatement, error: CryptoError) -> CryptoError:
    error.args = (f"statement {index} ({statement.describe()}): {error.args[0]}",)
    error.statement_index = index
    return error


class _Replay:
    """The membership as statements apply, one at a time (rules in `replay_membership_chain`)."""

    def __init__(self, admin_key: PublicIdentity, keys: dict[str, PublicIdentity]) -> None:
        self.admin_key = admin_key
        self.keys = keys
        self.members: dict[int, AttestedMember] = {}
        self.ever_admitted: set[str] = set()
        self.spans: dict[int, list[_Span]] = {}
        self.exclusions: list[int] = []
        self.guests: dict[tuple[int, int], AttestedMember] = {}
        self.guest_spans: dict[tuple[int, int], list[_Span]] = {}
        self.thread_exclusions: dict[int, list[int]] = {}
        self.hashes: list[str] = []
        self.department: int | None = None
        self.last_time: datetime | None = None

    def apply(self, signed: SignedStatement) -> None:
        st = signed.statement
        self._check_position(st)
        self._check_signer(signed)
        self._change(st)
        self.hashes.append(statement_hash(signed))

    def _check_position(self, st: MembershipStatement) -> None:
        if self.department is None:
            self.department = st.department
        elif st.department != self.department:
            raise InvalidEnvelope(f"department {st.department}, not {self.department}")
        if st.seq != len(self.hashes) + 1:
            raise InvalidEnvelope(f"seq {st.seq} where {len(self.hashes) + 1} comes next")
        if st.prev != (self.hashes[-1] if self.hashes else GENESIS):
            raise InvalidEnvelope("prev is not the hash of the statement before it")
        moment = st.issued
        if self.last_time is not None and moment < self.last_time:
            raise InvalidEnvelope("issued_at goes back in time")
        self.last_time = moment

    def _check_signer(self, signed: SignedStatement) -> None:
        st = signed.statement
        if st.kind in GUEST_KINDS:
            self._check_guest_signer(signed)
            return
        if st.signer_user is None:
            if st.signer_fingerprint != self.admin_key.fingerprint:
                raise BadSignature("signed by neither a user nor the admin key")
            has_head = any(m.role == "head" for m in self.members.values())
            subject = self.members.get(st.subject_user)
            appoints = not has_head and st.role == "head" and st.kind in ("admit", "role")
            rekeys_head = st.kind == "replace" and subject is not None and subject.role == "head"
            if not (appoints or rekeys_head):
                raise BadSignature(
                    "the admin key only appoints a head when there is none, "
                    "or replaces a head's lost key"
                )
            verify_statement(signed, self.admin_key)
            return
        held = self.members.get(st.signer_user)
        if held is None or held.role != "head":
            raise BadSignature(f"signer {st.signer_user} is not a head at this point")
        if st.signer_fingerprint != held.fingerprint:
            raise InvalidKey(f"signer {st.signer_user}'s key is not the one admitted")
        signer_key = self.keys.get(held.fingerprint)
        if signer_key is None:
            raise InvalidKey(f"no key for signer {st.signer_user}")
        verify_statement(signed, signer_key)

    def _check_guest_signer(self, signed: SignedStatement) -> None:
        """Any member signs a guest in or out; a guest may sign themselves out."""
        st = signed.statement
        if st.signer_user is None:
            raise BadSignature("the admin key does not sign guests in or out")
        held = self.members.get(st.signer_user)
        if held is None and st.kind == "unguest" and st.signer_user == st.subject_user:
            held = self.guests.get((st.thread, st.subject_user))  # type: ignore[arg-type]
        if held is None:
            raise BadSignature(f"signer {st.signer_user} is not a member at this point")
        if st.signer_fingerprint != held.fingerprint:
            raise InvalidKey(f"signer {st.signer_user}'s key is not the one admitted")
        signer_key = self.keys.get(held.fingerprint)
        if signer_key is None:
            raise InvalidKey(f"no key for signer {st.signer_user}")
        verify_statement(signed, signer_key)

    def _change_guest(self, st: MembershipStatement) -> None:
        assert st.thread is not None  # MembershipStatement checks it for these kinds
        slot = (st.thread, st.subject_user)
        current = self.guests.get(slot)
        if st.kind == "guest":
            if st.subject_user in self.members:
                raise InvalidEnvelope("subject is a member, not a guest")
            if current is not None:
                raise InvalidEnvelope("subject is already a guest of this thread")
            self._check_unshared(st.subject_fingerprint)
            self.guests[slot] = AttestedMember("guest", st.subject_fingerprint)
            self.ever_admitted.add(st.subject_fingerprint)
            self.guest_spans.setdefault(slot, []).append(_Span(st.seq, None, self.guests[slot]))
            return
        if current is None:
            raise InvalidEnvelope("subject is not a guest of this thread")
        if current.fingerprint != st.subject_fingerprint:
            raise InvalidEnvelope("subject fingerprint is not the one admitted")
        del self.guests[slot]
        spans = self.guest_spans[slot]
        spans[-1] = _Span(spans[-1].start, st.seq, spans[-1].member)
        self.thread_exclusions.setdefault(st.thread, []).append(st.seq)

    def _change(self, st: MembershipStatement) -> None:
        if st.kind in GUEST_KINDS:
            self._change_guest(st)
            return
        current = self.members.get(st.subject_user)
        seq = st.seq
        if st.kind == "admit":
            if current is not None:
                raise InvalidEnvelope("subject is already a member")
            self._check_unshared(st.subject_fingerprint)
            self._set(st.subject_user, seq, AttestedMember(st.role, st.subject_fingerprint))
            return
        if current is None:
            raise InvalidEnvelope("subject is not a member")
        expected = st.replaces if st.kind == "replace" else st.subject_fingerprint
        if current.fingerprint != expected:
            raise InvalidEnvelope("subject fingerprint is not the one admitted")
        if st.kind == "role":
            if current.role == st.role:
                raise InvalidEnvelope("subject already has this role")
            self._set(st.subject_user, seq, AttestedMember(st.role, current.fingerprint))
            return
        if current.role != st.role:
            raise InvalidEnvelope(f"{st.kind} names another role than the one held")
        self.exclusions.append(seq)
        if st.kind == "remove":
            self._set(st.subject_user, seq, None)
        else:
            self._check_unshared(st.subject_fingerprint)
            self._set(st.subject_user, seq, AttestedMember(current.role, st.subject_fingerprint))

    def _check_unshared(self, fingerprint: str) -> None:
        # One key, one member: wraps and signatures are told apart by fingerprint.
        if any(m.fingerprint == fingerprint for m in self.members.values()):
            raise InvalidEnvelope("another member holds this key")

    def _set(self, user: int, seq: int, member: AttestedMember | None) -> None:
        spans = self.spans.setdefault(user, [])
        if spans and spans[-1].end is None:
            spans[-1] = _Span(spans[-1].start, seq, spans[-1].member)
        if member is None:
            del self.members[user]
            return
        self.members[user] = member
        self.ever_admitted.add(member.fingerprint)
        spans.append(_Span(seq, None, member))


def replay_membership_chain(
    statements: list[SignedStatement],
    *,
    admin_key: PublicIdentity,
    keys: Iterable[PublicIdentity],
) -> MembershipChain:
    """Replay one department's statements in order; return the verified chain.

    `keys` are the public identities the chain refers to (signers and
    members, including keys since replaced), in any order: each is found by
    its own fingerprint, so a key listed under a wrong name is never used.

    Rules, checked for each statement in turn:

    - All statements are for one department; statement N has `seq` N and
      names the hash of statement N-1 as `prev` (GENESIS for the first);
      `issued_at` never goes back.
    - A statement signed by the admin key (`signer_user` None) is accepted
      only to make someone head while the department has no head (the first
      head, or a new one after the last left), or to replace a head's key
      (a head who lost theirs). Every other statement must be signed by a
      user who is a head at that point, with the key they were admitted with.
    - `admit` needs a non-member, `role`, `remove` and `replace` a member
      whose fingerprint is the one admitted (`replaces`, for a replacement);
      `role` must change the role, `remove` and `replace` must name the
      role held; no two members hold one key.
    - `guest` and `unguest` (consults, docs/crypto.md §14) are signed by any
      member, or for `unguest` by the guest themselves, never by the admin
      key; `guest` needs a non-member not yet a guest of that thread,
      `unguest` a guest of that thread with that key.

    Finally every remaining member's and guest's admitted key must be among
    `keys`, since that is the key the caller will wrap to.

    Raises:
        BadSignature: A signature fails, or a signer is not allowed to sign
            it; the message and the `statement_index` attribute name it.
        InvalidEnvelope: A statement does not fit the chain at that point.
        InvalidKey: A signer's or member's key is missing.
    """
    by_fingerprint = {key.fingerprint: key for key in keys}
    replay = _Replay(admin_key, by_fingerprint)
    for index, signed in enumerate(statements):
        try:
            replay.apply(signed)
        except CryptoError as error:
            raise _at(index, signed.statement, error) from None
    for user, member in replay.members.items():
        if member.fingerprint not in by_fingerprint:
            raise InvalidKey(f"member {user}: the key they were admitted with is missing")
    for (thread, user), guest in replay.guests.items():
        if guest.fingerprint not in by_fingerprint:
            raise InvalidKey(f"guest {user} of thread {thread}: their key is missing")
    guests: dict[int, dict[int, AttestedMember]] = {}
    for (thread, user), guest in replay.guests.items():
        guests.setdefault(thread, {})[user] = guest
    chain_keys = {fp: by_fingerprint[fp] for fp in replay.ever_admitted if fp in by_fingerprint}
    chain_keys[admin_key.fingerprint] = admin_key
    return MembershipChain(
        department=replay.department,
        hashes=tuple(replay.hashes),
        members=dict(replay.members),
        ever_admitted=frozenset(replay.ever_admitted),
        keys=chain_keys,
        _spans={user: tuple(spans) for user, spans in replay.spans.items()},
        _exclusions=tuple(replay.exclusions),
        guests=guests,
        _guest_spans={slot: tuple(spans) for slot, spans in replay.guest_spans.items()},
        _thread_exclusions={
            thread: tuple(seqs) for thread, seqs in replay.thread_exclusions.items()
        },
    )


def verify_membership_chain(
    statements: list[SignedStatement],
    *,
    admin_key: PublicIdentity,
    keys: Iterable[PublicIdentity],
) -> dict[int, str]:
    """Replay one department's statements in order; return its members and roles."""
    return replay_membership_chain(statements, admin_key=admin_key, keys=keys).roles()
