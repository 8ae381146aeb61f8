"""Known answers of libsodium itself (tests/crypto/data/README.md).

These pin the primitive calls Rounds makes, exactly as core/crypto makes
them, before Rounds' own vectors (test_vectors.py) build on them.
"""

import json
from pathlib import Path

import nacl.bindings as b
import nacl.exceptions
import nacl.public
import nacl.pwhash.argon2id as argon2id
import pytest

DATA = Path(__file__).parent / "data"


def _sealed_boxes() -> list[tuple[bytes, bytes, bytes, bytes]]:
    rows = []
    for line in (DATA / "sealed_box_ref.txt").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        sk, pk, plain, cipher = line.split("\t")[:4]
        rows.append(
            (
                bytes.fromhex(sk),
                bytes.fromhex(pk),
                bytes.fromhex(plain.split(":")[1]),
                bytes.fromhex(cipher.split(":")[1]),
            )
        )
    return rows


@pytest.mark.parametrize("sk, pk, plaintext, ciphertext", _sealed_boxes())
def test_sealed_box_opens(sk, pk, plaintext, ciphertext):
    private = nacl.public.PrivateKey(sk)
    assert bytes(private.public_key) == pk
    assert nacl.public.SealedBox(private).decrypt(ciphertext) == plaintext


def test_sealed_box_file_has_vectors():
    assert len(_sealed_boxes()) >= 3


def _xchacha_blocks() -> list[dict[str, bytes]]:
    blocks: list[dict[str, bytes]] = []
    current: dict[str, bytes] = {}
    for line in (DATA / "xchacha20-poly1305-ietf_ref.txt").read_text().splitlines():
        if ":" not in line or line.startswith("#"):
            continue
        name, value = (part.strip() for part in line.split(":", 1))
        if name == "AEAD":
            if current:
                blocks.append(current)
            current = {}
            continue
        current[name] = bytes.fromhex(value)
    if current:
        blocks.append(current)
    return blocks


@pytest.mark.parametrize("vector", _xchacha_blocks())
def test_xchacha20poly1305_ietf(vector):
    sealed = b.crypto_aead_xchacha20poly1305_ietf_encrypt(
        vector["IN"], vector["AD"], vector["NONCE"], vector["KEY"]
    )
    assert sealed == vector["CT"] + vector["TAG"]
    opened = b.crypto_aead_xchacha20poly1305_ietf_decrypt(
        sealed, vector["AD"], vector["NONCE"], vector["KEY"]
    )
    assert opened == vector["IN"]


def test_xchacha20poly1305_ietf_refuses_a_flipped_tag():
    vector = _xchacha_blocks()[0]
    sealed = vector["CT"] + bytes([vector["TAG"][0] ^ 1]) + vector["TAG"][1:]
    with pytest.raises(nacl.exceptions.CryptoError):
        b.crypto_aead_xchacha20poly1305_ietf_decrypt(
            sealed, vector["AD"], vector["NONCE"], vector["KEY"]
        )


SECRETSTREAM = json.loads((DATA / "secretstream-test-vectors.json").read_text())


@pytest.mark.parametrize("vector", SECRETSTREAM, ids=lambda v: f"{len(v['chunks'])}-chunks")
def test_secretstream_pull(vector):
    state = b.crypto_secretstream_xchacha20poly1305_state()
    b.crypto_secretstream_xchacha20poly1305_init_pull(
        state, bytes.fromhex(vector["header"]), bytes.fromhex(vector["key"])
    )
    for chunk in vector["chunks"]:
        ad = bytes.fromhex(chunk["ad"]) if chunk["ad"] else None
        message, tag = b.crypto_secretstream_xchacha20poly1305_pull(
            state, bytes.fromhex(chunk["ciphertext"]), ad
        )
        assert message == bytes.fromhex(chunk["message"])
        assert tag == chunk["tag"]


def test_secretstream_tag_constants_match_the_vectors():
    # The vectors use TAG_MESSAGE (0), TAG_PUSH (2) and TAG_FINAL (3).
    assert b.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE == 0
    assert b.crypto_secretstream_xchacha20poly1305_TAG_FINAL == 3
    tags = {chunk["tag"] for vector in SECRETSTREAM for chunk in vector["chunks"]}
    assert {0, 3} <= tags


ARGON2ID = json.loads((DATA / "raw_argon2id_hashes.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("vector", ARGON2ID, ids=lambda v: v["salt"])
def test_argon2id_raw(vector):
    assert vector["construct"] == "argon2id" and vector["mode"] == "raw"
    digest = argon2id.kdf(
        vector["dgst_len"],
        vector["passwd"].encode(),
        vector["salt"].encode(),
        opslimit=vector["iters"],
        memlimit=vector["maxmem"] * 1024,  # the file gives KiB; PyNaCl takes bytes
    )
    assert digest.hex() == vector["pwhash"]
