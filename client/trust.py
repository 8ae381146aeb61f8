"""What this device remembers between runs, so a server cannot make it forget.

Per server and user, in one SQLite file of the SDK's state directory
(`state_dir=`, else `ROUNDS_STATE_DIR`, else `$XDG_STATE_HOME/rounds`, else
`~/.local/state/rounds`), created readable by its owner only:

- `heads`: per department, the highest chain head this device verified; a
  chain that does not extend it is refused (docs/crypto.md §9, R1);
- `versions`: per department, the highest key version verified; a server
  naming a lower one as current is refused (R4);
- `seen`: per (sender, client_msg_id), the hash of the envelope opened or
  sent under it and the message id it came as; the same envelope under
  another message id is a duplicate, another envelope a replay (R6).

Nothing here is secret (no key, no plaintext), but it is what makes a
rollback, a replay or a duplicate visible across restarts and processes:
SQLite's locking lets several processes of one user share the file.
"""

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any, NamedTuple

from core.crypto import ChainHead

_SCHEMA = """
CREATE TABLE IF NOT EXISTS heads (
    department INTEGER PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    department INTEGER PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS seen (
    sender INTEGER NOT NULL, client_msg_id TEXT NOT NULL, envelope_hash TEXT NOT NULL,
    message_id INTEGER, PRIMARY KEY (sender, client_msg_id));
"""


def envelope_hash(envelope: Any) -> str:
    """SHA-256 of the envelope as sorted, compact JSON (the server's `envelope_hash`)."""
    canonical = json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def default_state_dir() -> Path:
    if os.environ.get("ROUNDS_STATE_DIR"):
        return Path(os.environ["ROUNDS_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "rounds"


class Seen(NamedTuple):
    envelope_hash: str
    message_id: int | None


class TrustStore:
    """The remembered heads, versions and envelopes of one user of one server."""

    def __init__(self, state_dir: str | os.PathLike[str] | None, server: str, user: int) -> None:
        folder = Path(state_dir) if state_dir is not None else default_state_dir()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        server_id = hashlib.sha256(server.rstrip("/").encode()).hexdigest()[:16]
        self.path = folder / f"trust-{server_id}-{user}.sqlite3"
        fresh = not self.path.exists()
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        if fresh:
            self.path.chmod(0o600)
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    # --- chain heads ----------------------------------------------------------

    def head(self, department: int) -> ChainHead | None:
        row = self._db.execute(
            "SELECT seq, hash FROM heads WHERE department = ?", (department,)
        ).fetchone()
        return None if row is None else ChainHead(row[0], row[1])

    def keep_head(self, department: int, head: ChainHead) -> None:
        """Remember `head` if it is further than the one held (the caller checked it extends)."""
        self._db.execute(
            "INSERT INTO heads (department, seq, hash) VALUES (?, ?, ?) "
            "ON CONFLICT (department) DO UPDATE SET seq = excluded.seq, hash = excluded.hash "
            "WHERE excluded.seq > heads.seq",
            (department, head.seq, head.hash),
        )

    # --- key versions ---------------------------------------------------------

    def highest_version(self, department: int) -> int:
        row = self._db.execute(
            "SELECT version FROM versions WHERE department = ?", (department,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def keep_version(self, department: int, version: int) -> None:
        self._db.execute(
            "INSERT INTO versions (department, version) VALUES (?, ?) "
            "ON CONFLICT (department) DO UPDATE SET version = excluded.version "
            "WHERE excluded.version > versions.version",
            (department, version),
        )

    # --- envelopes ------------------------------------------------------------

    def seen(self, sender: int, client_msg_id: str) -> Seen | None:
        row = self._db.execute(
            "SELECT envelope_hash, message_id FROM seen WHERE sender = ? AND client_msg_id = ?",
            (sender, client_msg_id),
        ).fetchone()
        return None if row is None else Seen(row[0], row[1])

    def remember(
        self, sender: int, client_msg_id: str, digest: str, message_id: int | None
    ) -> Seen:
        """Keep the first envelope seen under this id (and the first message id it came as);
        return what is now remembered."""
        self._db.execute(
            "INSERT INTO seen (sender, client_msg_id, envelope_hash, message_id) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (sender, client_msg_id) DO UPDATE "
            "SET message_id = excluded.message_id "
            "WHERE seen.message_id IS NULL AND seen.envelope_hash = excluded.envelope_hash",
            (sender, client_msg_id, digest, message_id),
        )
        remembered = self.seen(sender, client_msg_id)
        assert remembered is not None
        return remembered
