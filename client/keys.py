"""What a client holds in memory to read and write end-to-end encrypted messages.

`KeyRing` is pure state, no I/O: the components of `RoundsClient` fill it
and consult it. It holds the user's `IdentityKeyPair` (generated on the
first device, recovered from the server's sealed backup on the next ones),
room keys and their verified key version records by (department,
version), and which version is current for posting in each department.
What must survive a restart (chain heads, highest versions, envelopes
seen) is in client/trust.py instead; the pins are in client/pins.py.
"""

from core.crypto import IdentityKeyPair, KeyVersionRecord, RoomKey


class KeyRing:
    """One user's keys on one device, in memory."""

    def __init__(self) -> None:
        self.identity: IdentityKeyPair | None = None
        self.room_keys: dict[tuple[int, int], RoomKey] = {}
        # Records that verified against the department's chain (docs/crypto.md §7).
        self.records: dict[tuple[int, int], KeyVersionRecord] = {}
        # Department → the version this device last checked as current for posting.
        self.current: dict[int, int] = {}
        # Set once the backup of `identity` is stored on the server.
        self.backup_stored = False

    def __repr__(self) -> str:
        identity = self.identity.fingerprint[:16] if self.identity else None
        return f"KeyRing(identity={identity}, room_keys={sorted(self.room_keys)})"

    def add_room_key(self, key: RoomKey) -> bool:
        """Keep a room key version; False if a different key for it is already held.

        The first key held for a version wins: a second, different key for the
        same version is never allowed to replace it (and cannot match the
        version's commitment anyway).
        """
        slot = (key.department, key.version)
        held = self.room_keys.get(slot)
        if held is None:
            self.room_keys[slot] = key
            return True
        return held == key

    def room_key(self, department: int, version: int) -> RoomKey | None:
        return self.room_keys.get((department, version))

    def record(self, department: int, version: int) -> KeyVersionRecord | None:
        return self.records.get((department, version))

    def versions(self, department: int) -> list[int]:
        """The versions of a department held with their key and verified record."""
        return sorted(v for d, v in self.room_keys if d == department and (d, v) in self.records)

    def current_key(self, department: int) -> RoomKey | None:
        """The key to post with, if this device checked one (it may be stale)."""
        version = self.current.get(department)
        return None if version is None else self.room_key(department, version)

    def forget_current(self, department: int) -> None:
        self.current.pop(department, None)
