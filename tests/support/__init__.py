"""Test support: the helpers tests share, one copy each (tests/conftest.py only wires
fixtures). Import from here: `from tests.support import Api, Hospital, sealed`.

- hospital.py: the personas' hospital, its keys, signed statements and envelopes;
- api.py: a persona's JSON API client and bearer token;
- sockets.py: sockets through the full ASGI stack;
- audit.py: reading the audit trail in assertions.
"""

from tests.support.api import Api, assert_refused, issue_token
from tests.support.audit import audit_entries
from tests.support.hospital import (
    PASSWORD,
    PERSONAS,
    PLAINTEXT,
    Hospital,
    append_statement,
    build_hospital,
    give_keys,
    keep_statement,
    key_version_record,
    make_user,
    rotate_room_key,
    sealed,
    signed_statement,
    store_statements,
)
from tests.support.sockets import ORIGIN, connect, open_socket

__all__ = [
    "ORIGIN",
    "PASSWORD",
    "PERSONAS",
    "PLAINTEXT",
    "Api",
    "Hospital",
    "append_statement",
    "assert_refused",
    "audit_entries",
    "build_hospital",
    "connect",
    "give_keys",
    "issue_token",
    "keep_statement",
    "key_version_record",
    "make_user",
    "open_socket",
    "rotate_room_key",
    "sealed",
    "signed_statement",
    "store_statements",
]
