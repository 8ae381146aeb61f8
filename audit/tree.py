"""The Merkle tree over the seal hashes, read from the seal table in one bounded pass.

A checkpoint signs its root; an export proves its case's entries with inclusion
paths to it (core/crypto/audit_proof.py says why). The tree is not stored:
it is rebuilt from the seals, which are append-only and checked by
audit_verify, so there is nothing else to keep consistent. One pass reads
every seal hash up to the size once and keeps, per block of CHUNK seals, only
the block's root, plus the leaves of the blocks that hold an entry to prove
and of the last, unfinished block: memory stays at about size / CHUNK hashes.

After a prune of the chain's prefix (audit/prune.py, always a whole number
of blocks), the prefix's seals are gone; its frontier, kept in the prune's
anchor, stands for them: the tree's recursion only ever asks for a subtree
of the pruned part that is one of the frontier's.
"""

from collections.abc import Iterable, Iterator

from audit.models import AuditSeal, latest_prune
from core.crypto.audit_proof import (
    EMPTY_ROOT,
    frontier_ranges,
    inclusion_path,
    leaf_hash,
    node_hash,
    split,
    tree_root,
)

CHUNK = 1024  # a power of two: every block is then a whole subtree of the tree
READ_BATCH = 5000


class SealTreeError(Exception):
    """The seal table is not a gapless chain 1..size; audit_verify names where."""


def seal_leaves(size: int, first: int = 1) -> Iterator[bytes]:
    """Leaf hashes of seals first..size in order, read in batches."""
    after, expected = first - 1, first
    while after < size:
        rows = list(
            AuditSeal.objects.filter(seq__gt=after, seq__lte=size)
            .order_by("seq")
            .values_list("seq", "hash")[:READ_BATCH]
        )
        if not rows:
            break
        for seq, digest in rows:
            if seq != expected:
                raise SealTreeError(f"seal {expected} is missing")
            yield leaf_hash(bytes.fromhex(digest))
            expected += 1
        after = rows[-1][0]
    if expected != size + 1:
        raise SealTreeError(f"seal {expected} is missing")


class SealTree:
    """The tree over seals 1..size, able to prove the leaves of the blocks it kept."""

    def __init__(self, size: int, proving: Iterable[int] = (), chunk: int = CHUNK) -> None:
        self.size, self.chunk = size, chunk
        anchor = latest_prune()
        self.start = anchor.seq if anchor is not None and anchor.seq <= size else 0
        self.pruned = (
            frontier_ranges(anchor.frontier_hashes()) if anchor is not None and self.start else {}
        )
        if self.start % chunk:
            raise SealTreeError(f"the prune at seal {self.start} is not a whole block")
        kept = {(seq - 1) // chunk for seq in proving if self.start < seq <= size}
        self.block_roots: dict[int, bytes] = {}
        self.leaves: dict[int, list[bytes]] = {}  # block -> its leaves, for kept blocks
        block: list[bytes] = []
        index = self.start // chunk
        for leaf in seal_leaves(size, first=self.start + 1):
            block.append(leaf)
            if len(block) == chunk:
                self.block_roots[index] = tree_root(block)
                if index in kept:
                    self.leaves[index] = block
                block, index = [], index + 1
        if block:  # the last, unfinished block: always kept, the right edge needs it
            self.leaves[index] = block
        self._memo: dict[tuple[int, int], bytes] = {}

    def root(self) -> bytes:
        return EMPTY_ROOT if self.size == 0 else self.subtree(0, self.size)

    def path(self, seq: int) -> list[bytes]:
        """Seal `seq`'s inclusion path, leaf to root (its leaf is index seq - 1)."""
        return inclusion_path(seq - 1, self.size, self.subtree)

    def subtree(self, lo: int, hi: int) -> bytes:
        """The root over leaves lo..hi-1. The tree's recursion only asks for whole aligned
        blocks (or runs of them) and for ranges inside a kept block."""
        key = (lo, hi)
        if key not in self._memo:
            self._memo[key] = self._compute(lo, hi)
        return self._memo[key]

    def _compute(self, lo: int, hi: int) -> bytes:
        width = hi - lo
        if (lo, hi) in self.pruned:
            return self.pruned[(lo, hi)]
        if hi <= self.start:
            raise SealTreeError(f"leaves {lo}..{hi - 1} were pruned")
        if lo < self.start:  # across the prune's edge: split until each side is whole
            k = split(width)
            return node_hash(self.subtree(lo, lo + k), self.subtree(lo + k, hi))
        if width == 1 or (lo // self.chunk == (hi - 1) // self.chunk and width < self.chunk):
            block = self.leaves.get(lo // self.chunk)
            if block is None:
                raise SealTreeError(f"leaves {lo}..{hi - 1} were not kept")
            start = lo % self.chunk
            return tree_root(block[start : start + width])
        if lo % self.chunk == 0 and width % self.chunk == 0 and width & (width - 1) == 0:
            first = lo // self.chunk
            runs = range(first, first + width // self.chunk)
            return tree_root([self.block_roots[b] for b in runs])
        k = split(width)
        return node_hash(self.subtree(lo, lo + k), self.subtree(lo + k, hi))
