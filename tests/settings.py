"""Settings for the test suite: the real settings, with test-run defaults set first.

The defaults go into the environment before rounds.settings reads it, so a
variable set by CI (DATABASE_URL, REDIS_URL) still wins.
"""

import os
from pathlib import Path

_var = Path(__file__).resolve().parent.parent / "var" / "test"
os.environ.setdefault("ROUNDS_VAR_DIR", str(_var))
os.environ.setdefault("ROUNDS_AUDIT_SEALER", "inline")
os.environ.setdefault("ROUNDS_LIGHT_PASSWORD_HASH", "1")
# A file, not SQLite's shared-cache memory database: consumers and actions run
# in other threads, and shared cache answers them "table is locked".
os.environ.setdefault("ROUNDS_TEST_SQLITE", str(_var / "test.sqlite3"))
_var.mkdir(parents=True, exist_ok=True)

from rounds.settings import *  # noqa: E402, F403
