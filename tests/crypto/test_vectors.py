"""Rounds' own test vectors (tests/vectors/*.json), as another implementation would use them.

Each check reads only the JSON and the public API, which is exactly what
the browser client will do with the same files. The deterministic files
must also be reproduced byte for byte by tests/vectors/generate.py, so a
committed vector cannot drift from the code.
"""

import json
from pathlib import Path

import pytest

from chat.crypto import (
    CryptoError,
    FileKey,
    IdentityKeyPair,
    PublicIdentity,
    RoomKey,
    SignedStatement,
    WrapRecord,
    b64decode,
    decrypt_message,
    decrypt_to_bytes,
    encrypt_message,
    encrypt_to_bytes,
    open_backup,
    seal_backup,
    unwrap_room_key,
    verify_membership_chain,
    verify_statement,
)
from chat.crypto.backup import backup_limits
from chat.crypto.identity import CONTEXT_STATEMENT, CONTEXT_WRAP
from tests.vectors import generate

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def identities(data: dict) -> dict[str, IdentityKeyPair]:
    out = {}
    for name, entry in data["identities"].items():
        identity = IdentityKeyPair.from_bytes(b64decode(entry["secret"]))
        assert identity.public == PublicIdentity.from_dict(entry["public"])
        assert identity.fingerprint == entry["fingerprint"]
        out[name] = identity
    return out


def room_key(data: dict) -> RoomKey:
    entry = data["room_key"]
    return RoomKey(
        b64decode(entry["key"]), department=entry["department"], version=entry["version"]
    )


@pytest.mark.parametrize("name", ["envelope.json", "statement.json", "backup.json"])
def test_deterministic_vectors_are_reproduced(name):
    assert generate.BUILDERS[name]() == load(name)


@pytest.mark.parametrize("name", sorted(generate.BUILDERS))
def test_every_vector_file_is_committed(name):
    data = load(name)
    assert data["generator"] == "tests/vectors/generate.py"
    assert data["valid"] if "valid" in data else data["chain"]


# --- envelope.json --------------------------------------------------------------

ENVELOPE = load("envelope.json")


@pytest.mark.parametrize("case", ENVELOPE["valid"], ids=lambda c: c["name"])
def test_envelope_valid(case):
    people = identities(ENVELOPE)
    key = room_key(ENVELOPE)
    sender = people[case["sender_identity"]]
    plaintext = b64decode(case["plaintext"])
    assert decrypt_message(case["envelope"], room_key=key, sender_key=sender.public) == plaintext
    again = encrypt_message(
        plaintext,
        room_key=key,
        thread=case["thread"],
        sender=case["sender"],
        client_msg_id=case["client_msg_id"],
        signer=sender,
        nonce=b64decode(case["nonce"]),
    )
    assert again == case["envelope"]


@pytest.mark.parametrize("case", ENVELOPE["invalid"], ids=lambda c: c["name"])
def test_envelope_invalid(case):
    sender = identities(ENVELOPE)[case["sender_identity"]]
    with pytest.raises(CryptoError) as caught:
        decrypt_message(case["envelope"], room_key=room_key(ENVELOPE), sender_key=sender.public)
    assert caught.value.code == case["error"]


# --- wrap.json ------------------------------------------------------------------

WRAP = load("wrap.json")


@pytest.mark.parametrize("case", WRAP["valid"], ids=lambda c: c["name"])
def test_wrap_valid(case):
    people = identities(WRAP)
    record = WrapRecord.from_dict(case["record"])
    assert b64decode(case["signed_bytes"]) == CONTEXT_WRAP + record.signed_bytes()
    key = unwrap_room_key(
        record,
        recipient=people[case["recipient_identity"]],
        wrapper=people[case["wrapper_identity"]].public,
    )
    assert key == room_key(WRAP)


@pytest.mark.parametrize("case", WRAP["invalid"], ids=lambda c: c["name"])
def test_wrap_invalid(case):
    people = identities(WRAP)
    with pytest.raises(CryptoError) as caught:
        unwrap_room_key(
            WrapRecord.from_dict(case["record"]),
            recipient=people[case["recipient_identity"]],
            wrapper=people[case["wrapper_identity"]].public,
        )
    assert caught.value.code == case["error"]


# --- statement.json -------------------------------------------------------------

STATEMENT = load("statement.json")


def _keys() -> tuple[PublicIdentity, list[PublicIdentity]]:
    people = identities(STATEMENT)
    admin = people[STATEMENT["admin_identity"]].public
    keys = [people[name].public for name in STATEMENT["users"]]
    return admin, keys


def test_statement_chain():
    people = identities(STATEMENT)
    for entry in STATEMENT["chain"]:
        signed = SignedStatement.from_dict(entry["signed"])
        assert b64decode(entry["signed_bytes"]) == (
            CONTEXT_STATEMENT + signed.statement.signed_bytes()
        )
        verify_statement(signed, people[entry["signer_identity"]].public)
    admin, keys = _keys()
    chain = [SignedStatement.from_dict(entry["signed"]) for entry in STATEMENT["chain"]]
    members = verify_membership_chain(chain, admin_key=admin, keys=keys)
    assert {str(user): role for user, role in members.items()} == STATEMENT["members_after_chain"]


@pytest.mark.parametrize("case", STATEMENT["invalid_chains"], ids=lambda c: c["name"])
def test_statement_invalid_chain(case):
    admin, keys = _keys()
    chain = [SignedStatement.from_dict(entry) for entry in case["chain"]]
    with pytest.raises(CryptoError) as caught:
        verify_membership_chain(chain, admin_key=admin, keys=keys)
    assert caught.value.code == case["error"]
    assert caught.value.statement_index == case["statement_index"]


# --- stream.json ----------------------------------------------------------------

STREAM = load("stream.json")


@pytest.mark.parametrize("case", STREAM["valid"], ids=lambda c: c["name"])
def test_stream_valid(case):
    key = FileKey(b64decode(STREAM["key"]))
    stream = b64decode(case["stream"])
    assert len(stream) == case["size"]
    plaintext = decrypt_to_bytes(key, stream, expected_sha256=bytes.fromhex(case["sha256"]))
    assert plaintext == b64decode(case["plaintext"])
    # Re-encrypting gives a new header, so new bytes, of the same shape; they open too.
    again = encrypt_to_bytes(key, plaintext, STREAM["chunk_size"])
    assert len(again) == len(stream) and again[:9] == stream[:9]
    assert decrypt_to_bytes(key, again) == plaintext


@pytest.mark.parametrize("case", STREAM["invalid"], ids=lambda c: c["name"])
def test_stream_invalid(case):
    with pytest.raises(CryptoError) as caught:
        decrypt_to_bytes(FileKey(b64decode(STREAM["key"])), b64decode(case["stream"]))
    assert caught.value.code == case["error"]


# --- backup.json ----------------------------------------------------------------

BACKUP = load("backup.json")


@pytest.mark.parametrize("case", BACKUP["valid"], ids=lambda c: c["name"])
def test_backup_valid(case):
    identity = identities(BACKUP)[case["identity"]]
    blob = b64decode(case["blob"])
    assert backup_limits(blob) == (case["opslimit"], case["memlimit"])
    assert open_backup(blob, case["secret"]) == identity
    assert open_backup(blob, case["also_opens_with"]) == identity
    again = seal_backup(
        identity,
        case["secret"],
        user_chosen=case["user_chosen"],
        opslimit=case["opslimit"],
        memlimit=case["memlimit"],
        salt=b64decode(case["salt"]),
        nonce=b64decode(case["nonce"]),
    )
    assert again == blob


@pytest.mark.parametrize("case", BACKUP["invalid"], ids=lambda c: c["name"])
def test_backup_invalid(case):
    with pytest.raises(CryptoError) as caught:
        open_backup(b64decode(case["blob"]), case["secret"])
    assert caught.value.code == case["error"]
