"""Regenerate Rounds' own crypto test vectors: python -m tests.vectors.generate

Writes envelope.json, wrap.json, statement.json, stream.json and backup.json
beside this file. docs/crypto.md ("Test vectors") documents every field.

envelope.json, statement.json and backup.json are deterministic (fixed
keys, nonces and salts; Ed25519 is deterministic): running this again gives
the same bytes, and tests/crypto/test_vectors.py checks that it does.
wrap.json and stream.json are not: a sealed box uses a fresh ephemeral key
and secretstream draws its header at random, so each run writes new ones,
all of which must still open. Commit the files only when a format changes.
"""

import base64
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from chat.crypto import (
    CONTEXT_ENVELOPE,
    CONTEXT_STATEMENT,
    CONTEXT_WRAP,
    FileKey,
    IdentityKeyPair,
    MembershipStatement,
    RoomKey,
    encrypt_message,
    encrypt_stream,
    seal_backup,
    sign_statement,
    wrap_room_key,
)
from chat.crypto.encoding import b64encode, canonical_json
from chat.crypto.roomkeys import WrapRecord

HERE = Path(__file__).resolve().parent

PERSONAS = (
    "nurse_alice",
    "surgeon_bob",
    "head_carol",
    "compliance_dan",
    "institution_admin",
)

# Argon2id's minimum limits keep the backup vectors fast to check; real
# backups use MODERATE or SENSITIVE (docs/crypto.md).
BACKUP_OPSLIMIT = 1
BACKUP_MEMLIMIT = 8192


def fixed_bytes(label: str, size: int = 32) -> bytes:
    """Test-only key material: SHA-256 of a label, cut to size. Never for real keys."""
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"rounds-test-vector/{label}/{counter}".encode()).digest()
        counter += 1
    return out[:size]


def persona(name: str) -> IdentityKeyPair:
    return IdentityKeyPair.from_bytes(fixed_bytes(f"identity/{name}", 64))


def identity_entry(name: str) -> dict[str, Any]:
    identity = persona(name)
    return {
        "secret": b64encode(identity.to_bytes()),
        "public": identity.public.to_dict(),
        "fingerprint": identity.fingerprint,
    }


def identities(*names: str) -> dict[str, Any]:
    return {name: identity_entry(name) for name in names}


def room_key() -> RoomKey:
    return RoomKey(fixed_bytes("room-key/12/3"), department=12, version=3)


def room_key_entry(key: RoomKey) -> dict[str, Any]:
    return {"department": key.department, "version": key.version, "key": b64encode(bytes(key))}


# --- envelope.json ------------------------------------------------------------


def _resign(envelope: dict[str, Any], signer: IdentityKeyPair) -> dict[str, Any]:
    """Sign an edited envelope again, as a sender who can sign would."""
    header = envelope["header"]
    ad = canonical_json({k: header[k] for k in header if k not in ("nonce", "sig")})
    signed = ad + base64.b64decode(header["nonce"]) + base64.b64decode(envelope["ciphertext"])
    return {
        "header": {**header, "sig": b64encode(signer.sign(CONTEXT_ENVELOPE, signed))},
        "ciphertext": envelope["ciphertext"],
    }


def _flip_b64(text: str, index: int) -> str:
    data = bytearray(base64.b64decode(text))
    data[index] ^= 0x01
    return b64encode(bytes(data))


def build_envelope() -> dict[str, Any]:
    key = room_key()
    alice = persona("nurse_alice")
    bob = persona("surgeon_bob")
    cases = [
        ("empty", b"", 101, 7, "msg-0000-empty"),
        ("short_text", b"Bed 4: obs stable, BP 120/80.", 101, 7, "msg-0001-short"),
        (
            "utf8_json_body",
            canonical_json({"kind": "text", "text": "Patient à jeun depuis 22 h — ✔"}),
            101,
            7,
            "msg-0002-json",
        ),
        ("one_kib", bytes(range(256)) * 4, 102, 7, "msg-0003-one_kib"),
    ]
    valid = []
    for index, (name, plaintext, thread, sender, msg_id) in enumerate(cases):
        nonce = fixed_bytes(f"envelope-nonce/{index}", 24)
        envelope = encrypt_message(
            plaintext,
            room_key=key,
            thread=thread,
            sender=sender,
            client_msg_id=msg_id,
            signer=alice,
            nonce=nonce,
        )
        ad = canonical_json(
            {
                "v": 1,
                "room": key.department,
                "thread": thread,
                "key_version": key.version,
                "sender": sender,
                "client_msg_id": msg_id,
            }
        )
        valid.append(
            {
                "name": name,
                "sender_identity": "nurse_alice",
                "plaintext": b64encode(plaintext),
                "thread": thread,
                "sender": sender,
                "client_msg_id": msg_id,
                "nonce": b64encode(nonce),
                "ad": ad.decode("utf-8"),
                "envelope": envelope,
            }
        )

    base = valid[1]["envelope"]
    header = base["header"]
    other_version = RoomKey(bytes(key), department=12, version=4)
    invalid = [
        ("room_edited", {**base, "header": {**header, "room": 13}}, "bad_signature"),
        ("thread_edited", {**base, "header": {**header, "thread": 999}}, "bad_signature"),
        ("sender_edited", {**base, "header": {**header, "sender": 8}}, "bad_signature"),
        (
            "client_msg_id_edited",
            {**base, "header": {**header, "client_msg_id": "msg-0001-other"}},
            "bad_signature",
        ),
        ("key_version_edited", {**base, "header": {**header, "key_version": 4}}, "bad_signature"),
        (
            "nonce_byte_flipped",
            {**base, "header": {**header, "nonce": _flip_b64(header["nonce"], 0)}},
            "bad_signature",
        ),
        (
            "sig_byte_flipped",
            {**base, "header": {**header, "sig": _flip_b64(header["sig"], 63)}},
            "bad_signature",
        ),
        (
            "ciphertext_byte_flipped",
            {**base, "ciphertext": _flip_b64(base["ciphertext"], 0)},
            "bad_signature",
        ),
        (
            "signed_by_someone_else",
            _resign(base, bob),
            "bad_signature",
        ),
        (
            "moved_to_other_thread_and_resigned_by_sender",
            _resign({**base, "header": {**header, "thread": 999}}, alice),
            "decryption_failed",
        ),
        (
            "ciphertext_flipped_and_resigned_by_sender",
            _resign({**base, "ciphertext": _flip_b64(base["ciphertext"], 5)}, alice),
            "decryption_failed",
        ),
        (
            "other_key_version",
            encrypt_message(
                b"for version 4",
                room_key=other_version,
                thread=101,
                sender=7,
                client_msg_id="msg-0004-keyver",
                signer=alice,
                nonce=fixed_bytes("envelope-nonce/other-version", 24),
            ),
            "decryption_failed",
        ),
        ("version_2", {**base, "header": {**header, "v": 2}}, "unsupported_version"),
        ("extra_header_key", {**base, "header": {**header, "x": 1}}, "invalid_envelope"),
        (
            "missing_header_key",
            {**base, "header": {k: v for k, v in header.items() if k != "thread"}},
            "invalid_envelope",
        ),
        ("room_is_a_string", {**base, "header": {**header, "room": "12"}}, "invalid_envelope"),
        ("room_is_true", {**base, "header": {**header, "room": True}}, "invalid_envelope"),
        (
            "nonce_too_short",
            {**base, "header": {**header, "nonce": b64encode(bytes(23))}},
            "invalid_envelope",
        ),
        (
            "ciphertext_urlsafe_base64",
            {**base, "ciphertext": base["ciphertext"].replace("+", "-").replace("/", "_") + "-"},
            "invalid_envelope",
        ),
        ("extra_top_level_key", {**base, "extra": 1}, "invalid_envelope"),
    ]
    return {
        "format": "rounds envelope v1",
        "generator": "tests/vectors/generate.py",
        "deterministic": True,
        "identities": identities("nurse_alice", "surgeon_bob"),
        "room_key": room_key_entry(key),
        "valid": valid,
        "invalid": [
            {"name": name, "sender_identity": "nurse_alice", "envelope": env, "error": error}
            for name, env, error in invalid
        ],
    }


# --- wrap.json ------------------------------------------------------------------


def _forged_wrap(
    sealed_for: RoomKey, claimed: RoomKey, recipient: IdentityKeyPair, wrapper: IdentityKeyPair
) -> WrapRecord:
    """A record whose signed fields claim `claimed` but whose sealed key is `sealed_for`.

    This is what a member who can sign, but should not be trusted, could
    make to move a wrap to another room or version.
    """
    honest = wrap_room_key(sealed_for, recipient=recipient.public, wrapper=wrapper)
    fields = {
        "v": 1,
        "department": claimed.department,
        "version": claimed.version,
        "recipient_fp": honest.recipient_fp,
        "wrapper_fp": honest.wrapper_fp,
    }
    signature = wrapper.sign(CONTEXT_WRAP, canonical_json(fields) + honest.sealed)
    return WrapRecord(
        department=claimed.department,
        version=claimed.version,
        recipient_fp=honest.recipient_fp,
        wrapper_fp=honest.wrapper_fp,
        sealed=honest.sealed,
        signature=signature,
    )


def build_wrap() -> dict[str, Any]:
    key = room_key()
    carol = persona("head_carol")
    valid = []
    for recipient in ("nurse_alice", "compliance_dan"):
        record = wrap_room_key(key, recipient=persona(recipient).public, wrapper=carol)
        valid.append(
            {
                "name": f"carol_wraps_for_{recipient}",
                "recipient_identity": recipient,
                "wrapper_identity": "head_carol",
                "record": record.to_dict(),
                "signed_bytes": b64encode(CONTEXT_WRAP + record.signed_bytes()),
            }
        )
    alice = persona("nurse_alice")
    honest = valid[0]["record"]
    moved = _forged_wrap(
        key, RoomKey(bytes(key), department=13, version=3), recipient=alice, wrapper=carol
    )
    other_version = _forged_wrap(
        key, RoomKey(bytes(key), department=12, version=4), recipient=alice, wrapper=carol
    )
    invalid = [
        ("department_edited", {**honest, "department": 13}, "bad_signature"),
        ("version_edited", {**honest, "version": 4}, "bad_signature"),
        (
            "sealed_byte_flipped",
            {**honest, "sealed": _flip_b64(honest["sealed"], 40)},
            "bad_signature",
        ),
        ("sig_byte_flipped", {**honest, "sig": _flip_b64(honest["sig"], 0)}, "bad_signature"),
        ("moved_to_other_room_by_signer", moved.to_dict(), "invalid_envelope"),
        ("moved_to_other_version_by_signer", other_version.to_dict(), "invalid_envelope"),
        ("version_2", {**honest, "v": 2}, "unsupported_version"),
        ("extra_key", {**honest, "extra": 1}, "invalid_envelope"),
    ]
    return {
        "format": "rounds wrap record v1",
        "generator": "tests/vectors/generate.py",
        "deterministic": False,
        "identities": identities("nurse_alice", "head_carol", "compliance_dan"),
        "room_key": room_key_entry(key),
        "valid": valid,
        "invalid": [
            {
                "name": name,
                "recipient_identity": "nurse_alice",
                "wrapper_identity": "head_carol",
                "record": record,
                "error": error,
            }
            for name, record, error in invalid
        ],
    }


# --- statement.json -------------------------------------------------------------

USERS = {"nurse_alice": 7, "surgeon_bob": 8, "head_carol": 3}


def _statement(
    kind: str, subject: str, role: str, issued_at: str, signer: str | None
) -> MembershipStatement:
    return MembershipStatement(
        kind=kind,  # type: ignore[arg-type]
        department=12,
        subject_user=USERS[subject],
        subject_fingerprint=persona(subject).fingerprint,
        role=role,  # type: ignore[arg-type]
        issued_at=issued_at,
        signer_user=None if signer is None else USERS[signer],
        signer_fingerprint=persona(signer or "institution_admin").fingerprint,
    )


def _sign(statement: MembershipStatement, signer: str | None) -> dict[str, Any]:
    return sign_statement(statement, persona(signer or "institution_admin")).to_dict()


def build_statement() -> dict[str, Any]:
    steps = [
        ("admit", "head_carol", "head", "2025-01-06T08:00:00Z", None),
        ("admit", "nurse_alice", "member", "2025-01-06T08:05:00Z", "head_carol"),
        ("admit", "surgeon_bob", "member", "2025-01-06T08:06:00.250Z", "head_carol"),
        ("role", "surgeon_bob", "head", "2025-02-01T09:00:00+01:00", "head_carol"),
        ("remove", "nurse_alice", "member", "2025-03-01T12:00:00Z", "surgeon_bob"),
    ]
    chain = []
    for kind, subject, role, issued_at, signer in steps:
        statement = _statement(kind, subject, role, issued_at, signer)
        signed = _sign(statement, signer)
        chain.append(
            {
                "signer_identity": signer or "institution_admin",
                "signed": signed,
                "signed_bytes": b64encode(CONTEXT_STATEMENT + statement.signed_bytes()),
            }
        )
    chain_dicts = [entry["signed"] for entry in chain]
    forged_head = _sign(
        _statement("admit", "surgeon_bob", "head", "2025-01-06T08:06:00Z", "nurse_alice"),
        "nurse_alice",
    )
    second_admin = _sign(
        _statement("admit", "surgeon_bob", "head", "2025-01-06T08:06:00Z", None), None
    )
    tampered = json.loads(json.dumps(chain_dicts[1]))
    tampered["statement"]["role"] = "head"
    invalid_chains = [
        ("first_head_not_by_admin", [chain_dicts[1]], "bad_signature", 0),
        ("member_signs_an_admission", [*chain_dicts[:2], forged_head], "bad_signature", 2),
        ("admin_key_when_a_head_exists", [*chain_dicts[:2], second_admin], "bad_signature", 2),
        ("statement_edited", [chain_dicts[0], tampered], "bad_signature", 1),
        ("signer_not_yet_head", [chain_dicts[0], chain_dicts[4]], "bad_signature", 1),
        ("out_of_order", [chain_dicts[0], chain_dicts[2], chain_dicts[1]], "invalid_envelope", 2),
    ]
    return {
        "format": "rounds membership statement v1",
        "generator": "tests/vectors/generate.py",
        "deterministic": True,
        "identities": identities("nurse_alice", "surgeon_bob", "head_carol", "institution_admin"),
        "users": {name: user for name, user in USERS.items()},
        "admin_identity": "institution_admin",
        "chain": chain,
        "members_after_chain": {
            str(USERS["head_carol"]): "head",
            str(USERS["surgeon_bob"]): "head",
        },
        "invalid_chains": [
            {"name": name, "chain": statements, "error": error, "statement_index": index}
            for name, statements, error, index in invalid_chains
        ],
    }


# --- stream.json ----------------------------------------------------------------

STREAM_CHUNK_SIZE = 16


def build_stream() -> dict[str, Any]:
    key = FileKey(fixed_bytes("file-key"))
    valid = []
    for name, plaintext in [
        ("empty", b""),
        ("one_byte", b"\x42"),
        ("exactly_one_chunk", bytes(range(16))),
        ("three_chunks_and_a_bit", bytes(range(50))),
    ]:
        sink = io.BytesIO()
        info = encrypt_stream(key, io.BytesIO(plaintext), sink, STREAM_CHUNK_SIZE)
        valid.append(
            {
                "name": name,
                "plaintext": b64encode(plaintext),
                "stream": b64encode(sink.getvalue()),
                "size": info.size,
                "sha256": info.sha256.hex(),
                "chunks": info.chunks,
            }
        )
    whole = io.BytesIO()
    encrypt_stream(key, io.BytesIO(bytes(range(50))), whole, STREAM_CHUNK_SIZE)
    data = whole.getvalue()
    start = 9 + 24
    block = STREAM_CHUNK_SIZE + 17
    chunk = [data[start + i * block : start + (i + 1) * block] for i in range(4)]
    invalid = [
        ("truncated_after_first_chunk", data[: start + block], "truncated_stream"),
        ("truncated_before_final_chunk", data[: start + 3 * block], "truncated_stream"),
        ("truncated_mid_chunk", data[: start + block + 20], "decryption_failed"),
        ("truncated_shorter_than_a_tag", data[: start + block + 5], "truncated_stream"),
        ("garbage_after_final", data + b"\x00", "decryption_failed"),
        (
            "chunks_swapped",
            data[:start] + chunk[1] + chunk[0] + chunk[2] + chunk[3],
            "decryption_failed",
        ),
        (
            "chunk_repeated",
            data[:start] + chunk[0] + chunk[0] + chunk[1] + chunk[2],
            "decryption_failed",
        ),
        (
            "byte_flipped_in_chunk",
            data[:start] + bytes([chunk[0][0] ^ 1]) + data[start + 1 :],
            "decryption_failed",
        ),
        ("chunk_size_edited", data[:8] + bytes([17]) + data[9:], "decryption_failed"),
        ("version_2", data[:4] + b"\x02" + data[5:], "unsupported_version"),
        ("wrong_magic", b"XXXX" + data[4:], "invalid_envelope"),
    ]
    return {
        "format": "rounds stream v1",
        "generator": "tests/vectors/generate.py",
        "deterministic": False,
        "key": b64encode(bytes(key)),
        "chunk_size": STREAM_CHUNK_SIZE,
        "valid": valid,
        "invalid": [
            {"name": name, "stream": b64encode(stream), "error": error}
            for name, stream, error in invalid
        ],
    }


# --- backup.json ----------------------------------------------------------------

RECOVERY_SECRET = "7K3M-9XQ2-PA4T-H8ZC-W1RB-5N6D-YEFG"
PASSPHRASE = "Correct horse, battery staple 42"


def build_backup() -> dict[str, Any]:
    alice = persona("nurse_alice")
    cases = []
    for name, secret, user_chosen, opened_with in [
        ("generated_secret", RECOVERY_SECRET, False, "7k3m 9xq2 pa4t h8zc w1rb 5n6d yefg"),
        ("user_passphrase", PASSPHRASE, True, "  " + PASSPHRASE + "\n"),
    ]:
        salt = fixed_bytes(f"backup-salt/{name}", 16)
        nonce = fixed_bytes(f"backup-nonce/{name}", 24)
        blob = seal_backup(
            alice,
            secret,
            user_chosen=user_chosen,
            opslimit=BACKUP_OPSLIMIT,
            memlimit=BACKUP_MEMLIMIT,
            salt=salt,
            nonce=nonce,
        )
        cases.append(
            {
                "name": name,
                "identity": "nurse_alice",
                "secret": secret,
                "user_chosen": user_chosen,
                "also_opens_with": opened_with,
                "opslimit": BACKUP_OPSLIMIT,
                "memlimit": BACKUP_MEMLIMIT,
                "salt": b64encode(salt),
                "nonce": b64encode(nonce),
                "blob": b64encode(blob),
            }
        )
    blob = cases[0]["blob"]
    raw = base64.b64decode(blob)
    invalid = [
        ("wrong_secret", blob, "7K3M-9XQ2-PA4T-H8ZC-W1RB-5N6D-YEFH", "wrong_passphrase"),
        (
            "salt_byte_flipped",
            b64encode(raw[:10] + bytes([raw[10] ^ 1]) + raw[11:]),
            RECOVERY_SECRET,
            "wrong_passphrase",
        ),
        (
            "ciphertext_byte_flipped",
            b64encode(raw[:-1] + bytes([raw[-1] ^ 1])),
            RECOVERY_SECRET,
            "wrong_passphrase",
        ),
        ("version_2", b64encode(b"\x02" + raw[1:]), RECOVERY_SECRET, "unsupported_version"),
        ("truncated", b64encode(raw[:-1]), RECOVERY_SECRET, "invalid_envelope"),
    ]
    return {
        "format": "rounds key backup v1",
        "generator": "tests/vectors/generate.py",
        "deterministic": True,
        "identities": identities("nurse_alice"),
        "valid": cases,
        "invalid": [
            {"name": name, "blob": b, "secret": secret, "error": error}
            for name, b, secret, error in invalid
        ],
    }


BUILDERS = {
    "envelope.json": build_envelope,
    "wrap.json": build_wrap,
    "statement.json": build_statement,
    "stream.json": build_stream,
    "backup.json": build_backup,
}


def dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for filename, build in BUILDERS.items():
        (HERE / filename).write_text(dump(build()), encoding="utf-8")
        print(f"wrote tests/vectors/{filename}")


if __name__ == "__main__":
    main()
