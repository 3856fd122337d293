"""Snapshots: the manifest hashes to the state's root, each chunk to the manifest, and nothing else does.

The root is checked against tests/state_reference.py, the plain reference
computation of the state tree, so the snapshot's hashing cannot share a
mistake with the store's tree.
"""

from __future__ import annotations

import hashlib
import random

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.ledger.errors import LedgerCorruptError
from node.ledger.layout import STATE_PREFIXES
from node.statesync.files import SnapshotFiles
from node.statesync.snapshot import CHUNKS, Manifest, SnapshotError, chunk_of, encode_chunk, open_chunk
from tests.state_reference import reference_root

record_keys = st.builds(lambda prefix, rest: prefix + rest, st.sampled_from(STATE_PREFIXES),
                        st.binary(min_size=1, max_size=40))
states = st.dictionaries(record_keys, st.binary(min_size=1, max_size=60), max_size=300)


def random_state(seed: int, size: int) -> dict[bytes, bytes]:
    rng = random.Random(seed)
    return {b"a" + rng.randbytes(32): rng.randbytes(38) for _ in range(size)} | {b"s": b"\x00" * 32}


def write(tmp_path, records: dict[bytes, bytes], height: int = 7, keep: int = 2) -> tuple[SnapshotFiles, Manifest]:
    files = SnapshotFiles(tmp_path / "snapshots", keep)
    manifest = files.write(height, reference_root(records), records.items(), 123, 4)
    return files, manifest


@settings(max_examples=40, deadline=None)
@given(states)
def test_the_manifest_hashes_to_the_reference_root_and_every_chunk_opens_to_its_records(tmp_path_factory, records):
    files, manifest = write(tmp_path_factory.mktemp("s"), records)
    root = reference_root(records)
    manifest.check(root)
    assert Manifest.decode(files.manifests()[0]) == manifest
    restored = {}
    for index in range(CHUNKS):
        chunk = files.chunk(7, index)
        assert chunk is not None
        restored.update(open_chunk(index, chunk, manifest))
    assert restored == records
    assert (manifest.tx_count, manifest.history_count) == (123, 4)


def test_records_that_do_not_hash_to_the_app_hash_are_not_written(tmp_path):
    records = random_state(1, 50)
    files = SnapshotFiles(tmp_path / "snapshots", 2)
    with pytest.raises(LedgerCorruptError, match="do not hash to its app hash"):
        files.write(7, hashlib.sha256(b"another root").digest(), records.items(), 0, 0)
    assert files.heights() == () and list((tmp_path / "snapshots").iterdir()) == []


def test_any_flipped_bit_of_a_chunk_is_refused(tmp_path):
    records = random_state(2, 400)
    files, manifest = write(tmp_path, records)
    index = chunk_of(next(iter(records)))
    chunk = files.chunk(7, index)
    assert chunk is not None
    rng = random.Random(3)
    for _ in range(60):
        bit = rng.randrange(len(chunk) * 8)
        flipped = bytearray(chunk)
        flipped[bit // 8] ^= 1 << bit % 8
        with pytest.raises(SnapshotError):
            open_chunk(index, bytes(flipped), manifest)


def test_a_chunk_missing_a_record_holding_another_chunks_or_a_foreign_record_is_refused(tmp_path):
    records = random_state(4, 400)
    files, manifest = write(tmp_path, records)
    index = max(range(CHUNKS), key=lambda i: manifest.chunk_records[i])
    own = open_chunk(index, files.chunk(7, index) or b"", manifest)
    other = next(key for key in records if chunk_of(key) != index)
    with pytest.raises(SnapshotError, match="records; the manifest says"):
        open_chunk(index, encode_chunk(own[1:]), manifest)
    with pytest.raises(SnapshotError, match="not state of this chunk"):
        open_chunk(index, encode_chunk([*own[1:], (other, records[other])]), manifest)
    foreign = b"b" + own[0][0][1:]
    with pytest.raises(SnapshotError, match="not state of this chunk|not sorted"):
        open_chunk(index, encode_chunk([*own[1:], (foreign, own[0][1])]), manifest)
    with pytest.raises(SnapshotError, match="not sorted"):
        open_chunk(index, msgpack.packb([[key, value] for key, value in reversed(own)]), manifest)


def test_a_forged_manifest_does_not_check_against_the_certified_root(tmp_path):
    records = random_state(5, 100)
    _, manifest = write(tmp_path, records)
    root = reference_root(records)
    hashes = list(manifest.chunk_hashes)
    hashes[9] = hashlib.sha256(b"forged").digest()
    forged = Manifest(manifest.height, root, tuple(hashes), manifest.chunk_records, 0, 0)
    with pytest.raises(SnapshotError, match="do not hash to its app hash"):
        forged.check(root)
    with pytest.raises(SnapshotError, match="not the certified"):
        manifest.check(hashlib.sha256(b"other").digest())
    packed = bytearray(manifest.encode())
    packed[0] ^= 0xFF
    with pytest.raises(SnapshotError):
        Manifest.decode(bytes(packed))


def test_the_newest_snapshots_are_kept_across_restarts_and_a_damaged_file_is_dropped(tmp_path):
    records = random_state(6, 60)
    files = SnapshotFiles(tmp_path / "snapshots", 2)
    for height in (10, 20, 30):
        files.write(height, reference_root(records), records.items(), height, 0)
    assert files.heights() == (20, 30)
    assert [Manifest.decode(m).height for m in files.manifests()] == [30, 20]
    assert files.chunk(10, 0) is None and files.chunk(30, CHUNKS) is None
    directory = tmp_path / "snapshots"
    (directory / "00000000000000000040.snapshot.tmp").write_bytes(b"a write cut short")
    newest = directory / "00000000000000000030.snapshot"
    newest.write_bytes(newest.read_bytes()[:-1])
    reopened = SnapshotFiles(directory, 2)
    assert reopened.heights() == (20,)
    assert sorted(path.name for path in directory.iterdir()) == ["00000000000000000020.snapshot"]


def test_the_worked_example_of_the_protocol_document(tmp_path):
    """docs/protocol.md §18: every hex string there is what the code computes."""
    from pathlib import Path
    text = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text(encoding="utf-8")
    section = text[text.index("## 18. State snapshots"):]
    account = (1_000_000).to_bytes(8, "big") + bytes(8 + 1 + 1 + 4 + 8)
    records = {b"s": bytes(32), b"a" + bytes(range(32)): account}
    files, manifest = write(tmp_path, records, height=5)
    empty = next(i for i in range(CHUNKS) if manifest.chunk_records[i] == 0)
    assert sorted(chunk_of(key) for key in records) == [4, 217]
    for index in (4, 217):
        assert (files.chunk(5, index) or b"").hex() in section
        assert manifest.chunk_hashes[index].hex() in section
    assert files.chunk(5, empty) == b"\x90" and manifest.chunk_hashes[empty].hex() in section
    assert f"app hash        {reference_root(records).hex()}" in section
