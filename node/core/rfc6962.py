"""Merkle tree hashes, audit paths and their verification as RFC 6962 defines them.

Block headers commit to their transactions and to their parent's results by
the Merkle Tree Hash of RFC 6962 §2.1, so a light client checks one
transaction or one receipt against a certified header from a path of
log2(n) hashes instead of the whole block.  RFC 6962 is used as it is,
domain separation of leaves (0x00) from inner nodes (0x01) included, because
that is what stops a leaf from posing as an inner node (a second preimage),
and because any language has an implementation to compare with.

    MTH({})       = SHA-256()
    MTH({d0})     = SHA-256(0x00 || d0)
    MTH(D[0:n])   = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))   k: the largest power of two < n

Verification follows RFC 9162 §2.1.3.2, which computes the root from the
path with the index and size alone, and refuses a path of the wrong length.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from node.core import _rfc6962

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF = b"\x00"
_NODE = b"\x01"


class InclusionError(ValueError):
    """The audit path does not prove the leaf at that index under that root."""


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(_LEAF + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH over ``leaves``, level by level: an odd last node is carried up unchanged, which
    yields exactly the left-balanced tree of RFC 6962's recursive definition.  In C
    (node/core/_rfc6962.c): every validator computes two roots for every block."""
    return _rfc6962.root(leaves)


def audit_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 §2.1.1: the sibling hashes from the leaf up to the root."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is not in a tree of {len(leaves)}")
    path: list[bytes] = []
    level = [leaf_hash(leaf) for leaf in leaves]
    position = index
    while len(level) > 1:
        sibling = position ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
        position //= 2
    return path


def verify_inclusion(root_hash: bytes, size: int, index: int, leaf: bytes, path: Sequence[bytes]) -> None:
    """Raise ``InclusionError`` unless ``path`` proves ``leaf`` is leaf ``index`` of the tree of
    ``size`` leaves whose root is ``root_hash`` (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size:
        raise InclusionError(f"leaf {index} is not in a tree of {size}")
    if any(len(node) != HASH_SIZE for node in path):
        raise InclusionError(f"an audit path holds {HASH_SIZE}-byte hashes")
    fn, sn = index, size - 1
    computed = leaf_hash(leaf)
    for node in path:
        if sn == 0:
            raise InclusionError("the audit path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            computed = node_hash(node, computed)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            computed = node_hash(computed, node)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InclusionError("the audit path is shorter than the tree is deep")
    if computed != root_hash:
        raise InclusionError("the audit path leads to another root")
