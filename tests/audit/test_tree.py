"""The tree read from the seal table agrees with the tree built in memory, block or not."""

import pytest

from audit.actions import record, seal_all
from audit.models import AuditSeal
from audit.tree import SealTree, SealTreeError
from core.crypto.audit_proof import leaf_hash, roots_at, tree_root, verify_inclusion

pytestmark = pytest.mark.django_db


@pytest.fixture
def seals() -> list[bytes]:
    for n in range(37):
        record("history.read", object_type="thread", object_id=n)
    seal_all()
    return [
        leaf_hash(bytes.fromhex(h))
        for h in AuditSeal.objects.order_by("seq").values_list("hash", flat=True)
    ]


@pytest.mark.parametrize("chunk", [1, 2, 4, 8, 1024])
def test_every_size_and_every_leaf_agree_with_the_tree_in_memory(seals, chunk):
    for size in range(len(seals) + 1):
        tree = SealTree(size, proving=range(1, size + 1), chunk=chunk)
        root = tree.root()
        assert root == tree_root(seals[:size])
        for seq in range(1, size + 1):
            assert verify_inclusion(seq - 1, size, seals[seq - 1], tree.path(seq), root)


def test_only_the_blocks_asked_for_are_kept(seals):
    tree = SealTree(len(seals), proving=[5], chunk=4)
    assert sorted(tree.leaves) == [1, 9]  # seal 5's block and the unfinished last one
    assert sorted(tree.block_roots) == list(range(9))
    with pytest.raises(SealTreeError, match="were not kept"):
        tree.path(1)


def test_one_pass_gives_the_root_at_every_size(seals):
    roots = roots_at(seals, range(len(seals) + 1))
    assert all(roots[n] == SealTree(n, chunk=4).root() for n in range(len(seals) + 1))


def test_a_gap_in_the_seals_is_named(seals):
    with pytest.raises(SealTreeError, match=f"seal {len(seals) + 1} is missing"):
        SealTree(len(seals) + 1)
