"""The state tree's shape, hashes and proofs: what a light client needs, with no storage behind it.

The state is a set of records (key, value): the ledger's application records
(docs/ledger.md, "Keys").  A record's place is fixed by its key alone:

    key hash   = SHA-256(key)
    bucket     = the key hash's first two bytes, big-endian (0 .. 65,535)
    entry      = key hash || SHA-256(value)                       64 bytes

A bucket holds the entries of its records sorted by key hash, and the tree
above the buckets is a complete 16-ary tree of four levels:

    bucket hash    = SHA-256(0x00 || entry || entry || ...)        (an empty bucket: SHA-256(0x00))
    node hash      = SHA-256(0x01 || child 0 || ... || child 15)
    root           = the node at level 0; level 3's children are the buckets

A proof of a key is the entries of its bucket and, for each level from the
buckets up, the hashes of the 15 siblings on its path.  The same proof shows
a record's value (its entry is in the bucket) or its absence (the key hash is
not among the bucket's entries), and every entry of a neighbour shows only
hashes, never another account's balance.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

HASH_SIZE = 32
ENTRY_SIZE = 2 * HASH_SIZE
FANOUT = 16
LEVELS = 4
BUCKETS = FANOUT**LEVELS
BUCKET_TAG = b"\x00"
NODE_TAG = b"\x01"
EMPTY_BUCKET_HASH = hashlib.sha256(BUCKET_TAG).digest()
# A proof carries at most this many entries: a bucket holding more is the sign of a tree built by
# someone else's rules, and a verifier refuses to hash an unbounded amount for it.
MAX_PROOF_ENTRIES = 1 << 16


class ProofError(ValueError):
    """A proof that does not show what it claims against the given root."""


def key_hash(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def bucket_of(hashed_key: bytes) -> int:
    return hashed_key[0] << 8 | hashed_key[1]


def entry(key: bytes, value: bytes) -> bytes:
    return hashlib.sha256(key).digest() + hashlib.sha256(value).digest()


def bucket_hash(entries: list[bytes]) -> bytes:
    return hashlib.sha256(BUCKET_TAG + b"".join(entries)).digest()


def node_hash(children: list[bytes]) -> bytes:
    return hashlib.sha256(NODE_TAG + b"".join(children)).digest()


def empty_root() -> bytes:
    """The root of a state with no records."""
    below = EMPTY_BUCKET_HASH
    for _ in range(LEVELS):
        below = node_hash([below] * FANOUT)
    return below


@dataclass(frozen=True, slots=True)
class StateProof:
    """The key's bucket and the siblings on its path, from the bucket's level up to the root's.

    ``siblings[0]`` holds the 15 other buckets under the key's level-3 node, in
    child order with the key's own position left out; ``siblings[3]`` the 15
    other children of the root.
    """

    entries: tuple[bytes, ...]
    siblings: tuple[tuple[bytes, ...], ...]


def verify(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> None:
    """Check that under ``root`` the record ``key`` has ``value`` (None: that it is absent).

    Raises ProofError when the proof does not show exactly what is claimed.
    """
    hashed = key_hash(key)
    bucket = bucket_of(hashed)
    entries = proof.entries
    if len(entries) > MAX_PROOF_ENTRIES:
        raise ProofError(f"a bucket of {len(entries)} entries is more than a proof may carry")
    if any(type(e) is not bytes or len(e) != ENTRY_SIZE for e in entries):
        raise ProofError("an entry is a 32-byte key hash and a 32-byte value hash")
    if any(bucket_of(e) != bucket for e in entries):
        raise ProofError("an entry of the proof lies in another bucket")
    if any(entries[i][:HASH_SIZE] >= entries[i + 1][:HASH_SIZE] for i in range(len(entries) - 1)):
        raise ProofError("a bucket's entries are sorted by key hash, each key once")
    found = [e for e in entries if e[:HASH_SIZE] == hashed]
    if value is None and found:
        raise ProofError("the record is present, not absent")
    if value is not None and found != [hashed + hashlib.sha256(value).digest()]:
        raise ProofError("the bucket does not hold this record with this value")
    if len(proof.siblings) != LEVELS:
        raise ProofError(f"a proof has siblings for {LEVELS} levels")
    current = bucket_hash(list(entries))
    position = bucket
    for level, siblings in enumerate(proof.siblings):
        if len(siblings) != FANOUT - 1 or any(type(s) is not bytes or len(s) != HASH_SIZE for s in siblings):
            raise ProofError(f"level {level}: 15 sibling hashes of 32 bytes each")
        slot = position % FANOUT
        children = list(siblings)
        children.insert(slot, current)
        current = node_hash(children)
        position //= FANOUT
    if current != root:
        raise ProofError("the proof does not lead to the root")
