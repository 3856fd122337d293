"""A state snapshot: the records of one height in 256 chunks, each provable against that height's app hash.

The state tree (node/core/state_proof.py) puts a record in the bucket named by
its key hash's first two bytes, and 16 buckets under each of 4,096 nodes, 16
of those under each of 256: so the records whose key hash starts with byte i
are exactly the leaves under the i-th node of level 2.  Chunk i is those
records, and its hash is that node's.  The manifest lists the 256 node hashes;
they hash up through level 1 to the root, which is the app hash a header
certifies.  A node fetching a snapshot therefore checks the manifest against
one certified hash, and each chunk against the manifest on its own, as it
arrives, from whichever peer sent it (docs/protocol.md §18).

    manifest = [1, height, app_hash, chunk hashes (256 × 32 bytes, one blob),
                [records in chunk 0, ..., records in chunk 255], transactions committed, governance history entries]
    chunk    = [[key, value], ...]   sorted by key, each key once

The two counters at the end are the serving node's running totals, which no
hash covers: a node restored from the snapshot continues numbering from them,
taking them from the manifest most of its peers offer (node/statesync/sync.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby

import msgpack

from node.core.codec import CodecError, array, blob, uint, unpack_bounded
from node.core.state_proof import BUCKET_TAG, EMPTY_BUCKET_HASH, FANOUT, HASH_SIZE, bucket_of, node_hash
from node.ledger.layout import STATE_PREFIXES

FORMAT_VERSION = 1
CHUNKS = 256
BUCKETS_PER_CHUNK = FANOUT * FANOUT
# A chunk travels in one p2p frame (node/p2p/framing.py, 9 MiB): a state of about 30 million
# accounts fits, 256 chunks of 8 MiB.
MAX_CHUNK_BYTES = 8 * 1024 * 1024
MAX_CHUNK_RECORDS = MAX_CHUNK_BYTES // 8
MAX_KEY_BYTES = 64
MAX_VALUE_BYTES = 64 * 1024
MAX_MANIFEST_BYTES = 16 * 1024
U64 = 2**64 - 1
# The counters no hash covers are bounded far below where a store's own u64 count could overflow.
MAX_COUNT = 2**62


class SnapshotError(ValueError):
    """A manifest or chunk that is malformed, or does not hash to what it must."""


@dataclass(frozen=True, slots=True)
class Manifest:
    height: int
    app_hash: bytes
    chunk_hashes: tuple[bytes, ...]
    chunk_records: tuple[int, ...]
    tx_count: int
    history_count: int

    def encode(self) -> bytes:
        packed: bytes = msgpack.packb(
            [FORMAT_VERSION, self.height, self.app_hash, b"".join(self.chunk_hashes), list(self.chunk_records),
             self.tx_count, self.history_count], use_bin_type=True)
        return packed

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        try:
            version, height, app_hash, hashes, records, tx_count, history_count = array(
                unpack_bounded(data, what="snapshot manifest", max_bytes=MAX_MANIFEST_BYTES, max_array_len=CHUNKS),
                7, "snapshot manifest")
            if version != FORMAT_VERSION:
                raise SnapshotError(f"snapshot format {version!r} is not {FORMAT_VERSION}")
            joined = blob(hashes, "chunk hashes", size=CHUNKS * HASH_SIZE)
            if type(records) is not list or len(records) != CHUNKS:
                raise SnapshotError(f"a manifest counts the records of {CHUNKS} chunks")
            return cls(
                uint(height, U64, "snapshot height"), blob(app_hash, "app hash", size=HASH_SIZE),
                tuple(joined[i:i + HASH_SIZE] for i in range(0, len(joined), HASH_SIZE)),
                tuple(uint(count, MAX_CHUNK_RECORDS, "chunk record count") for count in records),
                uint(tx_count, MAX_COUNT, "transactions committed"),
                uint(history_count, MAX_COUNT, "governance history entries"))
        except CodecError as exc:
            raise SnapshotError(str(exc)) from None

    def check(self, app_hash: bytes) -> None:
        """Refuse a manifest whose chunk hashes do not lead to ``app_hash``, the certified root of its height."""
        if self.app_hash != app_hash:
            raise SnapshotError(f"the manifest names app hash {self.app_hash.hex()}, not the certified "
                                f"{app_hash.hex()}")
        level1 = [node_hash(list(self.chunk_hashes[i:i + FANOUT])) for i in range(0, CHUNKS, FANOUT)]
        if node_hash(level1) != app_hash:
            raise SnapshotError("the manifest's chunk hashes do not hash to its app hash")


def chunk_of(key: bytes) -> int:
    """The chunk holding ``key``'s record: its key hash's first byte."""
    return hashlib.sha256(key).digest()[0]


def encode_chunk(records: Sequence[tuple[bytes, bytes]]) -> bytes:
    packed: bytes = msgpack.packb([[key, value] for key, value in sorted(records)], use_bin_type=True)
    return packed


def chunk_hash(index: int, records: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The level-2 node over ``records``, which must all lie in chunk ``index``."""
    sha256 = hashlib.sha256
    entries = sorted(sha256(key).digest() + sha256(value).digest() for key, value in records)
    buckets = [EMPTY_BUCKET_HASH] * BUCKETS_PER_CHUNK
    first = index * BUCKETS_PER_CHUNK
    for bucket, group in groupby(entries, key=bucket_of):
        assert bucket // BUCKETS_PER_CHUNK == index, "every record lies in its chunk"
        buckets[bucket - first] = sha256(BUCKET_TAG + b"".join(group)).digest()
    level3 = [node_hash(buckets[i:i + FANOUT]) for i in range(0, BUCKETS_PER_CHUNK, FANOUT)]
    return node_hash(level3)


def open_chunk(index: int, data: bytes, manifest: Manifest) -> list[tuple[bytes, bytes]]:
    """Chunk ``index``'s records, once they are shown to be exactly what the manifest's hash covers."""
    try:
        payload = unpack_bounded(data, what=f"chunk {index}", max_bytes=MAX_CHUNK_BYTES,
                                 max_array_len=MAX_CHUNK_RECORDS)
        if type(payload) is not list:
            raise SnapshotError(f"chunk {index} is an array of records")
        records = []
        for item in payload:
            key, value = array(item, 2, "snapshot record")
            if type(value) is not bytes or len(value) > MAX_VALUE_BYTES:  # a value may be empty
                raise SnapshotError(f"chunk {index}: a record value is 0..{MAX_VALUE_BYTES} bytes")
            records.append((blob(key, "record key", max_size=MAX_KEY_BYTES), value))
    except CodecError as exc:
        raise SnapshotError(str(exc)) from None
    if len(records) != manifest.chunk_records[index]:
        raise SnapshotError(f"chunk {index} holds {len(records)} records; the manifest says "
                            f"{manifest.chunk_records[index]}")
    if any(records[i][0] >= records[i + 1][0] for i in range(len(records) - 1)):
        raise SnapshotError(f"chunk {index}'s records are not sorted by key, each key once")
    for key, _ in records:
        if key[:1] not in STATE_PREFIXES or chunk_of(key) != index:
            raise SnapshotError(f"chunk {index} holds a record ({key[:1]!r}…) that is not state of this chunk")
    if chunk_hash(index, records) != manifest.chunk_hashes[index]:
        raise SnapshotError(f"chunk {index} does not hash to the manifest's hash for it")
    return records
