"""Test support: the helpers tests share, one copy each (a conftest.py only wires
fixtures). What `__all__` below names is re-exported: `from tests.support import Api,
Hospital, sealed`; import the rest from its module (`from tests.support.uploads import photo`).

- hospital.py: the personas' hospital, its keys, signed statements and envelopes;
- api.py: a persona's JSON API client and bearer token;
- sockets.py: sockets through the full ASGI stack, and their frames validated;
- audit.py: reading the audit trail in assertions;
- posts.py: messages posted through the use case, with real envelopes;
- uploads.py: an upload client, uploads made in the ORM, photo posts and their frames;
- storage.py: the attachments' blob store, on disk or on a moto S3 server;
- cases.py: compliance review cases opened through the use case, and their paths;
- tamper.py: one bit flipped in a base64 field of signed material;
- pdf.py: the streams of a reportlab PDF, inflated (ASCII85 + Flate) to read its text;
- po.py: a gettext .po catalogue read without GNU gettext (entries, obsolete lines).

Helpers of one folder stay in a plain module there (tests/browser/support.py,
tests/client/support.py, tests/crypto/support.py, tests/retention/support.py,
tests/rooms/keyring.py); tests/live/ holds the live daphne machinery (servers, SDK
clients, forgeries, CLI) that tests/browser, tests/client and docs/capture_examples.py
import too.
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
