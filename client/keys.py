"""What a client holds to read and write end-to-end encrypted messages.

`KeyRing` is pure state, no I/O: `RoundsClient` (client/sdk.py) fills it from
the server's key directory and consults it to encrypt, decrypt and refuse
replays. It holds:

- the user's `IdentityKeyPair` (generated on the first device, recovered
  from the server's sealed backup on the next ones);
- room keys by (department, version), and which version is current for
  posting in each department;
- the public identities of other users, as fetched and checked;
- for every message opened, (sender, client_msg_id) → hash of its envelope,
  so a second, different envelope under the same id is refused as a replay
  while the same envelope delivered again (history, a resume) is accepted;
- the compliance key fingerprint pinned in configuration: a client never
  wraps a room key for a compliance key the server substituted;
- the institution's admin key fingerprint pinned in configuration: the root
  of every department's signed membership (client/membership.py).
"""

import hashlib
import json
from typing import Any

from chat.crypto import IdentityKeyPair, PublicIdentity, RoomKey

_HEX = frozenset("0123456789abcdef")


def envelope_hash(envelope: Any) -> str:
    """SHA-256 of the envelope as sorted, compact JSON (the server's `envelope_hash`)."""
    canonical = json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def normalise_fingerprint(fingerprint: str) -> str:
    """64 lowercase hex digits, from that or the grouped form people compare.

    Raises:
        ValueError: Not a fingerprint.
    """
    if not isinstance(fingerprint, str):
        raise ValueError("a fingerprint is a string of 64 hex digits")
    compact = "".join(fingerprint.split()).lower()
    if len(compact) != 64 or not set(compact) <= _HEX:
        raise ValueError("a fingerprint is 64 hex digits")
    return compact


class KeyRing:
    """One user's keys on one device (in memory; nothing here is written to disk)."""

    def __init__(
        self,
        *,
        pinned_compliance_fingerprint: str | None = None,
        pinned_admin_fingerprint: str | None = None,
    ) -> None:
        self.identity: IdentityKeyPair | None = None
        self.room_keys: dict[tuple[int, int], RoomKey] = {}
        # Department → the version this device last saw as current for posting.
        self.current: dict[int, int] = {}
        # User id → public identity, each checked against its fingerprint.
        self.identities: dict[int, PublicIdentity] = {}
        self.seen: dict[tuple[int, str], str] = {}
        self.pinned_compliance_fingerprint = (
            normalise_fingerprint(pinned_compliance_fingerprint)
            if pinned_compliance_fingerprint
            else None
        )
        self.pinned_admin_fingerprint = (
            normalise_fingerprint(pinned_admin_fingerprint) if pinned_admin_fingerprint else None
        )
        # Set once the backup of `identity` is stored on the server.
        self.backup_stored = False

    def __repr__(self) -> str:
        identity = self.identity.fingerprint[:16] if self.identity else None
        return f"KeyRing(identity={identity}, room_keys={sorted(self.room_keys)})"

    # --- Room keys ------------------------------------------------------------

    def add_room_key(self, key: RoomKey) -> bool:
        """Keep a room key version; False if a different key for it is already held.

        The first key held for a version wins: a second, different key for the
        same version (a wrap of another key under the same number) is never
        allowed to replace it.
        """
        slot = (key.department, key.version)
        held = self.room_keys.get(slot)
        if held is None:
            self.room_keys[slot] = key
            return True
        return held == key

    def room_key(self, department: int, version: int) -> RoomKey | None:
        return self.room_keys.get((department, version))

    def versions(self, department: int) -> list[int]:
        return sorted(v for d, v in self.room_keys if d == department)

    def set_current(self, department: int, version: int) -> None:
        self.current[department] = version

    def current_key(self, department: int) -> RoomKey | None:
        """The key to post with, if this device knows one (it may be stale)."""
        version = self.current.get(department)
        return None if version is None else self.room_key(department, version)

    def forget_current(self, department: int) -> None:
        self.current.pop(department, None)

    # --- Compliance -----------------------------------------------------------

    def compliance_allowed(self, fingerprint: str | None) -> bool:
        """May a room key be wrapped for this compliance key? Always, if nothing is pinned."""
        if self.pinned_compliance_fingerprint is None:
            return True
        return fingerprint == self.pinned_compliance_fingerprint

    # --- Replays --------------------------------------------------------------

    def is_replay(self, sender: int, client_msg_id: str, envelope: Any) -> bool:
        """Has another envelope been seen under this (sender, client_msg_id)?"""
        seen = self.seen.get((sender, client_msg_id))
        return seen is not None and seen != envelope_hash(envelope)

    def remember(self, sender: int, client_msg_id: str, envelope: Any) -> None:
        """Record a verified envelope; the first one under an id stays."""
        self.seen.setdefault((sender, client_msg_id), envelope_hash(envelope))
