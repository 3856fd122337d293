"""RFC 6962 Merkle tree hashes, audit paths and their verification (node/core/rfc6962.py)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.core.rfc6962 import EMPTY_ROOT, InclusionError, audit_path, leaf_hash, node_hash, root, verify_inclusion


def reference_root(leaves: list[bytes]) -> bytes:
    """MTH exactly as RFC 6962 §2.1 writes it: split at the largest power of two below n."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])).digest()


def reference_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) as RFC 6962 §2.1.1 writes it."""
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return reference_path(m, leaves[:k]) + [reference_root(leaves[k:])]
    return reference_path(m - k, leaves[k:]) + [reference_root(leaves[:k])]


trees = st.lists(st.binary(max_size=40), min_size=1, max_size=70)


def test_the_small_trees_by_hand():
    a, b, c = b"a", b"b", b"c"
    assert root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert root([a]) == hashlib.sha256(b"\x00a").digest()
    assert root([a, b, c]) == node_hash(node_hash(leaf_hash(a), leaf_hash(b)), leaf_hash(c))
    assert audit_path([a, b, c], 2) == [node_hash(leaf_hash(a), leaf_hash(b))]
    assert audit_path([a, b, c], 0) == [leaf_hash(b), leaf_hash(c)]


@given(trees)
def test_root_and_paths_are_the_rfc_definitions(leaves):
    assert root(leaves) == reference_root(leaves)
    for index in range(len(leaves)):
        assert audit_path(leaves, index) == reference_path(index, leaves)


def test_a_block_sized_tree_is_the_rfc_definition():
    """Sizes around powers of two and a whole block's worth, where the level-by-level C loop carries
    odd nodes up many times; a generator is taken as well as a list."""
    for size in (2, 3, 4, 5, 7, 8, 9, 255, 256, 257, 1023, 10_001):
        leaves = [hashlib.sha256(b"%d" % i).digest() + bytes([i % 7]) for i in range(size)]
        assert root(leaves) == reference_root(leaves) == root(leaf for leaf in leaves)


def test_a_leaf_that_is_not_bytes_is_refused_by_name():
    for leaf in ("text", 7, None, bytearray(b"mutable")):
        with pytest.raises(TypeError, match="a leaf is bytes"):
            root([b"fine", leaf])


@given(trees)
def test_every_index_of_a_tree_verifies(leaves):
    top = root(leaves)
    for index, leaf in enumerate(leaves):
        verify_inclusion(top, len(leaves), index, leaf, audit_path(leaves, index))


def _flip(data: bytes, bit: int) -> bytes:
    changed = bytearray(data)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


@given(trees, st.data())
def test_any_single_bit_change_fails(leaves, data):
    index = data.draw(st.integers(0, len(leaves) - 1), label="index")
    leaf, path, top, size = leaves[index], audit_path(leaves, index), root(leaves), len(leaves)
    original_index = index
    target = data.draw(st.sampled_from(["leaf", "path", "root", "index", "size"] if path else
                                       ["leaf", "root", "index", "size"]), label="target")
    if target == "leaf":
        leaf = _flip(leaf, data.draw(st.integers(0, 8 * len(leaf) - 1))) if leaf else b"\x00"
    elif target == "path":
        at = data.draw(st.integers(0, len(path) - 1))
        path = [*path[:at], _flip(path[at], data.draw(st.integers(0, 255))), *path[at + 1:]]
    elif target == "root":
        top = _flip(top, data.draw(st.integers(0, 255)))
    elif target == "index":
        index ^= 1 << data.draw(st.integers(0, max(0, size.bit_length())))
    else:
        size ^= 1 << data.draw(st.integers(0, max(0, size.bit_length())))
    if size == len(leaves) and 0 <= index < size and leaves[index] == leaf:
        return  # the changed claim is true of this tree (two equal leaves swapped): it may verify
    if _shape(index, size, len(path)) == _shape(original_index, len(leaves), len(path)):
        # A path proves a leaf's position by its left/right turns; a size that gives the same turns
        # (leaf 0 of 5 and of 7) is not told apart, as RFC 6962 says: the size must come from a
        # signed source, which is why a header certifies tx_count beside tx_root.
        return
    with pytest.raises(InclusionError):
        verify_inclusion(top, size, index, leaf, path)


def _shape(index: int, size: int, length: int) -> list[bool] | None:
    """The turns RFC 9162's verification takes for (index, size) over a path of ``length``; None when
    it refuses the pair outright."""
    if not 0 <= index < size:
        return None
    fn, sn, turns = index, size - 1, []
    for _ in range(length):
        if sn == 0:
            return None
        left = bool(fn & 1 or fn == sn)
        turns.append(left)
        if left and not fn & 1:
            while fn & 1 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        fn, sn = fn >> 1, sn >> 1
    return turns if sn == 0 else None


def test_a_path_of_the_wrong_length_or_hash_size_fails():
    leaves = [bytes([i]) for i in range(5)]
    path = audit_path(leaves, 1)
    for wrong in (path[:-1], [*path, path[0]], [*path[:-1], path[-1][:31]]):
        with pytest.raises(InclusionError):
            verify_inclusion(root(leaves), 5, 1, leaves[1], wrong)
    with pytest.raises(InclusionError):
        verify_inclusion(root(leaves), 5, 5, leaves[1], path)
    with pytest.raises(IndexError):
        audit_path(leaves, 5)
