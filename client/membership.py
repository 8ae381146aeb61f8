"""A department's membership chain as this client trusts it, and a head's signatures.

The server keeps the chain; this client replays it from the pinned admin
key, refuses one that does not extend the head it verified before (kept in
client/trust.py), and makes every trust decision from it: whom to wrap a
room key for, which key versions to use, which key a sender signs with
(docs/crypto.md §6 and §9, R0 to R2). Heads sign admissions, role
changes, removals and key replacements here, always for the key they
compared with the colleague (R7).
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from client.errors import RoundsClientError, crypto_refusal
from client.identity import checked_public
from client.pins import normalise_fingerprint
from core.crypto import (
    ChainHead,
    CryptoError,
    IdentityKeyPair,
    MembershipChain,
    MembershipStatement,
    PublicIdentity,
    SignedStatement,
    replay_membership_chain,
    sign_statement,
)

if TYPE_CHECKING:
    from client.sdk import RoundsClient

# The next statement a head signs: (kind, user, fingerprint, role, replaces).
Change = tuple[str, int, str, str, str | None]

# How often a head signs again when another head's statement took the position first.
SIGN_ATTEMPTS = 4


def _checked(public: Any, fingerprint: Any, whose: str) -> PublicIdentity:
    try:
        identity = PublicIdentity.from_dict(public)
    except CryptoError as error:
        raise RoundsClientError("membership_unverified", f"{whose}: {error}") from None
    if identity.fingerprint != fingerprint:
        raise RoundsClientError(
            "membership_unverified", f"{whose}: the public key does not have the fingerprint given"
        )
    return identity


def admin_key_of(listing: dict[str, Any], pinned: str) -> PublicIdentity:
    """The institution's admin key from the listing, which must be the pinned one.

    Raises:
        RoundsClientError: `no_admin_key`, `admin_key_mismatch`, `membership_unverified`.
    """
    admin = listing.get("admin")
    if not admin:
        raise RoundsClientError(
            "no_admin_key",
            "The institution's admin key is not set, so no head is appointed; "
            "no room key can be wrapped for anyone yet.",
        )
    key = _checked(admin.get("public"), admin.get("fingerprint"), "admin key")
    if key.fingerprint != pinned:
        raise RoundsClientError(
            "admin_key_mismatch",
            "The server's institution admin key is not the one pinned in this client's "
            "configuration; the department's membership cannot be trusted.",
            {"pinned": pinned, "server": key.fingerprint},
        )
    return key


def verify_listing(listing: dict[str, Any], pinned_admin: str) -> MembershipChain:
    """Replay the department's statements as the server listed them, from the pinned admin key.

    Raises:
        RoundsClientError: `membership_unverified` (with `statement_index` and
            `reason`), or a code of `admin_key_of`.
    """
    admin_key = admin_key_of(listing, pinned_admin)
    keys = [
        _checked(public, fingerprint, f"key {str(fingerprint)[:16]}")
        for fingerprint, public in (listing.get("keys") or {}).items()
    ]
    try:
        chain = [SignedStatement.from_dict(item["signed"]) for item in listing["statements"]]
        return replay_membership_chain(chain, admin_key=admin_key, keys=keys)
    except (KeyError, TypeError):
        raise RoundsClientError(
            "membership_unverified", "The server's list of statements does not parse."
        ) from None
    except CryptoError as error:
        raise RoundsClientError(
            "membership_unverified",
            f"The department's signed membership does not verify: {error}",
            {"statement_index": getattr(error, "statement_index", None), "reason": error.code},
        ) from None


def check_attested(chain: MembershipChain, user: int, fingerprint: str) -> None:
    """Refuse a member the chain does not hold with this key.

    Raises:
        RoundsClientError: `unverified_member`.
    """
    member = chain.members.get(user)
    if member is None:
        raise RoundsClientError(
            "unverified_member",
            f"User {user}'s admission is not signed by a head of this department; "
            "no key is wrapped for them.",
            {"user": user},
        )
    if member.fingerprint != fingerprint:
        raise RoundsClientError(
            "unverified_member",
            f"User {user} was admitted with another key than the one the server shows now; "
            "a head must sign the new key first.",
            {"user": user, "admitted": member.fingerprint, "shown": fingerprint},
        )


def make_statement(
    signer: IdentityKeyPair,
    *,
    head: ChainHead,
    kind: str,
    department: int,
    subject: int,
    subject_fingerprint: str,
    role: str,
    signer_user: int | None,
    replaces: str | None = None,
    thread: int | None = None,
) -> dict[str, Any]:
    """A statement signed now by `signer` (a head's identity, or the admin key; any
    member's for a consult's `guest` or `unguest` of `thread`), placed right after
    `head`, on the wire."""
    statement = MembershipStatement(
        department=department,
        seq=head.seq + 1,
        prev=head.hash,
        kind=kind,  # type: ignore[arg-type]  # MembershipStatement refuses another
        subject_user=subject,
        subject_fingerprint=subject_fingerprint,
        replaces=replaces,
        role=role,  # type: ignore[arg-type]  # as kind
        issued_at=datetime.now(UTC).isoformat(),
        signer_user=signer_user,
        signer_fingerprint=signer.fingerprint,
        thread=thread,
    )
    return sign_statement(statement, signer).to_dict()


def compared(fingerprint: str, shown: str, whose: str) -> None:
    """The key the server shows now must be the one compared with its holder (R7).

    Raises:
        RoundsClientError: `fingerprint_mismatch`; nothing is signed.
    """
    try:
        expected = normalise_fingerprint(fingerprint)
    except ValueError as error:
        raise RoundsClientError("fingerprint_mismatch", f"{whose}: {error}") from None
    if expected != shown:
        raise RoundsClientError(
            "fingerprint_mismatch",
            f"{whose}'s published key is not the fingerprint you compared; nothing was signed.",
            {"published": shown},
        )


class Membership:
    """The verified chains of this client's departments, and a head's statements."""

    def __init__(self, client: "RoundsClient") -> None:
        self.client = client
        self._chains: dict[int, MembershipChain] = {}

    def forget(self, department: int) -> None:
        """The membership changed (an event said so): verify it again when next needed."""
        self._chains.pop(department, None)

    async def chain(
        self, department: int, *, fresh: bool = False, covers: ChainHead | None = None
    ) -> MembershipChain:
        """The department's chain, verified from the pinned admin key (R1).

        Fetched when not held, when `fresh`, or when it does not reach
        `covers` (a head named by a sender or a key version), which must then
        be in it (R2).

        Raises:
            RoundsClientError: `membership_rollback`, `membership_fork`,
                `membership_withheld`, or a code of `verify_listing`.
        """
        held = self._chains.get(department)
        if held is None or fresh or (covers is not None and covers.seq > held.head.seq):
            held = await self._fetch(department)
        if covers is not None:
            try:
                held.check_covers(covers)
            except CryptoError as error:
                raise crypto_refusal(error, f"department {department}: ") from None
        return held

    async def _fetch(self, department: int) -> MembershipChain:
        client = self.client
        listing = await client.call("GET", f"/api/departments/{department}/statements")
        chain = verify_listing(listing, client.pins.admin)
        if chain.department not in (None, department):
            raise RoundsClientError(
                "membership_unverified", "The statements served are another department's."
            )
        known = client.trust.head(department)
        if known is not None:
            try:
                chain.check_extends(known)
            except CryptoError as error:
                raise crypto_refusal(error, f"department {department}: ") from None
        client.trust.keep_head(department, chain.head)
        self._chains[department] = chain
        return chain

    # --- a head's statements ----------------------------------------------------

    async def _post(self, department: int, signed: dict[str, Any]) -> dict[str, Any]:
        self.forget(department)
        result: dict[str, Any] = await self.client.call(
            "POST", f"/api/departments/{department}/statements", json={"signed": signed}
        )
        return result

    async def _sign_until_done(
        self, department: int, next_change: Callable[[MembershipChain], Change | None]
    ) -> list[str]:
        """Sign and post the statements `next_change(chain)` asks for, one at a time.

        `next_change` returns the next (kind, user, fingerprint, role,
        replaces) to sign at the chain's head, or None when the chain says
        what it must. Another head's statement taking the position first
        (409 `conflict`) means: look at the chain again.
        """
        posted: list[str] = []
        client = self.client
        identity = client.identity.keypair()
        for _ in range(SIGN_ATTEMPTS + 3):
            chain = await self.chain(department, fresh=True)
            change = next_change(chain)
            if change is None:
                return posted
            kind, user, fingerprint, role, replaces = change
            signed = make_statement(
                identity,
                head=chain.head,
                kind=kind,
                department=department,
                subject=user,
                subject_fingerprint=fingerprint,
                role=role,
                signer_user=client.me(),
                replaces=replaces,
            )
            try:
                await self._post(department, signed)
            except RoundsClientError as error:
                if error.code != "conflict":
                    raise
                continue
            posted.append(kind)
        raise RoundsClientError(
            "conflict", "The department's membership kept changing; nothing more was signed."
        )

    async def _listed_member(
        self, department: int, user_id: int
    ) -> tuple[dict[str, Any], PublicIdentity]:
        data = await self.client.call("GET", f"/api/departments/{department}/keys")
        member = next((m for m in data["members"] if m["user"] == user_id), None)
        if member is None:
            raise RoundsClientError("not_found", f"User {user_id} is not a member.")
        if member.get("identity") is None:
            raise RoundsClientError(
                "keys_not_published",
                f"User {user_id} has not published keys yet; sign their admission once they have.",
            )
        return member, checked_public(member["identity"], member["fingerprint"], f"user {user_id}")

    async def attest(self, department: int, user_id: int, *, fingerprint: str) -> list[str]:
        """As a head, sign a member's admission, new key or role, as the server lists them.

        `fingerprint` is the key's fingerprint as its holder read it to you
        (R7); if the server shows another, nothing is signed. A member the
        chain holds with another key gets a `replace`; one it does not hold,
        an `admit`; one whose role changed, a `role`. Returns the kinds
        posted (empty if the chain already says it).

        Raises:
            RoundsClientError: `fingerprint_mismatch`, `keys_not_published`,
                `not_found`, a membership code, or the server's refusal.
        """
        member, public = await self._listed_member(department, user_id)
        compared(fingerprint, public.fingerprint, f"User {user_id}")
        role = member["role"]

        def next_change(chain: MembershipChain) -> Change | None:
            held = chain.members.get(user_id)
            if held is None:
                return ("admit", user_id, public.fingerprint, role, None)
            if held.fingerprint != public.fingerprint:
                return ("replace", user_id, public.fingerprint, held.role, held.fingerprint)
            if held.role != role:
                return ("role", user_id, public.fingerprint, role, None)
            return None

        return await self._sign_until_done(department, next_change)

    async def admit(
        self, department: int, user_id: int, role: str = "member", *, fingerprint: str | None
    ) -> dict[str, Any]:
        """As a head, admit a user and sign their admission for the key compared.

        `fingerprint` None admits without signing (the colleague has no keys
        yet, or is not at hand): they read nothing until a head attests them.
        """
        admitted: dict[str, Any] = await self.client.call(
            "POST",
            f"/api/departments/{department}/members",
            json={"user_id": user_id, "role": role},
        )
        admitted["signed"] = (
            []
            if fingerprint is None
            else await self.attest(department, user_id, fingerprint=fingerprint)
        )
        return admitted

    async def set_role(self, department: int, user_id: int, role: str) -> dict[str, Any]:
        """As a head, change a member's role and sign the change (the key is the chain's)."""
        changed: dict[str, Any] = await self.client.call(
            "POST", f"/api/departments/{department}/members/{user_id}/role", json={"role": role}
        )

        def next_change(chain: MembershipChain) -> Change | None:
            held = chain.members.get(user_id)
            if held is None or held.role == role:
                return None
            return ("role", user_id, held.fingerprint, role, None)

        changed["signed"] = await self._sign_until_done(department, next_change)
        return changed

    async def remove_member(self, department: int, user_id: int) -> dict[str, Any]:
        """As a head, remove a member and sign the removal: no client wraps for them again."""
        removed: dict[str, Any] = await self.client.call(
            "DELETE", f"/api/departments/{department}/members/{user_id}"
        )

        def next_change(chain: MembershipChain) -> Change | None:
            held = chain.members.get(user_id)
            if held is None:
                return None
            return ("remove", user_id, held.fingerprint, held.role, None)

        removed["signed"] = await self._sign_until_done(department, next_change)
        return removed

    async def appoint_head(
        self, department: int, user_id: int, admin_key: IdentityKeyPair, *, fingerprint: str
    ) -> dict[str, Any]:
        """As an administrator holding the institution's admin key, appoint a head.

        Signs, at the chain's head, an admission as head of the user's
        published key (or a promotion, if the chain holds them as a member,
        or the replacement of a head's lost key); `fingerprint` is the key
        as the head read it to you (R7).

        Raises:
            RoundsClientError: `fingerprint_mismatch`, a membership code, or
                the server's refusal.
        """
        public = await self.client.identity.published(user_id)
        if public is None:
            raise RoundsClientError("keys_not_published", f"User {user_id} has no keys yet.")
        compared(fingerprint, public.fingerprint, f"User {user_id}")
        chain = await self.chain(department, fresh=True)
        held = chain.members.get(user_id)
        if held is not None and (held.role, held.fingerprint) == ("head", public.fingerprint):
            return {"kind": None, "subject": user_id, "seq": chain.head.seq}
        kind, replaces = "admit", None
        if held is not None and held.fingerprint != public.fingerprint:
            kind, replaces = "replace", held.fingerprint
        elif held is not None:
            kind = "role"
        signed = make_statement(
            admin_key,
            head=chain.head,
            kind=kind,
            department=department,
            subject=user_id,
            subject_fingerprint=public.fingerprint,
            role="head",
            signer_user=None,
            replaces=replaces,
        )
        return await self._post(department, signed)
