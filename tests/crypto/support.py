"""Shared by the crypto tests: personas' ids, a chain writer, envelope helpers, Hypothesis
strategies, and `raises_exactly`, the exact-class `pytest.raises`.

The personas (STYLE.md rule 12) have fixed user ids: head_carol 3,
nurse_alice 7, surgeon_bob 8, compliance_dan 9. compliance_dan is the
institution's compliance reader: no chain admits him unless a test says so,
so he also stands for "someone the chain never admitted".

`ChainWriter` only spells statements out (the next `seq`, the previous hash,
the key each user holds, one minute per statement); it checks nothing, so a
test can write an invalid statement as easily as a valid one and leave the
verdict to `replay_membership_chain`.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import strategies as st

from core.crypto import (
    CONTEXT_ENVELOPE,
    CONTEXT_STATEMENT,
    GENESIS,
    BadSignature,
    ChainHead,
    CryptoError,
    IdentityKeyPair,
    MembershipChain,
    MembershipStatement,
    PublicIdentity,
    RoomKey,
    SignedStatement,
    b64decode,
    b64encode,
    canonical_json,
    decrypt_message,
    encrypt_message,
    replay_membership_chain,
    sign_statement,
    verify_envelope,
)

PLASTIC_SURGERY = 12
CARDIOLOGY = 13

CAROL, ALICE, BOB, DAN = 3, 7, 8, 9
# The `signer_user` of a statement signed by the institution's admin key.
ADMIN = None

# Department 12's key versions in conftest.py: version -> (the statement its
# record names as head, its creator).
VERSIONS_MADE_AT = {1: (2, CAROL), 2: (4, BOB), 3: (5, CAROL), 4: (6, BOB)}

START = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)


@contextmanager
def raises_exactly(
    error: type[CryptoError], match: str | None = None
) -> Iterator[pytest.ExceptionInfo]:
    """Like `pytest.raises`, but the error must be exactly `error`, not a subclass of it.

    Every refusal in core.crypto has one code (docs/crypto.md, section 11),
    and `TruncatedStream` is a `DecryptionFailed`: `pytest.raises` alone
    would let one pass for the other.
    """
    with pytest.raises(error, match=match) as caught:
        yield caught
    assert type(caught.value) is error, f"{type(caught.value).__name__}, not {error.__name__}"


# --- Hypothesis strategies ----------------------------------------------------------------

ids = st.integers(1, 2**53 - 1)
hashes = st.binary(min_size=32, max_size=32).map(bytes.hex)


def spell_time(moment: datetime, timespec: str, zulu: bool) -> str:
    text = moment.isoformat(timespec=timespec)
    return text.replace("+00:00", "Z") if zulu else text


# Offsets in whole minutes up to 23:59 either way: RFC 3339's, and what isoformat writes.
offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
)
# RFC 3339 times as Python's isoformat() and the browser's toISOString() write them.
times = st.builds(
    spell_time, moments, st.sampled_from(["seconds", "milliseconds", "microseconds"]), st.booleans()
)


# Any chain head: the empty chain's, or a position from 1 with a non-genesis hash.
chain_heads = st.one_of(
    st.just(ChainHead(0, GENESIS)),
    st.builds(ChainHead, ids, hashes.filter(lambda h: h != GENESIS)),
)


# --- Chains -------------------------------------------------------------------------------


def minute(n: int) -> str:
    """RFC 3339 time `n` minutes after START, as the browser writes it."""
    return (START + timedelta(minutes=n)).isoformat().replace("+00:00", "Z")


class ChainWriter:
    """One department's statements, in order, and the key each user holds after them."""

    def __init__(
        self,
        admin: IdentityKeyPair,
        people: Mapping[int, IdentityKeyPair],
        *,
        department: int = PLASTIC_SURGERY,
    ) -> None:
        self.admin = admin
        self.department = department
        self.statements: list[SignedStatement] = []
        self.holds: dict[int, IdentityKeyPair] = dict(people)
        self._private = {key.fingerprint: key for key in (admin, *people.values())}
        self._holds_after = [dict(self.holds)]

    # --- writing ---------------------------------------------------------------

    def statement(
        self,
        kind: str,
        subject: int,
        role: str,
        *,
        by: int | None,
        key: IdentityKeyPair | None = None,
        **fields: object,
    ) -> MembershipStatement:
        """The next statement, unsigned.

        `key` is the key an `admit` names (default: the one the subject
        holds) or the new key of a `replace` (which then `replaces` the one
        held). `by` is the signing head, or ADMIN. Any field can be given
        outright in `fields` (`seq`, `prev`, `issued_at`, …) to write a wrong one.
        """
        n = len(self.statements)
        if key is not None:
            self._private[key.fingerprint] = key
        held = self.holds[subject]
        if kind == "replace":
            assert key is not None, "a replacement names the new key"
            subject_fingerprint, replaces = key.fingerprint, held.fingerprint
        else:
            subject_fingerprint, replaces = (key or held).fingerprint, None
        signer = self.admin if by is ADMIN else self.holds[by]
        values: dict[str, object] = {
            "department": self.department,
            "seq": n + 1,
            "prev": self.statements[-1].hash if self.statements else GENESIS,
            "kind": kind,
            "subject_user": subject,
            "subject_fingerprint": subject_fingerprint,
            "replaces": replaces,
            "role": role,
            "issued_at": minute(n),
            "signer_user": by,
            "signer_fingerprint": signer.fingerprint,
        }
        values.update(fields)
        return MembershipStatement(**values)  # type: ignore[arg-type]

    def sign(
        self, statement: MembershipStatement, signer: IdentityKeyPair | None = None
    ) -> SignedStatement:
        """Signed by the key it names, or by `signer` whatever it names (a forgery)."""
        if signer is None:
            return sign_statement(statement, self._private[statement.signer_fingerprint])
        return SignedStatement(statement, signer.sign(CONTEXT_STATEMENT, statement.signed_bytes()))

    def draft(
        self,
        kind: str,
        subject: int,
        role: str,
        *,
        by: int | None,
        key: IdentityKeyPair | None = None,
        signer: IdentityKeyPair | None = None,
        **fields: object,
    ) -> SignedStatement:
        """The next statement, signed, but not added: for statements a chain must refuse."""
        return self.sign(self.statement(kind, subject, role, by=by, key=key, **fields), signer)

    def add(
        self,
        kind: str,
        subject: int,
        role: str,
        *,
        by: int | None,
        key: IdentityKeyPair | None = None,
        **fields: object,
    ) -> SignedStatement:
        """Sign the next statement and add it; an admission or a replacement moves the key held."""
        signed = self.draft(kind, subject, role, by=by, key=key, **fields)
        self.statements.append(signed)
        if key is not None and kind in ("admit", "replace"):
            self.holds[subject] = key
        self._holds_after.append(dict(self.holds))
        return signed

    def branch(self, seq: int | None = None) -> "ChainWriter":
        """A copy of this chain up to statement `seq` (default: all), to write on separately."""
        seq = len(self.statements) if seq is None else seq
        other = ChainWriter(self.admin, self._holds_after[seq], department=self.department)
        other.statements = self.statements[:seq]
        other._private = dict(self._private)
        other._holds_after = self._holds_after[: seq + 1]
        return other

    # --- reading ---------------------------------------------------------------

    @property
    def head(self) -> ChainHead:
        return self.head_at(len(self.statements))

    def head_at(self, seq: int) -> ChainHead:
        return ChainHead(seq, self.statements[seq - 1].hash if seq else GENESIS)

    def key_at(self, user: int, seq: int) -> IdentityKeyPair:
        """The key `user` held once the first `seq` statements applied."""
        return self._holds_after[seq][user]

    def public_keys(self) -> list[PublicIdentity]:
        """Every public key the chain may name (all but the admin's), as a client fetches them."""
        return [k.public for fp, k in self._private.items() if fp != self.admin.fingerprint]

    def replay(
        self,
        upto: int | None = None,
        *,
        keys: list[PublicIdentity] | None = None,
        admin: PublicIdentity | None = None,
    ) -> MembershipChain:
        """The verified chain of the first `upto` statements (default: all)."""
        return replay_membership_chain(
            self.statements[:upto],
            admin_key=admin or self.admin.public,
            keys=self.public_keys() if keys is None else keys,
        )


# --- Envelopes ----------------------------------------------------------------------------

THREAD = 101
MSG_ID = "msg-0001-abcdef"
# Every digit of it can change to another and still be a time (the tamper test needs that).
SENT_AT = "2025-01-11T09:15:00.000+01:00"
PLAINTEXT = b"Bed 4: obs stable."


def write_envelope(
    department: ChainWriter,
    room_keys: Mapping[int, RoomKey],
    sender: int,
    seq: int,
    version: int,
    *,
    signer: IdentityKeyPair | None = None,
    room_key: RoomKey | None = None,
    plaintext: bytes = PLAINTEXT,
    **kwargs: object,
) -> dict:
    """`sender` writes under `version` at statement `seq` of `department`'s chain, with the key
    the chain held for them there unless `signer` is given."""
    args: dict = {"thread": THREAD, "client_msg_id": MSG_ID, "sent_at": SENT_AT, **kwargs}
    return encrypt_message(
        plaintext,
        room_key=room_key or room_keys[version],
        head=department.head_at(seq),
        sender=sender,
        signer=signer or department.key_at(sender, seq),
        **args,
    )


def with_header(envelope: dict, **header: object) -> dict:
    """The envelope with some header fields changed, and nothing else."""
    return {**envelope, "header": {**envelope["header"], **header}}


def resign(envelope: dict, signer: IdentityKeyPair) -> dict:
    """The envelope as it is, signed again by `signer`: a sender standing by an edit."""
    header = envelope["header"]
    ad = canonical_json({k: header[k] for k in header if k not in ("nonce", "sig")})
    signed = ad + b64decode(header["nonce"]) + b64decode(envelope["ciphertext"])
    return with_header(envelope, sig=b64encode(signer.sign(CONTEXT_ENVELOPE, signed)))


def expect_envelope_refused(
    envelope: object,
    room_key: RoomKey,
    sender_key: PublicIdentity,
    error: type[CryptoError] = BadSignature,
) -> None:
    """Both the server's check and the primitive decryption refuse, with exactly `error`."""
    with raises_exactly(error):
        verify_envelope(envelope, sender_key=sender_key)
    with raises_exactly(error):
        decrypt_message(envelope, room_key=room_key, sender_key=sender_key)
