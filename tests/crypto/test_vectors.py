"""Rounds' own test vectors (tests/vectors/*.json), as another implementation would use them.

Each check reads only the JSON and the public API, which is exactly what
the browser client will do with the same files. The deterministic files
must also be reproduced byte for byte by tests/vectors/generate.py, so a
committed vector cannot drift from the code.
"""

import json
from pathlib import Path

import pytest

from core.crypto import (
    ChainHead,
    CryptoError,
    FileKey,
    IdentityKeyPair,
    PublicIdentity,
    RoomKey,
    SignedKeyVersion,
    SignedStatement,
    WrapRecord,
    b64decode,
    check_current,
    check_key_matches,
    decrypt_message,
    decrypt_to_bytes,
    encrypt_message,
    encrypt_to_bytes,
    open_backup,
    open_envelope,
    parse_envelope,
    replay_membership_chain,
    seal_backup,
    unwrap_room_key,
    verify_key_version,
    verify_statement,
)
from core.crypto.backup import backup_limits
from core.crypto.identity import CONTEXT_KEY_VERSION, CONTEXT_STATEMENT, CONTEXT_WRAP
from tests.vectors import generate

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
DETERMINISTIC = [
    "identity.json",
    "statement.json",
    "keyversion.json",
    "envelope.json",
    "backup.json",
]


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


def room_key(entry: dict) -> RoomKey:
    key = RoomKey(b64decode(entry["key"]), department=entry["department"], version=entry["version"])
    assert key.commitment == b64decode(entry["commitment"])
    return key


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_vectors_are_reproduced(name):
    assert generate.BUILDERS[name]() == load(name)


@pytest.mark.parametrize("name", sorted(generate.BUILDERS))
def test_every_vector_file_is_committed(name):
    data = load(name)
    assert data["generator"] == "tests/vectors/generate.py"
    assert data.get("valid") or data.get("chain") or data.get("invalid_public")


# --- identity.json --------------------------------------------------------------

IDENTITY = load("identity.json")


def test_identities_reproduce_their_public_keys_and_fingerprints():
    assert len(identities(IDENTITY)) == len(IDENTITY["identities"])


@pytest.mark.parametrize("case", IDENTITY["invalid_public"], ids=lambda c: c["name"])
def test_identity_invalid_public(case):
    with pytest.raises(CryptoError) as caught:
        PublicIdentity.from_dict(case["public"])
    assert caught.value.code == case["error"]


# --- statement.json -------------------------------------------------------------

STATEMENT = load("statement.json")


def reference_chain():
    people = identities(STATEMENT)
    admin = people[STATEMENT["admin_identity"]].public
    keys = [people[name].public for name in people if name != STATEMENT["admin_identity"]]
    signed = [SignedStatement.from_dict(entry["signed"]) for entry in STATEMENT["chain"]]
    return signed, admin, keys


def test_statement_chain():
    people = identities(STATEMENT)
    for entry in STATEMENT["chain"]:
        signed = SignedStatement.from_dict(entry["signed"])
        assert b64decode(entry["signed_bytes"]) == (
            CONTEXT_STATEMENT + signed.statement.signed_bytes()
        )
        assert signed.hash == entry["hash"]
        verify_statement(signed, people[entry["signer_identity"]].public)
    signed, admin, keys = reference_chain()
    chain = replay_membership_chain(signed, admin_key=admin, keys=keys)
    assert chain.head == ChainHead(STATEMENT["head"]["seq"], STATEMENT["head"]["hash"])
    assert {str(user): [m.role, m.fingerprint] for user, m in chain.members.items()} == STATEMENT[
        "members_after_chain"
    ]
    for seq, members in STATEMENT["members_at"].items():
        for user in STATEMENT["users"].values():
            member = chain.member_at(user, int(seq))
            expected = members.get(str(user))
            assert (member and [member.role, member.fingerprint]) == expected, (seq, user)
    for seq, at in STATEMENT["last_exclusion_at"].items():
        assert chain.last_exclusion_at(int(seq)) == at


@pytest.mark.parametrize("case", STATEMENT["invalid_chains"], ids=lambda c: c["name"])
def test_statement_invalid_chain(case):
    _, admin, keys = reference_chain()
    chain = [SignedStatement.from_dict(entry) for entry in case["chain"]]
    with pytest.raises(CryptoError) as caught:
        replay_membership_chain(chain, admin_key=admin, keys=keys)
    assert caught.value.code == case["error"]
    assert caught.value.statement_index == case["statement_index"]


def verified_chain():
    signed, admin, keys = reference_chain()
    return replay_membership_chain(signed, admin_key=admin, keys=keys)


# --- keyversion.json ------------------------------------------------------------

KEYVERSION = load("keyversion.json")


def keyversion_room_key(version: int) -> RoomKey:
    return room_key(KEYVERSION["room_keys"][str(version)])


@pytest.mark.parametrize("case", KEYVERSION["valid"], ids=lambda c: c["name"])
def test_keyversion_valid(case):
    chain = verified_chain()
    signed = SignedKeyVersion.from_dict(case["signed"])
    assert b64decode(case["signed_bytes"]) == CONTEXT_KEY_VERSION + signed.record.signed_bytes()
    record = verify_key_version(signed, chain)
    check_key_matches(record, keyversion_room_key(record.version))
    if case["current"]:
        check_current(record, chain)
    else:
        with pytest.raises(CryptoError) as caught:
            check_current(record, chain)
        assert caught.value.code == case["stale_error"]


@pytest.mark.parametrize("case", KEYVERSION["invalid"], ids=lambda c: c["name"])
def test_keyversion_invalid(case):
    with pytest.raises(CryptoError) as caught:
        verify_key_version(SignedKeyVersion.from_dict(case["signed"]), verified_chain())
    assert caught.value.code == case["error"]


def test_keyversion_commitment_mismatch():
    case = KEYVERSION["commitment_mismatch"]
    (valid,) = [v for v in KEYVERSION["valid"] if v["name"] == case["record"]]
    record = SignedKeyVersion.from_dict(valid["signed"]).record
    other = keyversion_room_key(case["room_key_version"])
    with pytest.raises(CryptoError) as caught:
        check_key_matches(record, RoomKey(bytes(other), department=12, version=record.version))
    assert caught.value.code == case["error"]


# --- envelope.json --------------------------------------------------------------

ENVELOPE = load("envelope.json")


@pytest.mark.parametrize("case", ENVELOPE["valid"], ids=lambda c: c["name"])
def test_envelope_valid(case):
    people = identities(ENVELOPE)
    key = room_key(ENVELOPE["room_key"])
    sender = people[case["sender_identity"]]
    plaintext = b64decode(case["plaintext"])
    assert decrypt_message(case["envelope"], room_key=key, sender_key=sender.public) == plaintext
    ad = {k: v for k, v in case["envelope"]["header"].items() if k not in ("nonce", "sig")}
    assert json.loads(case["ad"]) == ad
    again = encrypt_message(
        plaintext,
        room_key=key,
        head=ChainHead(case["chain_head"]["seq"], case["chain_head"]["hash"]),
        thread=case["thread"],
        sender=case["sender"],
        client_msg_id=case["client_msg_id"],
        signer=sender,
        sent_at=case["sent_at"],
        nonce=b64decode(case["nonce"]),
        corrects=case.get("corrects"),
    )
    assert again == case["envelope"]
    assert parse_envelope(case["envelope"]).corrects == case.get("corrects")


@pytest.mark.parametrize("case", ENVELOPE["invalid"], ids=lambda c: c["name"])
def test_envelope_invalid(case):
    sender = identities(ENVELOPE)[case["sender_identity"]]
    with pytest.raises(CryptoError) as caught:
        decrypt_message(
            case["envelope"], room_key=room_key(ENVELOPE["room_key"]), sender_key=sender.public
        )
    assert caught.value.code == case["error"]


@pytest.mark.parametrize("case", ENVELOPE["in_chain"]["cases"], ids=lambda c: c["name"])
def test_envelope_in_chain(case):
    chain = verified_chain()
    records = {
        r.version: r
        for r in (SignedKeyVersion.from_dict(v["signed"]).record for v in KEYVERSION["valid"])
    }
    version = case["key_version"]
    args = {"chain": chain, "record": records[version], "room_key": keyversion_room_key(version)}
    if case["error"] is None:
        header, plaintext = open_envelope(case["envelope"], **args)
        assert plaintext == b64decode(case["plaintext"])
        assert header.key_version == version
    else:
        with pytest.raises(CryptoError) as caught:
            open_envelope(case["envelope"], **args)
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
    assert key == room_key(WRAP["room_key"])


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
