"""A department's signed membership, as a client checks it before wrapping a room key.

The server controls the membership tables, so it could add a reader by
itself. A client therefore wraps room keys only for members whose admission
is in a chain of statements signed by heads, rooted in the institution's
admin key (docs/crypto.md, section 6), and accepts a room key only from a
wrapper that chain admitted. Pure functions over the server's answer to
`GET /api/departments/{id}/statements`; `RoundsClient` does the fetching.
"""

from datetime import UTC, datetime
from typing import Any

from chat.crypto import (
    CryptoError,
    IdentityKeyPair,
    MembershipChain,
    MembershipStatement,
    PublicIdentity,
    SignedStatement,
    replay_membership_chain,
    sign_statement,
)


class MembershipRefused(Exception):
    """The membership cannot be trusted, or a member is not in it; `code` says which.

    - `no_admin_key`: the server has no institution admin key, so no head
      can have been appointed.
    - `admin_key_mismatch`: the server's admin key is not the pinned one.
    - `membership_unverified`: a statement does not verify (`data` names it).
    - `unverified_member`: the chain verifies but does not admit this user
      with this key.
    """

    def __init__(self, code: str, message: str, data: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data or {}


def _checked(public: Any, fingerprint: str, whose: str) -> PublicIdentity:
    try:
        identity = PublicIdentity.from_dict(public)
    except CryptoError as error:
        raise MembershipRefused("membership_unverified", f"{whose}: {error}") from None
    if identity.fingerprint != fingerprint:
        raise MembershipRefused(
            "membership_unverified", f"{whose}: the public key does not have the fingerprint given"
        )
    return identity


def admin_key_of(listing: dict, pinned_fingerprint: str | None) -> PublicIdentity:
    """The institution's admin key from the listing, checked against the pinned fingerprint.

    Without a pin the server's key is taken as given (trust on first use):
    deployments pin it in client configuration (docs/threat-model.md).
    """
    admin = listing.get("admin")
    if not admin:
        raise MembershipRefused(
            "no_admin_key",
            "The institution's admin key is not set, so no head is appointed; "
            "no room key can be wrapped for anyone yet.",
        )
    key = _checked(admin.get("public"), admin.get("fingerprint"), "admin key")
    if pinned_fingerprint is not None and key.fingerprint != pinned_fingerprint:
        raise MembershipRefused(
            "admin_key_mismatch",
            "The server's institution admin key is not the one pinned in this client's "
            "configuration; the department's membership cannot be trusted.",
            {"pinned": pinned_fingerprint, "server": key.fingerprint},
        )
    return key


def verify_listing(listing: dict, pinned_admin_fingerprint: str | None) -> MembershipChain:
    """Replay the department's statements as the server listed them.

    Raises:
        MembershipRefused: see its codes.
    """
    admin_key = admin_key_of(listing, pinned_admin_fingerprint)
    keys = [
        _checked(public, fingerprint, f"key {fingerprint[:16]}")
        for fingerprint, public in (listing.get("keys") or {}).items()
    ]
    try:
        chain = [SignedStatement.from_dict(item["signed"]) for item in listing["statements"]]
        return replay_membership_chain(chain, admin_key=admin_key, keys=keys)
    except (KeyError, TypeError):
        raise MembershipRefused(
            "membership_unverified", "The server's list of statements does not parse."
        ) from None
    except CryptoError as error:
        raise MembershipRefused(
            "membership_unverified",
            f"The department's signed membership does not verify: {error}",
            {"statement_index": getattr(error, "statement_index", None), "reason": error.code},
        ) from None


def check_attested(chain: MembershipChain, user: int, fingerprint: str) -> None:
    """Refuse a member whose admission with this key is not in the verified chain."""
    member = chain.members.get(user)
    if member is None:
        raise MembershipRefused(
            "unverified_member",
            f"User {user}'s admission is not signed by a head of this department; "
            "no key is wrapped for them.",
            {"user": user},
        )
    if member.fingerprint != fingerprint:
        raise MembershipRefused(
            "unverified_member",
            f"User {user} was admitted with another key than the one the server shows now; "
            "a head must admit the new key first.",
            {"user": user, "admitted": member.fingerprint, "shown": fingerprint},
        )


def make_statement(
    signer: IdentityKeyPair,
    *,
    kind: str,
    department: int,
    subject: int,
    subject_fingerprint: str,
    role: str,
    signer_user: int | None,
) -> dict:
    """A statement signed now by `signer` (a head's identity, or the admin key), on the wire."""
    statement = MembershipStatement(
        kind=kind,  # type: ignore[arg-type]
        department=department,
        subject_user=subject,
        subject_fingerprint=subject_fingerprint,
        role=role,  # type: ignore[arg-type]
        issued_at=datetime.now(UTC).isoformat(),
        signer_user=signer_user,
        signer_fingerprint=signer.fingerprint,
    )
    return sign_statement(statement, signer).to_dict()
