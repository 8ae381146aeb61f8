"""A department's room key versions as this client accepts, makes and shares them.

Every version is taken from its signed record, checked against the
department's verified chain: made by a member, at a head in the chain, and
its key matching the record's commitment (docs/crypto.md §7 and §9, R3).
Writing happens under the version the server names as current only if it
is not older than what this device verified and not older than the chain's
latest removal or key replacement (R4); a new version is wrapped for the
members the chain holds, with the keys it admitted, and for the pinned
compliance key. Newcomers get the earlier versions (R8).
"""

from typing import TYPE_CHECKING, Any

from client.errors import RoundsClientError, crypto_refusal
from client.identity import checked_public
from core.crypto import (
    ChainHead,
    CryptoError,
    InvalidEnvelope,
    KeyVersionRecord,
    MembershipChain,
    PublicIdentity,
    RoomKey,
    SignedKeyVersion,
    StaleKeyVersion,
    WrapRecord,
    check_current,
    check_key_matches,
    make_key_version,
    unwrap_room_key,
    verify_key_version,
    wrap_room_key,
)

if TYPE_CHECKING:
    from client.sdk import RoundsClient

# How often `current()` tries to publish a new version when others keep
# changing the department (a rotation or an admission) under it.
ROTATION_ATTEMPTS = 3


class RoomKeys:
    """Key versions of the client's departments: verified, unwrapped, made, shared."""

    def __init__(self, client: "RoundsClient") -> None:
        self.client = client
        # Department → members the server lists whose admission the chain does not
        # hold (yet): no room key was wrapped for them.
        self.unattested: dict[int, set[int]] = {}

    async def _verified_record(
        self, department: int, signed: Any, chain: MembershipChain
    ) -> tuple[KeyVersionRecord, MembershipChain]:
        """A version's record, verified against the chain (fetched further if it names a
        head beyond the one held)."""
        membership = self.client.membership
        try:
            parsed = SignedKeyVersion.from_dict(signed)
            if parsed.record.head.seq > chain.head.seq:
                chain = await membership.chain(department, covers=parsed.record.head)
            return verify_key_version(parsed, chain), chain
        except CryptoError as error:
            raise crypto_refusal(error, "key version: ") from None

    async def load(self, department: int) -> tuple[dict[str, Any], dict[int, Exception]]:
        """Fetch the department's versions and this identity's wraps; keep what verifies.

        Returns the server's answer and, by version, why a version or wrap was refused.
        """
        client = self.client
        keys = client.keys
        identity = client.identity.keypair()
        data = await client.call("GET", f"/api/departments/{department}/keys")
        chain = await client.membership.chain(department)
        refused: dict[int, Exception] = {}
        for entry in data.get("versions") or []:
            version = entry.get("version") if isinstance(entry, dict) else None
            if not isinstance(version, int) or keys.record(department, version) is not None:
                continue
            try:
                record, chain = await self._verified_record(department, entry.get("signed"), chain)
                if (record.department, record.version) != (department, version):
                    raise RoundsClientError(
                        "invalid_envelope", "A key version record is listed under another number."
                    )
            except RoundsClientError as error:
                refused[version] = error
                continue
            keys.records[(department, version)] = record
            client.trust.keep_version(department, version)
        for raw in data.get("my_wraps") or []:
            version = raw.get("version") if isinstance(raw, dict) else None
            if not isinstance(version, int) or keys.room_key(department, version) is not None:
                continue
            try:
                keys.add_room_key(self._unwrap(department, raw, chain, identity))
            except (CryptoError, RoundsClientError) as error:
                refused.setdefault(version, error)
        return data, refused

    def _unwrap(self, department: int, raw: Any, chain: MembershipChain, identity: Any) -> RoomKey:
        """One wrap for this identity: from a key the chain admitted, carrying the verified
        record's commitment, and holding the key committed to (R3)."""
        record = WrapRecord.from_dict(raw)
        if record.department != department:
            raise InvalidEnvelope("the wrap names another department")
        version = self.client.keys.record(department, record.version)
        if version is None:
            raise RoundsClientError(
                "no_room_key", f"Key version {record.version} has no verified record."
            )
        if record.wrapper_fp == identity.fingerprint:
            wrapper: PublicIdentity = identity.public
        elif record.wrapper_fp in chain.ever_admitted:
            wrapper = chain.key_of(record.wrapper_fp)
        else:
            raise RoundsClientError(
                "unverified_member",
                "The wrap was made by a key the department's chain never admitted; it is not used.",
            )
        if record.commitment != version.commitment:
            raise RoundsClientError(
                "key_commitment_mismatch",
                f"The wrap of key version {record.version} commits to another key than its record.",
            )
        key = unwrap_room_key(record, recipient=identity, wrapper=wrapper)
        check_key_matches(version, key)
        return key

    @staticmethod
    def _no_key(department: int, version: int, refused: dict[int, Exception]) -> Exception:
        reason = refused.get(version)
        if isinstance(reason, RoundsClientError):
            return reason
        if isinstance(reason, CryptoError):
            return crypto_refusal(
                reason, f"room key version {version} of department {department}: "
            )
        return RoundsClientError(
            "no_room_key",
            f"No wrap of room key version {version} of department {department} for this "
            "identity; a member must share it (share_history).",
            {"department": department, "key_version": version},
        )

    async def version(self, department: int, version: int) -> tuple[RoomKey, KeyVersionRecord]:
        """The key and verified record of one version, fetched when not held (to read)."""
        keys = self.client.keys
        key, record = keys.room_key(department, version), keys.record(department, version)
        if key is None or record is None:
            _, refused = await self.load(department)
            key, record = keys.room_key(department, version), keys.record(department, version)
            if key is None or record is None:
                raise self._no_key(department, version, refused)
        return key, record

    async def current(self, department: int) -> tuple[RoomKey, ChainHead]:
        """The key to write with and the chain head to name, making the next version when due.

        Raises:
            RoundsClientError: `not_attested`, `key_version_rollback`,
                `key_version_stale`, `compliance_key_mismatch`, `no_room_key`,
                `unverified_member`, a membership code, or the server's refusal.
        """
        client = self.client
        error: RoundsClientError | None = None
        for _ in range(ROTATION_ATTEMPTS):
            chain = await client.membership.chain(department, fresh=True)
            self._check_me(chain)
            data, refused = await self.load(department)
            chain = await client.membership.chain(department)
            version = data["key_version"]
            highest = client.trust.highest_version(department)
            if not isinstance(version, int) or version < highest:
                raise RoundsClientError(
                    "key_version_rollback",
                    f"The server names key version {version or 'none'} as current, but this "
                    f"device verified version {highest}; nothing is written under it.",
                    {"server": version, "verified": highest},
                )
            if version and not data["rotation_required"]:
                key, record = (
                    client.keys.room_key(department, version),
                    client.keys.record(department, version),
                )
                if key is None or record is None:
                    raise self._no_key(department, version, refused)
                try:
                    check_current(record, chain)
                except StaleKeyVersion as stale:
                    raise crypto_refusal(stale) from None
                client.keys.current[department] = version
                return key, chain.head
            try:
                return await self._publish_next(department, data, chain)
            except RoundsClientError as refusal:
                # Another version came first, or the membership changed: look again.
                if refusal.code not in ("conflict", "wraps_incomplete"):
                    raise
                self._insist(department, refusal)
                error = refusal
        assert error is not None
        raise error

    def _check_me(self, chain: MembershipChain) -> None:
        me, identity = self.client.me(), self.client.identity.keypair()
        held = chain.members.get(me)
        if held is None or held.fingerprint != identity.fingerprint:
            raise RoundsClientError(
                "not_attested",
                "The department's signed membership does not hold you with this device's key: "
                "a head must sign your admission (or your new key) first.",
            )

    def _insist(self, department: int, refusal: RoundsClientError) -> None:
        """A server that requires a wrap for someone the chain does not hold gets none."""
        missing = {str(u) for u in refusal.data.get("missing", [])}
        if unverified := missing & {str(u) for u in self.unattested.get(department, ())}:
            raise RoundsClientError(
                "unverified_member",
                "The server requires a wrap for members whose admission is not signed "
                f"by a head ({', '.join(sorted(unverified))}); this client refuses.",
                {"users": sorted(unverified)},
            ) from None

    def _compliance_key(self, data: dict[str, Any]) -> PublicIdentity:
        pinned = self.client.pins.compliance
        compliance = data.get("compliance") or {}
        fingerprint = compliance.get("fingerprint")
        if fingerprint != pinned:
            raise RoundsClientError(
                "compliance_key_mismatch",
                "The server's compliance key is not the one pinned in this client's "
                "configuration; no room key was wrapped.",
                {"pinned": pinned, "server": fingerprint},
            )
        return checked_public(compliance.get("public"), pinned, "compliance key")

    async def _publish_next(
        self, department: int, data: dict[str, Any], chain: MembershipChain
    ) -> tuple[RoomKey, ChainHead]:
        """Make the next version at the chain's head and wrap it for the members the chain
        holds (and the server still lists), this identity and the compliance key (R4)."""
        client = self.client
        identity = client.identity.keypair()
        compliance = self._compliance_key(data)
        me = client.me()
        recipients: dict[str, PublicIdentity] = {identity.fingerprint: identity.public}
        unattested: set[int] = set()
        for member in data["members"]:
            user = member["user"]
            held = chain.members.get(user)
            if user == me:
                continue
            if held is None or held.fingerprint != member.get("fingerprint"):
                if member.get("fingerprint") is not None:
                    unattested.add(user)  # wrapped for once a head signs their key
                continue
            recipients[held.fingerprint] = chain.key_of(held.fingerprint)
        self.unattested[department] = unattested
        recipients[compliance.fingerprint] = compliance
        key = RoomKey.generate(department=department, version=data["key_version"] + 1)
        signed = make_key_version(key, head=chain.head, creator_user=me, creator=identity)
        wraps = [
            wrap_room_key(key, recipient=recipient, wrapper=identity).to_dict()
            for recipient in recipients.values()
        ]
        await client.call(
            "POST",
            f"/api/departments/{department}/keys",
            json={"version": key.version, "record": signed.to_dict(), "wraps": wraps},
        )
        client.keys.add_room_key(key)
        client.keys.records[(department, key.version)] = signed.record
        client.keys.current[department] = key.version
        client.trust.keep_version(department, key.version)
        return key, chain.head

    async def share_history(self, department: int, user_id: int) -> dict[str, Any]:
        """Wrap every verified version this client holds for a member the chain holds (R8).

        One version per request, so a version the member already has (the
        server answers `conflict`) is skipped without losing the others.
        Returns {"user", "fingerprint", "shared": [versions], "skipped": [versions]}.

        Raises:
            RoundsClientError: `unverified_member` (the chain does not hold them)
                and nothing is wrapped, a membership code, or the server's refusal.
        """
        client = self.client
        identity = client.identity.keypair()
        await self.load(department)
        chain = await client.membership.chain(department, fresh=True)
        held = chain.members.get(user_id)
        if held is None:
            raise RoundsClientError(
                "unverified_member",
                f"User {user_id}'s admission is not in the department's chain; nothing is wrapped.",
                {"user": user_id},
            )
        recipient = chain.key_of(held.fingerprint)
        shared: list[int] = []
        skipped: list[int] = []
        for version in client.keys.versions(department):
            room_key = client.keys.room_key(department, version)
            assert room_key is not None
            wrap = wrap_room_key(room_key, recipient=recipient, wrapper=identity)
            try:
                await client.call(
                    "POST",
                    f"/api/departments/{department}/keys/wraps",
                    json={"wraps": [wrap.to_dict()]},
                )
            except RoundsClientError as error:
                if error.code != "conflict":
                    raise
                skipped.append(version)
                continue
            shared.append(version)
        return {
            "user": user_id,
            "fingerprint": recipient.fingerprint,
            "shared": shared,
            "skipped": skipped,
        }
