"""How fast core.crypto is: python -m bench.crypto prints one JSON line.

- v2 envelope encrypt+sign and open (verify against the sender's place in
  the membership chain and the key version's record, then decrypt) rates
  for a 1 KiB message: the client's cost per message sent or shown;
- replaying a department's membership chain of 200 statements (one head
  admitting 150 members, 30 removals and 19 key replacements) from the
  admin key, what a client pays each time it fetches and verifies a
  department's chain, and verifying a key version record against it;
- signature verification alone (`verify_envelope`), the server's cost per
  message posted, next to a bare PyNaCl Ed25519 verification of the same
  size for comparison;
- streaming encryption throughput for 4 MiB and 50 MiB in-memory files,
  against raw PyNaCl secretstream calls on the same data in the same run
  (the ratio is core.crypto's overhead: the SHA-256 of the ciphertext that
  the message body carries, reported alone as `sha256_mb_s`, runs on a
  second thread, so what is left is starting that thread, handing it
  batches, hashing the last batch after the last chunk, then framing and
  read-ahead). This needs a second idle core: with the other core busy,
  hashing in the caller's thread would be faster;
- the traced peak memory of decrypting, and of encrypting, the 4 MiB and
  50 MiB streams, which should not grow with the file: each holds a few
  chunks. Encryption also holds the batches the hashing thread has not yet
  hashed (at most two of 128 KiB), so its peak moves a little with thread
  timing, not with the file.

Pure CPU, no Django, no servers; safe to run anywhere. Timings vary with
the machine; the memory figures do not.
"""

import hashlib
import io
import json
import time
import tracemalloc
from collections.abc import Callable
from typing import Any, BinaryIO

import nacl.bindings as b
import nacl.signing

from core.crypto import (
    CHUNK_SIZE,
    GENESIS,
    FileKey,
    IdentityKeyPair,
    MembershipChain,
    MembershipStatement,
    RoomKey,
    decrypt_stream,
    encrypt_message,
    encrypt_stream,
    make_key_version,
    open_envelope,
    replay_membership_chain,
    sign_statement,
    verify_envelope,
    verify_key_version,
)

MiB = 1024 * 1024


def _rate(func: Callable[[], object], seconds: float = 1.0) -> float:
    """Calls per second of `func`, measured over about `seconds`."""
    func()  # warm up
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(50):
            func()
        count += 50
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


def _best_of(func: Callable[[], object], runs: int = 3) -> float:
    """The fastest of `runs` timings of `func`, in seconds."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - started)
    return best


class _NullSink(io.RawIOBase):
    """Counts and drops what is written, so the sink does not hold the file."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.size += len(data)
        return len(data)


def _raw_secretstream(key: bytes, data: bytes, sink: BinaryIO) -> None:
    """The least PyNaCl code that encrypts `data` in CHUNK_SIZE pieces."""
    state = b.crypto_secretstream_xchacha20poly1305_state()
    sink.write(b.crypto_secretstream_xchacha20poly1305_init_push(state, key))
    view = memoryview(data)
    last = max(len(data) - 1, 0) // CHUNK_SIZE * CHUNK_SIZE
    for offset in range(0, last + 1, CHUNK_SIZE):
        tag = (
            b.crypto_secretstream_xchacha20poly1305_TAG_FINAL
            if offset == last
            else b.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
        )
        sink.write(
            b.crypto_secretstream_xchacha20poly1305_push(
                state, bytes(view[offset : offset + CHUNK_SIZE]), None, tag
            )
        )


def _traced_peak(func: Callable[[BinaryIO], object], source: BinaryIO) -> int:
    """Peak Python memory traced while `func(source)` runs (all threads)."""
    tracemalloc.start()
    try:
        func(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def _stream_figures(key: FileKey, size: int) -> dict[str, float]:
    data = bytes(size)  # content does not change the cost of a stream cipher
    ours = _best_of(lambda: encrypt_stream(key, io.BytesIO(data), _NullSink()))
    raw = _best_of(lambda: _raw_secretstream(bytes(key), data, _NullSink()))
    encrypted = io.BytesIO()
    encrypt_stream(key, io.BytesIO(data), encrypted)
    ciphertext = encrypted.getvalue()
    decrypt_s = _best_of(lambda: decrypt_stream(key, io.BytesIO(ciphertext), _NullSink()))

    peak = _traced_peak(lambda s: decrypt_stream(key, s, _NullSink()), io.BytesIO(ciphertext))
    encrypt_peak = _traced_peak(lambda s: encrypt_stream(key, s, _NullSink()), io.BytesIO(data))
    mb = size / 1e6
    return {
        "encrypt_mb_s": round(mb / ours, 1),
        "raw_pynacl_encrypt_mb_s": round(mb / raw, 1),
        "encrypt_vs_raw": round(raw / ours, 3),
        "decrypt_mb_s": round(mb / decrypt_s, 1),
        "decrypt_peak_bytes": peak,
        "encrypt_peak_bytes": encrypt_peak,
    }


def _one_head_chain(department: int, user: int, head: IdentityKeyPair) -> MembershipChain:
    """A department whose chain is one statement: `head` appointed by the admin key."""
    admin = IdentityKeyPair.generate()
    statement = MembershipStatement(
        department=department,
        seq=1,
        prev=GENESIS,
        kind="admit",
        subject_user=user,
        subject_fingerprint=head.fingerprint,
        replaces=None,
        role="head",
        issued_at="2026-01-05T08:00:00Z",
        signer_user=None,
        signer_fingerprint=admin.fingerprint,
    )
    return replay_membership_chain(
        [sign_statement(statement, admin)], admin_key=admin.public, keys=[head.public]
    )


def _long_chain(department: int, length: int = 200) -> tuple[list, IdentityKeyPair, list]:
    """A department's chain of `length` statements: a head appointed by the admin key,
    admissions, then removals and key replacements signed by the head."""
    admin, head = IdentityKeyPair.generate(), IdentityKeyPair.generate()
    keys = {1: head}
    chain: list = []

    def add(kind: str, user: int, key: IdentityKeyPair, role: str, signer, replaces=None):
        statement = MembershipStatement(
            department=department,
            seq=len(chain) + 1,
            prev=chain[-1].hash if chain else GENESIS,
            kind=kind,  # type: ignore[arg-type]
            subject_user=user,
            subject_fingerprint=key.fingerprint,
            replaces=replaces,
            role=role,  # type: ignore[arg-type]
            issued_at="2026-01-05T08:00:00Z",
            signer_user=None if signer is admin else 1,
            signer_fingerprint=signer.fingerprint,
        )
        chain.append(sign_statement(statement, signer))

    add("admit", 1, head, "head", admin)
    for user in range(2, 152):
        keys[user] = IdentityKeyPair.generate()
        add("admit", user, keys[user], "member", head)
    for user in range(2, 32):
        add("remove", user, keys[user], "member", head)
    while len(chain) < length:
        user = 32 + len(chain) % 100
        new = IdentityKeyPair.generate()
        add("replace", user, new, "member", head, replaces=keys[user].fingerprint)
        keys[user] = new
    every_key = [k.public for k in keys.values()]
    every_key += [IdentityKeyPair.generate().public]  # one the chain never names
    return chain, admin, every_key


def run() -> dict[str, Any]:
    alice = IdentityKeyPair.generate()
    chain = _one_head_chain(12, 7, alice)
    room_key = RoomKey.generate(department=12, version=3)
    record = make_key_version(room_key, head=chain.head, creator_user=7, creator=alice).record
    message = bytes(1024)

    def encrypt() -> dict[str, Any]:
        return encrypt_message(
            message,
            room_key=room_key,
            head=chain.head,
            thread=101,
            sender=7,
            client_msg_id="bench-0001-msg",
            signer=alice,
        )

    envelope = encrypt()
    sender_key = alice.public
    raw_signing = nacl.signing.SigningKey.generate()
    raw_signed = raw_signing.sign(bytes(1200))  # about an envelope's signed bytes
    raw_verify = raw_signing.verify_key
    results: dict[str, Any] = {
        "envelope_1kib_encrypt_sign_per_s": round(_rate(encrypt)),
        "envelope_1kib_verify_decrypt_per_s": round(
            _rate(lambda: open_envelope(envelope, chain=chain, record=record, room_key=room_key))
        ),
        "envelope_verify_only_per_s": round(
            _rate(lambda: verify_envelope(envelope, sender_key=sender_key))
        ),
        "raw_ed25519_verify_1kib_per_s": round(_rate(lambda: raw_verify.verify(raw_signed))),
        "chunk_size": CHUNK_SIZE,
    }
    statements, admin, known = _long_chain(12)

    def replay() -> MembershipChain:
        return replay_membership_chain(statements, admin_key=admin.public, keys=known)

    results["chain_200_statements_replay_ms"] = round(_best_of(replay) * 1000, 2)
    signed_version = make_key_version(room_key, head=chain.head, creator_user=7, creator=alice)
    results["key_version_verify_per_s"] = round(
        _rate(lambda: verify_key_version(signed_version, chain))
    )
    key = FileKey.generate()
    for label, size in (("4mib", 4 * MiB), ("50mib", 50 * MiB)):
        for name, value in _stream_figures(key, size).items():
            results[f"stream_{label}_{name}"] = value
    data = bytes(50 * MiB)
    results["sha256_mb_s"] = round(50 * MiB / 1e6 / _best_of(lambda: hashlib.sha256(data)), 1)
    results["stream_peak_ratio_50_vs_4"] = round(
        results["stream_50mib_decrypt_peak_bytes"] / results["stream_4mib_decrypt_peak_bytes"], 2
    )
    return results


if __name__ == "__main__":
    print(json.dumps(run()))
