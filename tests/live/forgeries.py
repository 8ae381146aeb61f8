"""What a compromised server serves: correctly signed data, answers rewritten.

The scripted servers of the SDK's and the browser's malicious-server tests
(tests/client/test_malicious_server.py, tests/browser/test_malicious_server.py)
stand in front of a real daphne and rewrite its JSON answers with these
functions; each takes the real answer and returns the forged one, or builds
a forged record as a server holding some member's keys could.
"""

from collections.abc import Callable
from typing import Any

from core.crypto import (
    CONTEXT_WRAP,
    GENESIS,
    IdentityKeyPair,
    MembershipStatement,
    RoomKey,
    SignedStatement,
    WrapRecord,
    b64encode,
    sign_statement,
    wrap_room_key,
)

Rewrite = Callable[[Any], Any]


def without_last_statement(listing: dict) -> dict:
    """A statements listing cut before its last statement (a removal, in the tests)."""
    statements = listing["statements"][:-1]
    last = statements[-1]
    return {**listing, "statements": statements, "head": {"seq": last["seq"], "hash": "x"}}


def chain_under(
    admin: IdentityKeyPair, department: int, user: int, key: IdentityKeyPair
) -> Rewrite:
    """A listing whose whole chain is `admin` (the server's own key) appointing `user`."""
    statement = MembershipStatement(
        department=department,
        seq=1,
        prev=GENESIS,
        kind="admit",
        subject_user=user,
        subject_fingerprint=key.fingerprint,
        replaces=None,
        role="head",
        issued_at="2026-12-05T08:00:00Z",
        signer_user=None,
        signer_fingerprint=admin.fingerprint,
    )
    signed: SignedStatement = sign_statement(statement, admin)
    return lambda listing: {
        **listing,
        "statements": [{"id": 1, "seq": 1, "signed": signed.to_dict(), "created_at": "now"}],
        "head": {"seq": 1, "hash": signed.hash},
        "keys": {key.fingerprint: key.public.to_dict()},
        "admin": {"fingerprint": admin.fingerprint, "public": admin.public.to_dict()},
    }


def substitute_institution_key(kind: str, substitute: IdentityKeyPair) -> Rewrite:
    """An answer naming `substitute` as the institution's `kind` key (admin or compliance)."""
    served = {"fingerprint": substitute.fingerprint, "public": substitute.public.to_dict()}
    return lambda data: {**data, kind: served}


def substitute_member_key(user: int, identity: dict, fingerprint: str) -> Rewrite:
    """A department's /keys answer listing `user` with another key."""

    def substituted(keys: dict) -> dict:
        for member in keys["members"]:
            if member["user"] == user:
                member["identity"] = identity
                member["fingerprint"] = fingerprint
        return keys

    return substituted


def another_key_under_commitment(
    version: RoomKey, wrapper: IdentityKeyPair, recipient: IdentityKeyPair
) -> tuple[dict, dict]:
    """Two wraps of another key for `recipient`'s version `version.version`, by a member who
    can sign: one claiming the real version's commitment, one honest about its own."""
    other = RoomKey.generate(department=version.department, version=version.version)
    honest = wrap_room_key(other, recipient=recipient.public, wrapper=wrapper)
    forged = {**honest.to_dict(), "commitment": b64encode(version.commitment)}
    record = WrapRecord.from_dict(forged)
    forged["sig"] = b64encode(wrapper.sign(CONTEXT_WRAP, record.signed_bytes()))
    return forged, honest.to_dict()


def hand_over_wrap(version: int, wrap: dict) -> Rewrite:
    """A /keys answer whose wrap of `version` for the caller is `wrap`."""
    return lambda keys: {
        **keys,
        "my_wraps": [w for w in keys["my_wraps"] if w["version"] != version] + [wrap],
    }


def non_canonical(pair: IdentityKeyPair) -> dict:
    """The public identity of `pair`, its X25519 point spelled with the top bit set."""
    x25519 = bytearray(pair.public.x25519)
    x25519[31] |= 0x80
    return {**pair.public.to_dict(), "x25519": b64encode(bytes(x25519))}
