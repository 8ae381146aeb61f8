"""The tree over seal hashes is RFC 9162's, so anyone's verifier agrees with ours.

The reference leaves, roots and inclusion paths are the Certificate
Transparency test vectors (RFC 6962, as published in transparency-dev/merkle
testonly/constants.go), used as data.
"""

import hashlib
import random

import nacl.signing
import pytest

from core.crypto.audit_proof import (
    CHECKPOINT_V1,
    CHECKPOINT_V2,
    EMPTY_ROOT,
    canonical_record,
    chain_hash,
    checkpoint_signature_ok,
    checkpoint_signed_bytes,
    inclusion_path,
    leaf_hash,
    roots_at,
    split,
    tree_root,
    verify_inclusion,
)

LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
HASHES = [leaf_hash(leaf) for leaf in LEAVES]


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 9162's recursive definition, written plainly, to check the one-pass version."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return hashlib.sha256(
        b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])
    ).digest()


def in_memory(leaves: list[bytes]):
    return lambda lo, hi: reference_root(leaves[lo:hi])


def test_roots_match_the_reference_vectors_at_every_size():
    roots = roots_at(HASHES, range(len(HASHES) + 1))
    assert [roots[n].hex() for n in range(len(HASHES) + 1)] == ROOTS
    assert tree_root([]) == EMPTY_ROOT


@pytest.mark.parametrize(("index", "size"), sorted(INCLUSION))
def test_inclusion_paths_match_the_reference_vectors(index, size):
    path = inclusion_path(index, size, in_memory(HASHES[:size]))
    assert [p.hex() for p in path] == INCLUSION[(index, size)]
    assert verify_inclusion(index, size, HASHES[index], path, bytes.fromhex(ROOTS[size]))


def test_the_split_is_the_largest_power_of_two_below_not_the_midpoint():
    expected = {2: 1, 3: 2, 4: 2, 5: 4, 8: 4, 9: 8, 1000: 512, (1 << 40) + 1: 1 << 40}
    assert {n: split(n) for n in expected} == expected


def test_every_leaf_of_every_size_verifies_and_every_alteration_is_refused():
    rng = random.Random(7)
    leaves = [leaf_hash(rng.randbytes(32)) for _ in range(40)]
    roots = roots_at(leaves, range(1, 41))
    for size in range(1, 41):
        root = roots[size]
        assert root == reference_root(leaves[:size])
        for index in range(size):
            path = inclusion_path(index, size, in_memory(leaves[:size]))
            assert verify_inclusion(index, size, leaves[index], path, root)
            other = leaves[(index + 1) % size]
            # The size is not varied: a path can fit two sizes (leaf 0 of 3 and of 4);
            # the verifier takes it from the signed checkpoint, never from the proof.
            refused = [
                verify_inclusion(index, size, other, path, root) and other != leaves[index],
                verify_inclusion(index, size, leaves[index], [*path, root], root),
                verify_inclusion(index, size, leaves[index], path, leaf_hash(b"x")),
            ]
            if path:
                bent = [bytes([path[0][0] ^ 1]) + path[0][1:], *path[1:]]
                refused.append(verify_inclusion(index, size, leaves[index], bent, root))
                refused.append(verify_inclusion(index, size, leaves[index], path[:-1], root))
            if size > 1:
                wrong = (index + 1) % size
                refused.append(verify_inclusion(wrong, size, leaves[index], path, root))
            assert not any(refused), (index, size)


def test_an_index_outside_the_tree_is_refused():
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_path(3, 3, in_memory(HASHES[:3]))
    assert not verify_inclusion(-1, 3, HASHES[0], [], EMPTY_ROOT)
    assert not verify_inclusion(0, 0, HASHES[0], [], EMPTY_ROOT)


def test_chain_hash_covers_place_previous_and_canonical_bytes():
    record = {"id": 4, "at": "2026-12-05T10:00:00.000000+00:00", "data": {"case": 1, "é": "ü"}}
    raw = canonical_record(record)
    expected_json = '{"at":"2026-12-05T10:00:00.000000+00:00","data":{"case":1,"é":"ü"},"id":4}'
    assert raw == expected_json.encode()
    digest = chain_hash(3, "0" * 64, raw)
    expected = hashlib.sha256(b"rounds-audit-v1\n3\n" + b"0" * 64 + b"\n" + raw).hexdigest()
    assert digest == expected
    assert chain_hash(4, "0" * 64, raw) != digest
    assert chain_hash(3, "1" * 64, raw) != digest


def _signed(key: nacl.signing.SigningKey, **fields) -> dict:
    fields["key"] = bytes(key.verify_key).hex()
    fields["signature"] = key.sign(checkpoint_signed_bytes(fields)).signature.hex()
    return fields


def test_a_checkpoint_verifies_only_unaltered_and_under_its_own_key():
    key, other = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    base = {"format": CHECKPOINT_V2, "seq": 9, "hash": "a" * 64, "count": 9}
    checkpoint = _signed(key, **base, at="2026-12-05T10:00:00+00:00", root="b" * 64)
    assert checkpoint_signature_ok(checkpoint, bytes(key.verify_key))
    refused = [
        checkpoint_signature_ok(checkpoint, bytes(other.verify_key)),
        checkpoint_signature_ok({**checkpoint, "root": "c" * 64}, bytes(key.verify_key)),
        checkpoint_signature_ok({**checkpoint, "seq": 8}, bytes(key.verify_key)),
        checkpoint_signature_ok({**checkpoint, "format": CHECKPOINT_V1}, bytes(key.verify_key)),
        checkpoint_signature_ok({**checkpoint, "format": "other"}, bytes(key.verify_key)),
        checkpoint_signature_ok({**checkpoint, "signature": "zz"}, bytes(key.verify_key)),
    ]
    assert refused == [False] * len(refused)


def test_a_v1_checkpoint_signs_the_fields_it_always_signed():
    key = nacl.signing.SigningKey.generate()
    fields = {"format": CHECKPOINT_V1, "seq": 2, "hash": "a" * 64, "count": 2, "at": "t"}
    checkpoint = _signed(key, **fields)
    signed = checkpoint_signed_bytes(checkpoint)
    assert signed.startswith(b"rounds-audit-checkpoint-v1\0{")
    assert b"root" not in signed
    assert checkpoint_signature_ok(checkpoint, bytes(key.verify_key))
