"""Proving an audit entry to a signed checkpoint without showing anyone else's entries.

The audit chain (audit/models.py) links seal n to seal n-1 by hash, so proving
seal n by walking the chain to a checkpoint would need every entry in between:
other people's actions. A checkpoint therefore also signs the root of a
Merkle tree whose leaves are the seal hashes 1..seq (RFC 9162, section 2.1:
leaf = SHA-256(0x00 || seal hash), node = SHA-256(0x01 || left || right)).
An entry is then proved with its canonical record, its seal (seq, previous
hash, hash) and an inclusion path of about log2(seq) hashes, none of which
says anything about the entries they stand for.

Pure hashlib and PyNaCl: the server (audit/) and the offline verifier
(client/verify_export.py) share these definitions, so they cannot drift.
"""

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import nacl.exceptions
import nacl.signing

CHAIN_DOMAIN = "rounds-audit-v1"
CHECKPOINT_V1 = "rounds-audit-checkpoint-v1"
CHECKPOINT_V2 = "rounds-audit-checkpoint-v2"
# The fields each format signs, in the body (compact JSON, sorted keys).
PRUNE_V1 = "rounds-audit-prune-v1"
CHECKPOINT_FIELDS = {
    CHECKPOINT_V1: ("format", "seq", "hash", "count", "at", "key"),
    CHECKPOINT_V2: ("format", "seq", "hash", "count", "at", "key", "root"),
    # A prune of the chain's prefix up to seal `seq` (audit/prune.py): what went, signed.
    PRUNE_V1: ("format", "seq", "hash", "root", "removed", "before", "at", "key"),
}
# The fields of an entry the chain covers (AuditEvent.canonical).
RECORD_FIELDS = frozenset(
    {
        "id",
        "at",
        "actor_id",
        "actor_username",
        "action",
        "department_id",
        "object_type",
        "object_id",
        "data",
        "ip",
    }
)
EMPTY_ROOT = hashlib.sha256(b"").digest()


# --- The chain ----------------------------------------------------------------------


def canonical_record(record: Mapping[str, Any]) -> bytes:
    """The exact bytes a seal covers: the record as JSON, keys sorted, no spaces, UTF-8."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(seq: int, prev_hash: str, canonical: bytes) -> str:
    """Seal `seq`'s hash: its place, the previous seal's hash and the entry's bytes."""
    digest = hashlib.sha256()
    digest.update(f"{CHAIN_DOMAIN}\n{seq}\n{prev_hash}\n".encode())
    digest.update(canonical)
    return digest.hexdigest()


# --- The tree over seal hashes (RFC 9162, 2.1) ---------------------------------------


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(size: int) -> int:
    """The largest power of two below `size` (> 1): where the tree divides."""
    return 1 << ((size - 1).bit_length() - 1)


Frontier = list[tuple[int, bytes]]  # the perfect subtrees of the first n leaves: (width, hash)


def roots_at(
    leaf_hashes: Iterable[bytes],
    sizes: Iterable[int],
    frontier: Frontier | None = None,
) -> dict[int, bytes]:
    """The tree root after each of `sizes` leaves, in one pass over the leaves.

    A stack holds the perfect subtrees of the leaves so far (one per bit of the
    count): the frontier. The root of the first n leaves is that stack folded
    from the right. Given the frontier of a pruned prefix, the leaves continue
    after it, and the roots of every later size come out the same as if the
    prefix were still there. Sizes the leaves do not reach are missing.
    """
    wanted = set(sizes)
    stack: Frontier = list(frontier or [])
    count = sum(width for width, _ in stack)
    roots = {count: fold(stack)} if count in wanted else {}
    for leaf in leaf_hashes:
        count += 1
        append_leaf(stack, leaf)
        if count in wanted:
            roots[count] = fold(stack)
    return roots


def append_leaf(stack: Frontier, leaf: bytes) -> None:
    """Add one leaf hash to a frontier, merging equal-width subtrees (in place)."""
    width, digest = 1, leaf
    while stack and stack[-1][0] == width:
        digest = node_hash(stack.pop()[1], digest)
        width *= 2
    stack.append((width, digest))


def frontier_after(leaf_hashes: Iterable[bytes], frontier: Frontier | None = None) -> Frontier:
    """The frontier once `leaf_hashes` follow `frontier` (or the empty tree)."""
    stack: Frontier = list(frontier or [])
    for leaf in leaf_hashes:
        append_leaf(stack, leaf)
    return stack


def frontier_ranges(frontier: Frontier) -> dict[tuple[int, int], bytes]:
    """Each subtree of a frontier as the leaf range it covers, (lo, hi) -> hash."""
    ranges, lo = {}, 0
    for width, digest in frontier:
        ranges[(lo, lo + width)] = digest
        lo += width
    return ranges


def fold(stack: Frontier) -> bytes:
    """The tree root over a frontier's leaves."""
    if not stack:
        return EMPTY_ROOT
    digest = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        digest = node_hash(left, digest)
    return digest


def tree_root(leaf_hashes: list[bytes]) -> bytes:
    """The root of a whole list of leaf hashes (for tests and small trees)."""
    return roots_at(leaf_hashes, [len(leaf_hashes)]).get(len(leaf_hashes), EMPTY_ROOT)


def inclusion_path(index: int, size: int, subtree: Callable[[int, int], bytes]) -> list[bytes]:
    """The audit path of leaf `index` in a tree of `size` leaves (RFC 9162, 2.1.3.1),
    leaf to root. `subtree(lo, hi)` gives the root over leaves lo..hi-1, so the caller
    decides how to read them."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split(hi - lo)
        if index < lo + k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo += k
    path.reverse()
    return path


def verify_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    """RFC 9162, 2.1.3.2: does `path` lead from leaf `index` to `root` in a tree of `size`?"""
    if not 0 <= index < size:
        return False
    fn, sn, digest = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            digest = node_hash(sibling, digest)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            digest = node_hash(digest, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and digest == root


# --- Checkpoints --------------------------------------------------------------------


def checkpoint_signed_bytes(fields: Mapping[str, Any]) -> bytes:
    """What a checkpoint's signature covers: its format's domain, a zero byte, then its
    signed fields as compact JSON with sorted keys.

    Raises:
        KeyError: an unknown format, or a signed field missing.
    """
    names = CHECKPOINT_FIELDS[str(fields["format"])]
    body = json.dumps({name: fields[name] for name in names}, sort_keys=True, separators=(",", ":"))
    return f"{fields['format']}\0".encode() + body.encode()


def checkpoint_signature_ok(fields: Mapping[str, Any], public_key: bytes) -> bool:
    """The checkpoint is signed by `public_key` and names that key."""
    try:
        signature = bytes.fromhex(str(fields["signature"]))
        nacl.signing.VerifyKey(public_key).verify(checkpoint_signed_bytes(fields), signature)
    except (KeyError, TypeError, ValueError, nacl.exceptions.BadSignatureError):
        return False
    return fields.get("key") == public_key.hex()
