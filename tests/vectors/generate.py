"""Regenerate Rounds' own crypto test vectors: python -m tests.vectors.generate

Writes identity.json, statement.json, keyversion.json, envelope.json,
wrap.json, stream.json, backup.json and consult.json (consult.py) beside
this file. docs/crypto.md
("Test vectors") documents every field.

identity.json, statement.json, keyversion.json, envelope.json and
backup.json are deterministic (fixed keys, nonces, salts and times; Ed25519
is deterministic): running this again gives the same bytes, and
tests/crypto/test_vectors.py checks that it does.
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

from core.crypto import (
    CONTEXT_ENVELOPE,
    CONTEXT_KEY_VERSION,
    CONTEXT_STATEMENT,
    CONTEXT_WRAP,
    GENESIS,
    ChainHead,
    FileKey,
    IdentityKeyPair,
    KeyVersionRecord,
    MembershipStatement,
    RoomKey,
    SignedKeyVersion,
    SignedStatement,
    encrypt_message,
    encrypt_stream,
    make_key_version,
    replay_membership_chain,
    seal_backup,
    sign_statement,
    wrap_room_key,
)
from core.crypto.encoding import b64encode, canonical_json
from core.crypto.roomkeys import WrapRecord

HERE = Path(__file__).resolve().parent

PERSONAS = (
    "nurse_alice",
    "surgeon_bob",
    "surgeon_bob_new_phone",
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


def room_key(version: int = 3) -> RoomKey:
    return RoomKey(fixed_bytes(f"room-key/12/{version}"), department=12, version=version)


def room_key_entry(key: RoomKey) -> dict[str, Any]:
    return {
        "department": key.department,
        "version": key.version,
        "key": b64encode(bytes(key)),
        "commitment": b64encode(key.commitment),
    }


# --- identity.json --------------------------------------------------------------

X25519_P = 2**255 - 19


def _x25519_bytes(value: int) -> bytes:
    return value.to_bytes(32, "little")


def build_identity() -> dict[str, Any]:
    alice = persona("nurse_alice").public.to_dict()
    x = base64.b64decode(alice["x25519"])
    high_bit = bytes(x[:31]) + bytes([x[31] | 0x80])
    invalid = [
        ("x25519_top_bit_set", {**alice, "x25519": b64encode(high_bit)}, "invalid_key"),
        (
            "x25519_equal_to_p",
            {**alice, "x25519": b64encode(_x25519_bytes(X25519_P))},
            "invalid_key",
        ),
        (
            "x25519_p_plus_nine",
            {**alice, "x25519": b64encode(_x25519_bytes(X25519_P + 9))},
            "invalid_key",
        ),
        ("x25519_zero", {**alice, "x25519": b64encode(bytes(32))}, "invalid_key"),
        ("x25519_one", {**alice, "x25519": b64encode(_x25519_bytes(1))}, "invalid_key"),
        (
            "ed25519_identity_point",
            {**alice, "ed25519": b64encode(b"\x01" + bytes(31))},
            "invalid_key",
        ),
        ("x25519_too_short", {**alice, "x25519": b64encode(x[:31])}, "invalid_envelope"),
        ("extra_key", {**alice, "extra": alice["x25519"]}, "invalid_envelope"),
    ]
    return {
        "format": "rounds public identity",
        "generator": "tests/vectors/generate.py",
        "deterministic": True,
        "identities": identities(*PERSONAS),
        "invalid_public": [
            {"name": name, "public": public, "error": error} for name, public, error in invalid
        ],
    }


# --- statement.json -------------------------------------------------------------

DEPARTMENT = 12
USERS = {"nurse_alice": 7, "surgeon_bob": 8, "head_carol": 3}
# (kind, subject, key of the subject, role, issued_at, signer, key replaced)
CHAIN_STEPS = [
    ("admit", "head_carol", "head_carol", "head", "2025-01-06T08:00:00Z", None, None),
    ("admit", "nurse_alice", "nurse_alice", "member", "2025-01-06T08:05:00Z", "head_carol", None),
    (
        "admit",
        "surgeon_bob",
        "surgeon_bob",
        "member",
        "2025-01-06T08:06:00.250Z",
        "head_carol",
        None,
    ),
    ("role", "surgeon_bob", "surgeon_bob", "head", "2025-02-01T09:00:00+01:00", "head_carol", None),
    ("remove", "nurse_alice", "nurse_alice", "member", "2025-03-01T12:00:00Z", "surgeon_bob", None),
    (
        "replace",
        "surgeon_bob",
        "surgeon_bob_new_phone",
        "head",
        "2025-03-02T07:30:00Z",
        "head_carol",
        "surgeon_bob",
    ),
]


def _statement(
    seq: int,
    prev: str,
    kind: str,
    subject: str,
    subject_key: str,
    role: str,
    issued_at: str,
    signer: str | None,
    replaces: str | None = None,
    *,
    signer_key: str | None = None,
) -> SignedStatement:
    signing = persona(signer_key or signer or "institution_admin")
    statement = MembershipStatement(
        department=DEPARTMENT,
        seq=seq,
        prev=prev,
        kind=kind,  # type: ignore[arg-type]
        subject_user=USERS[subject],
        subject_fingerprint=persona(subject_key).fingerprint,
        replaces=None if replaces is None else persona(replaces).fingerprint,
        role=role,  # type: ignore[arg-type]
        issued_at=issued_at,
        signer_user=None if signer is None else USERS[signer],
        signer_fingerprint=signing.fingerprint,
    )
    return sign_statement(statement, signing)


def reference_chain() -> list[SignedStatement]:
    chain: list[SignedStatement] = []
    for kind, subject, key, role, issued_at, signer, replaces in CHAIN_STEPS:
        prev = chain[-1].hash if chain else GENESIS
        chain.append(
            _statement(len(chain) + 1, prev, kind, subject, key, role, issued_at, signer, replaces)
        )
    return chain


def chain_keys() -> list:
    return [persona(name).public for name in PERSONAS if name != "institution_admin"]


def build_statement() -> dict[str, Any]:
    chain = reference_chain()
    dicts = [signed.to_dict() for signed in chain]
    replayed = replay_membership_chain(
        chain, admin_key=persona("institution_admin").public, keys=chain_keys()
    )
    h = [signed.hash for signed in chain]

    def forged(seq: int, kind: str, subject: str, key: str, role: str, signer, **extra):
        prev = h[seq - 2] if seq > 1 else GENESIS
        return _statement(
            seq, prev, kind, subject, key, role, "2025-01-06T09:00:00Z", signer, **extra
        ).to_dict()

    edited = json.loads(json.dumps(dicts[1]))
    edited["statement"]["role"] = "head"
    wrong_prev = _statement(
        2,
        h[1],
        "admit",
        "nurse_alice",
        "nurse_alice",
        "member",
        "2025-01-06T08:05:00Z",
        "head_carol",
    ).to_dict()
    went_back = _statement(
        2,
        h[0],
        "admit",
        "nurse_alice",
        "nurse_alice",
        "member",
        "2025-01-05T08:05:00Z",
        "head_carol",
    ).to_dict()
    invalid_chains = [
        (
            "first_head_not_by_admin",
            [forged(1, "admit", "head_carol", "head_carol", "head", "head_carol")],
            "bad_signature",
            0,
        ),
        ("seq_gap", [dicts[0], dicts[2]], "invalid_envelope", 1),
        ("statement_left_out_of_the_middle", [*dicts[:3], *dicts[4:]], "invalid_envelope", 3),
        ("prev_not_the_hash_before", [dicts[0], wrong_prev], "invalid_envelope", 1),
        ("issued_at_goes_back", [dicts[0], went_back], "invalid_envelope", 1),
        ("statement_edited", [dicts[0], edited], "bad_signature", 1),
        (
            "member_signs_an_admission",
            [*dicts[:3], forged(4, "admit", "head_carol", "head_carol", "head", "nurse_alice")],
            "bad_signature",
            3,
        ),
        (
            "admin_key_when_a_head_exists",
            [*dicts[:2], forged(3, "admit", "surgeon_bob", "surgeon_bob", "head", None)],
            "bad_signature",
            2,
        ),
        (
            "admin_key_replaces_a_members_key",
            [
                *dicts[:3],
                forged(
                    4,
                    "replace",
                    "nurse_alice",
                    "surgeon_bob_new_phone",
                    "member",
                    None,
                    replaces="nurse_alice",
                ),
            ],
            "bad_signature",
            3,
        ),
        (
            "replace_names_another_old_key",
            [
                *dicts[:3],
                forged(
                    4,
                    "replace",
                    "nurse_alice",
                    "surgeon_bob_new_phone",
                    "member",
                    "head_carol",
                    replaces="surgeon_bob",
                ),
            ],
            "invalid_envelope",
            3,
        ),
        (
            "two_members_one_key",
            [*dicts[:2], forged(3, "admit", "surgeon_bob", "nurse_alice", "member", "head_carol")],
            "invalid_envelope",
            2,
        ),
        (
            "signer_not_yet_head",
            [
                *dicts[:3],
                forged(4, "remove", "nurse_alice", "nurse_alice", "member", "surgeon_bob"),
            ],
            "bad_signature",
            3,
        ),
    ]
    fp = {name: persona(name).fingerprint for name in PERSONAS}
    return {
        "format": "rounds membership statement v2",
        "generator": "tests/vectors/generate.py",
        "deterministic": True,
        "identities": identities(*PERSONAS),
        "users": dict(USERS),
        "admin_identity": "institution_admin",
        "chain": [
            {
                "signer_identity": step[5] or "institution_admin",
                "signed": signed.to_dict(),
                "signed_bytes": b64encode(CONTEXT_STATEMENT + signed.statement.signed_bytes()),
                "hash": signed.hash,
            }
            for step, signed in zip(CHAIN_STEPS, chain, strict=True)
        ],
        "head": replayed.head.to_dict(),
        "members_after_chain": {
            str(user): [member.role, member.fingerprint]
            for user, member in sorted(replayed.members.items())
        },
        # For chosen points: every member then, with role and key (user id as a string).
        "members_at": {
            str(seq): {
                str(user): [m.role, m.fingerprint]
                for user in sorted(USERS.values())
                if (m := replayed.member_at(user, seq)) is not None
            }
            for seq in (0, 1, 3, 4, 5, 6)
        },
        "last_exclusion_at": {str(seq): replayed.last_exclusion_at(seq) for seq in range(7)},
        "fingerprints": fp,
        "invalid_chains": [
            {"name": name, "chain": statements, "error": error, "statement_index": index}
            for name, statements, error, index in invalid_chains
        ],
    }


# --- keyversion.json ------------------------------------------------------------


def _version(
    version: int, seq: int, creator: str, *, user: str | None = None, hash_: str | None = None
) -> SignedKeyVersion:
    chain = reference_chain()
    head = ChainHead(seq, hash_ or (chain[seq - 1].hash if seq else GENESIS))
    return make_key_version(
        room_key(version), head=head, creator_user=USERS[user or creator], creator=persona(creator)
    )


def build_keyversion() -> dict[str, Any]:
    v1 = _version(1, 3, "head_carol")
    v2 = _version(2, 6, "surgeon_bob_new_phone", user="surgeon_bob")
    edited = v1.to_dict()
    edited["record"]["version"] = 5
    claimed = KeyVersionRecord(
        **{
            **v1.record.__dict__,
            "creator_fingerprint": persona("nurse_alice").fingerprint,
            "creator_user": USERS["nurse_alice"],
        }
    )
    signed_by_other = SignedKeyVersion(
        claimed, persona("head_carol").sign(CONTEXT_KEY_VERSION, claimed.signed_bytes())
    )
    invalid = [
        ("creator_removed_before", _version(3, 5, "nurse_alice"), "key_version_unauthorized"),
        (
            "creator_with_replaced_key",
            _version(3, 6, "surgeon_bob"),
            "key_version_unauthorized",
        ),
        (
            "head_beyond_the_chain",
            _version(3, 7, "head_carol", hash_="ab" * 32),
            "membership_withheld",
        ),
        ("head_forked", _version(3, 4, "head_carol", hash_="cd" * 32), "membership_fork"),
        ("signed_by_someone_else", signed_by_other, "bad_signature"),
    ]
    return {
        "format": "rounds key version record v2",
        "generator": "tests/vectors/generate.py",
        "deterministic": True,
        "chain": "statement.json: its chain, admin_identity and identities",
        "room_keys": {str(v): room_key_entry(room_key(v)) for v in (1, 2, 3, 5)},
        "valid": [
            {
                "name": "by_carol_at_statement_3",
                "signed": v1.to_dict(),
                "signed_bytes": b64encode(CONTEXT_KEY_VERSION + v1.record.signed_bytes()),
                "current": False,
                "stale_error": "key_version_stale",
            },
            {
                "name": "by_bob_with_his_new_key_at_statement_6",
                "signed": v2.to_dict(),
                "signed_bytes": b64encode(CONTEXT_KEY_VERSION + v2.record.signed_bytes()),
                "current": True,
                "stale_error": None,
            },
        ],
        "invalid": [
            {"name": name, "signed": signed.to_dict(), "error": error}
            for name, signed, error in invalid
        ]
        + [{"name": "record_edited", "signed": edited, "error": "bad_signature"}],
        "commitment_mismatch": {
            "record": "by_carol_at_statement_3",
            "room_key_version": 2,
            "error": "key_commitment_mismatch",
        },
    }


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


ENVELOPE_HEAD = ChainHead(4, "4e" * 32)
SENT_AT = "2025-03-01T09:15:00.000Z"


def _seal(
    plaintext: bytes,
    label: str,
    *,
    key: RoomKey,
    signer: str,
    thread: int = 101,
    sender: int = 7,
    msg_id: str,
    head: ChainHead = ENVELOPE_HEAD,
) -> dict[str, Any]:
    return encrypt_message(
        plaintext,
        room_key=key,
        head=head,
        thread=thread,
        sender=sender,
        client_msg_id=msg_id,
        signer=persona(signer),
        sent_at=SENT_AT,
        nonce=fixed_bytes(f"envelope-nonce/{label}", 24),
    )


def _in_chain_cases() -> list[dict[str, Any]]:
    """Envelopes read against statement.json's chain and keyversion.json's records."""
    chain = reference_chain()
    at = {seq: ChainHead(seq, chain[seq - 1].hash) for seq in range(1, 7)}
    bob = USERS["surgeon_bob"]
    alice = USERS["nurse_alice"]
    cases = [
        ("bob_at_statement_6_under_version_2", "surgeon_bob_new_phone", bob, at[6], 2, None),
        # A removed member can still sign an envelope dated before the removal under
        # a version they held: it is shown as written then (docs/crypto.md, limits).
        ("alice_at_statement_3_under_version_1", "nurse_alice", alice, at[3], 1, None),
        ("alice_after_her_removal", "nurse_alice", alice, at[6], 2, "sender_not_member"),
        (
            "bob_signs_with_a_key_not_yet_admitted",
            "surgeon_bob_new_phone",
            bob,
            at[3],
            1,
            "bad_signature",
        ),
        (
            "bob_after_a_removal_under_version_1",
            "surgeon_bob_new_phone",
            bob,
            at[6],
            1,
            "key_version_stale",
        ),
        ("bob_before_version_2_was_made", "surgeon_bob", bob, at[4], 2, "invalid_envelope"),
        (
            "head_beyond_the_chain",
            "surgeon_bob_new_phone",
            bob,
            ChainHead(7, "ab" * 32),
            2,
            "membership_withheld",
        ),
        (
            "head_forked",
            "surgeon_bob_new_phone",
            bob,
            ChainHead(6, "cd" * 32),
            2,
            "membership_fork",
        ),
    ]
    out = []
    for name, signer, sender, head, version, error in cases:
        plaintext = f"{name}".encode()
        envelope = _seal(
            plaintext,
            f"in-chain/{name}",
            key=room_key(version),
            signer=signer,
            sender=sender,
            msg_id=f"chain-{len(out):04d}",
            head=head,
        )
        out.append(
            {
                "name": name,
                "envelope": envelope,
                "key_version": version,
                "plaintext": None if error else b64encode(plaintext),
                "error": error,
            }
        )
    # Committing to another key than the version's record, signed by its sender.
    envelope = _seal(
        b"another key",
        "in-chain/commitment",
        key=RoomKey(fixed_bytes("another key"), department=12, version=2),
        signer="surgeon_bob_new_phone",
        sender=bob,
        msg_id="chain-commitment",
        head=at[6],
    )
    out.append(
        {
            "name": "committed_to_another_key",
            "envelope": envelope,
            "key_version": 2,
            "plaintext": None,
            "error": "key_commitment_mismatch",
        }
    )
    return out


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
        # A correction of short_text: `corrects` names its client_msg_id, in the AD.
        ("correction", b"Bed 4: obs stable, BP 125/80.", 101, 7, "msg-0005-correction"),
    ]
    corrects = {"correction": "msg-0001-short"}
    valid = []
    for index, (name, plaintext, thread, sender, msg_id) in enumerate(cases):
        nonce = fixed_bytes(f"envelope-nonce/{index}", 24)
        envelope = encrypt_message(
            plaintext,
            room_key=key,
            head=ENVELOPE_HEAD,
            thread=thread,
            sender=sender,
            client_msg_id=msg_id,
            signer=alice,
            sent_at=SENT_AT,
            nonce=nonce,
            corrects=corrects.get(name),
        )
        ad = canonical_json(
            {k: v for k, v in envelope["header"].items() if k not in ("nonce", "sig")}
        )
        valid.append(
            {
                "name": name,
                **({"corrects": corrects[name]} if name in corrects else {}),
                "sender_identity": "nurse_alice",
                "plaintext": b64encode(plaintext),
                "thread": thread,
                "sender": sender,
                "client_msg_id": msg_id,
                "chain_head": ENVELOPE_HEAD.to_dict(),
                "sent_at": SENT_AT,
                "nonce": b64encode(nonce),
                "ad": ad.decode("utf-8"),
                "envelope": envelope,
            }
        )

    base = valid[1]["envelope"]
    header = base["header"]
    correction = valid[4]["envelope"]
    correction_header = correction["header"]
    other_version = RoomKey(bytes(key), department=12, version=4)
    other_key = RoomKey(fixed_bytes("another room key"), department=12, version=3)
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
            "key_commitment_edited",
            {**base, "header": {**header, "key_commitment": b64encode(other_key.commitment)}},
            "bad_signature",
        ),
        ("chain_seq_edited", {**base, "header": {**header, "chain_seq": 5}}, "bad_signature"),
        (
            "chain_head_edited",
            {**base, "header": {**header, "chain_head": "4f" * 32}},
            "bad_signature",
        ),
        (
            "sent_at_edited",
            {**base, "header": {**header, "sent_at": "2025-03-01T09:16:00.000Z"}},
            "bad_signature",
        ),
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
        ("signed_by_someone_else", _resign(base, bob), "bad_signature"),
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
            "commitment_to_another_key_resigned_by_sender",
            _resign(
                {**base, "header": {**header, "key_commitment": b64encode(other_key.commitment)}},
                alice,
            ),
            "key_commitment_mismatch",
        ),
        (
            "other_key_version",
            _seal(
                b"for version 4",
                "other-version",
                key=other_version,
                signer="nurse_alice",
                msg_id="msg-0004-keyver",
            ),
            "decryption_failed",
        ),
        ("version_1", {**base, "header": {**header, "v": 1}}, "unsupported_version"),
        ("version_3", {**base, "header": {**header, "v": 3}}, "unsupported_version"),
        ("extra_header_key", {**base, "header": {**header, "x": 1}}, "invalid_envelope"),
        (
            "corrects_added",
            {**base, "header": {**header, "corrects": "msg-0000-empty"}},
            "bad_signature",
        ),
        (
            "corrects_edited",
            {**correction, "header": {**correction_header, "corrects": "msg-0000-empty"}},
            "bad_signature",
        ),
        (
            "corrects_removed",
            {
                **correction,
                "header": {k: v for k, v in correction_header.items() if k != "corrects"},
            },
            "bad_signature",
        ),
        (
            "corrects_is_a_number",
            {**correction, "header": {**correction_header, "corrects": 12345678}},
            "invalid_envelope",
        ),
        (
            "corrects_too_short",
            {**correction, "header": {**correction_header, "corrects": "short"}},
            "invalid_envelope",
        ),
        (
            "missing_header_key",
            {**base, "header": {k: v for k, v in header.items() if k != "chain_head"}},
            "invalid_envelope",
        ),
        ("room_is_a_string", {**base, "header": {**header, "room": "12"}}, "invalid_envelope"),
        ("room_is_true", {**base, "header": {**header, "room": True}}, "invalid_envelope"),
        ("chain_seq_negative", {**base, "header": {**header, "chain_seq": -1}}, "invalid_envelope"),
        (
            "chain_head_uppercase",
            {**base, "header": {**header, "chain_head": "4E" * 32}},
            "invalid_envelope",
        ),
        (
            "empty_chain_with_a_hash",
            {**base, "header": {**header, "chain_seq": 0}},
            "invalid_envelope",
        ),
        (
            "sent_at_without_offset",
            {**base, "header": {**header, "sent_at": "2025-03-01T09:15:00"}},
            "invalid_envelope",
        ),
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
        "format": "rounds envelope v2",
        "generator": "tests/vectors/generate.py",
        "deterministic": True,
        "identities": identities("nurse_alice", "surgeon_bob"),
        "room_key": room_key_entry(key),
        "valid": valid,
        "invalid": [
            {"name": name, "sender_identity": "nurse_alice", "envelope": env, "error": error}
            for name, env, error in invalid
        ],
        "in_chain": {
            "chain": "statement.json; key version records: keyversion.json's valid ones",
            "cases": _in_chain_cases(),
        },
    }


# --- wrap.json ------------------------------------------------------------------


def _forged_wrap(
    sealed_for: RoomKey,
    claimed: RoomKey,
    recipient: IdentityKeyPair,
    wrapper: IdentityKeyPair,
    *,
    commitment: bytes | None = None,
) -> WrapRecord:
    """A record whose signed fields claim `claimed` but whose sealed key is `sealed_for`.

    This is what a member who can sign, but should not be trusted, could
    make to move a wrap to another room or version, or to hand some members
    another key under a version's commitment.
    """
    honest = wrap_room_key(sealed_for, recipient=recipient.public, wrapper=wrapper)
    commitment = commitment if commitment is not None else claimed.commitment
    fields = {
        "v": 2,
        "department": claimed.department,
        "version": claimed.version,
        "commitment": b64encode(commitment),
        "recipient_fp": honest.recipient_fp,
        "wrapper_fp": honest.wrapper_fp,
    }
    signature = wrapper.sign(CONTEXT_WRAP, canonical_json(fields) + honest.sealed)
    return WrapRecord(
        department=claimed.department,
        version=claimed.version,
        commitment=commitment,
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
    another_key = RoomKey(fixed_bytes("another room key"), department=12, version=3)
    split = _forged_wrap(
        another_key, key, recipient=alice, wrapper=carol, commitment=key.commitment
    )
    invalid = [
        ("department_edited", {**honest, "department": 13}, "bad_signature"),
        ("version_edited", {**honest, "version": 4}, "bad_signature"),
        (
            "commitment_edited",
            {**honest, "commitment": b64encode(another_key.commitment)},
            "bad_signature",
        ),
        (
            "sealed_byte_flipped",
            {**honest, "sealed": _flip_b64(honest["sealed"], 40)},
            "bad_signature",
        ),
        ("sig_byte_flipped", {**honest, "sig": _flip_b64(honest["sig"], 0)}, "bad_signature"),
        ("moved_to_other_room_by_signer", moved.to_dict(), "invalid_envelope"),
        ("moved_to_other_version_by_signer", other_version.to_dict(), "invalid_envelope"),
        ("another_key_under_the_commitment", split.to_dict(), "key_commitment_mismatch"),
        ("version_1", {**honest, "v": 1}, "unsupported_version"),
        ("extra_key", {**honest, "extra": 1}, "invalid_envelope"),
    ]
    return {
        "format": "rounds wrap record v2",
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
    "identity.json": build_identity,
    "statement.json": build_statement,
    "keyversion.json": build_keyversion,
    "envelope.json": build_envelope,
    "wrap.json": build_wrap,
    "stream.json": build_stream,
    "backup.json": build_backup,
}


def dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    from .consult import build_consult  # it builds on this module's personas

    for filename, build in {**BUILDERS, "consult.json": build_consult}.items():
        (HERE / filename).write_text(dump(build()), encoding="utf-8")
        print(f"wrote tests/vectors/{filename}")


if __name__ == "__main__":
    main()
