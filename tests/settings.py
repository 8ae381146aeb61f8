"""Settings for the test suite: the real settings, with test-run defaults set first.

The defaults go into the environment before rounds.settings reads it, so a
variable set by CI (DATABASE_URL, REDIS_URL) still wins.
"""

import os
from pathlib import Path

_var = Path(__file__).resolve().parent.parent / "var" / "test"
os.environ.setdefault("ROUNDS_VAR_DIR", str(_var))
os.environ.setdefault("ROUNDS_AUDIT_SEALER", "inline")
# Tests fire advice timers themselves (advice.scheduler.run_due at a chosen instant).
os.environ.setdefault("ROUNDS_SCHEDULER", "off")
# Pushes are sent in the committing thread, so a test sees what was sent when it returns.
os.environ.setdefault("ROUNDS_PUSH_SENDER", "inline")
os.environ.setdefault("ROUNDS_LIGHT_PASSWORD_HASH", "1")
# Tests sign heads and officers in with a password alone; the second factor's own tests
# (tests/accounts/test_second_factor*.py, the live and browser ones) turn it on.
os.environ.setdefault("ROUNDS_SECOND_FACTOR", "off")
# Redis keys of this run only: the suite empties its channel layer between
# tests, which must not touch another run's (or a server's) keys.
# The trailing dot keeps run 123's prefix from being a prefix of run 1234's.
os.environ.setdefault("ROUNDS_CHANNEL_PREFIX", f"rounds-test-{os.getpid()}.")
# A client built by a test without a state directory remembers under var/test,
# never in the home directory of whoever runs the suite.
os.environ.setdefault("ROUNDS_STATE_DIR", str(_var / "client-state"))
_var.mkdir(parents=True, exist_ok=True)

from rounds.settings import *  # noqa: E402, F403
from rounds.settings import DATABASES  # noqa: E402

# One test database per test run, so two runs on one machine never share one.
# SQLite: a file, not the shared-cache memory database, because consumers and
# actions run in other threads and shared cache answers them "table is locked".
_run = os.getpid()
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(_var / f"test-{_run}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_rounds_{_run}"}
