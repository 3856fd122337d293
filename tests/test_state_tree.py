"""The state tree against a plain reference computation, and its proofs against tampering.

The reference (tests/state_reference.py) computes the root from its
definition with none of the tree's machinery.
"""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.core.state_proof import BUCKET_TAG, ProofError, StateProof, empty_root, verify
from node.ledger._tree import install, update
from node.ledger.tree import _EMPTY_LEVELS, StateTree, VersionGoneError
from tests.state_reference import reference_root

keys = st.binary(min_size=1, max_size=40)
values = st.binary(min_size=0, max_size=60)
# A block's writes: a value, or None to delete.
blocks = st.lists(st.dictionaries(keys, st.one_of(st.none(), values), max_size=12), min_size=1, max_size=6)



def _crowded_keys(count: int) -> list[bytes]:
    """Keys whose hashes fall into buckets 0 and 1 only, so that one block inserts, rewrites and deletes
    several records of one bucket and entries must be found and kept in order among their neighbours."""
    found, n = [], 0
    while len(found) < count:
        key = b"crowded %d" % n
        hashed = hashlib.sha256(key).digest()
        if hashed[0] == 0 and hashed[1] < 2:
            found.append(key)
        n += 1
    return found


CROWDED = _crowded_keys(16)
crowded_blocks = st.lists(st.dictionaries(st.sampled_from(CROWDED), st.one_of(st.none(), values), max_size=16),
                          min_size=1, max_size=8)


def flip(data: bytes, bit: int) -> bytes:
    position = bit % (8 * len(data))
    return data[:position // 8] + bytes([data[position // 8] ^ (1 << position % 8)]) + data[position // 8 + 1:]


def test_the_empty_tree_has_the_empty_root():
    assert StateTree.empty().root == empty_root() == reference_root({})


@settings(max_examples=60, deadline=None)
@given(st.one_of(blocks, crowded_blocks))
def test_every_version_equals_the_reference_and_old_versions_stay_as_they_were(history):
    tree = StateTree.empty()
    state: dict[bytes, bytes] = {}
    versions = []
    for writes in history:
        update = tree.prepare(sorted(writes.items()))
        assert tree.root == reference_root(state), "prepare leaves the version it starts from alone"
        tree = tree.advance(update)
        for key, value in writes.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        assert tree.root == update.root == reference_root(state)
        versions.append((tree, dict(state)))
    for version, records in versions:
        assert version.root == reference_root(records)
        assert StateTree.build(records.items()).root == version.root, "the root is the records' alone"


@settings(max_examples=60, deadline=None)
@given(blocks, st.data())
def test_proofs_verify_for_present_and_absent_keys_at_every_height(history, data):
    tree = StateTree.empty()
    state: dict[bytes, bytes] = {}
    for writes in history:
        tree = tree.advance(tree.prepare(writes.items()))
        state = {**{k: v for k, v in state.items() if k not in writes},
                 **{k: v for k, v in writes.items() if v is not None}}
        for key in list(writes) + [data.draw(keys, label="another key")]:
            value = state.get(key)
            proof = tree.proof(key)
            verify(tree.root, key, value, proof)
            with pytest.raises(ProofError):
                verify(tree.root, key, b"not" if value is None else None, proof)
            if value is not None:
                with pytest.raises(ProofError):
                    verify(tree.root, key, value + b"!", proof)


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(keys, values, min_size=1, max_size=30), st.data())
def test_any_single_bit_changed_in_a_proof_root_or_value_fails(records, data):
    tree = StateTree.build(records.items())
    key = data.draw(st.sampled_from(sorted(records)), label="key")
    value = records[key]
    proof = tree.proof(key)
    verify(tree.root, key, value, proof)
    bit = data.draw(st.integers(min_value=0, max_value=10**6), label="bit")
    with pytest.raises(ProofError):
        verify(flip(tree.root, bit), key, value, proof)
    with pytest.raises(ProofError):
        verify(tree.root, key, flip(value, bit) if value else b"\x00", proof)
    target = data.draw(st.sampled_from(["entry", "sibling"]), label="part")
    if target == "entry":
        at = bit % len(proof.entries)
        entries = list(proof.entries)
        entries[at] = flip(entries[at], bit // len(proof.entries))
        forged = StateProof(tuple(entries), proof.siblings)
    else:
        level = bit % len(proof.siblings)
        group = list(proof.siblings[level])
        group[bit % 15] = flip(group[bit % 15], bit)
        forged = StateProof(proof.entries, proof.siblings[:level] + (tuple(group),) + proof.siblings[level + 1:])
    with pytest.raises(ProofError):
        verify(tree.root, key, value, forged)


def test_a_proof_missing_an_entry_or_a_level_fails():
    records = {bytes([n]) * 3: b"v%d" % n for n in range(200)}
    tree = StateTree.build(records.items())
    key = next(k for k in records if len(tree.proof(k).entries) > 1)
    proof = tree.proof(key)
    other = next(e for e in proof.entries if e[:32] != hashlib.sha256(key).digest())
    with pytest.raises(ProofError):  # a neighbour hidden: the bucket hash no longer matches
        verify(tree.root, key, records[key], StateProof(tuple(e for e in proof.entries if e != other), proof.siblings))
    with pytest.raises(ProofError):
        verify(tree.root, key, records[key], StateProof(proof.entries, proof.siblings[:3]))
    with pytest.raises(ProofError):  # the record hidden to claim absence
        verify(tree.root, key, None, StateProof(
            tuple(e for e in proof.entries if e[:32] != hashlib.sha256(key).digest()), proof.siblings))


def test_a_block_that_names_a_key_twice_is_refused_and_the_version_is_left_as_it_was():
    tree = StateTree.build([(b"alice", b"1"), (b"bob", b"2")])
    root = tree.root
    with pytest.raises(ValueError, match="twice"):
        tree.prepare([(b"alice", b"3"), (b"carol", b"4"), (b"alice", None)])
    assert tree.root == root == reference_root({b"alice": b"1", b"bob": b"2"})
    assert tree.advance(tree.prepare([(b"alice", b"3")])).root == reference_root({b"alice": b"3", b"bob": b"2"})


@pytest.mark.parametrize("record", [(b"key",), (b"key", b"value", b"more"), ("key", b"value"), (b"key", 7),
                                    [b"key", b"value"], b"key"])
def test_a_record_that_is_not_a_key_and_a_value_is_refused_by_name(record):
    with pytest.raises(TypeError, match=r"\(key bytes, value bytes or None\)"):
        StateTree.empty().prepare([record])


def test_deleting_a_key_the_state_does_not_hold_changes_nothing():
    tree = StateTree.build([(b"alice", b"1")])
    assert tree.advance(tree.prepare([(b"nobody", None)])).root == tree.root


def test_buckets_emptied_while_a_block_s_records_are_taken_are_refused_not_read_past_their_end():
    buckets = [b"\x00"] * 65_536

    def records():
        yield (b"alice", b"1")
        buckets.clear()  # Python code that runs while update takes the records

    with pytest.raises(ValueError, match="buckets changed"):
        update(buckets, _EMPTY_LEVELS, records())


def test_levels_resized_while_a_block_s_records_are_taken_are_refused_not_read_past_their_end():
    levels = tuple(bytearray(level) for level in _EMPTY_LEVELS)

    def records():
        yield (b"alice", b"1")
        del levels[4][-32:]  # Python code that runs while update takes the records

    with pytest.raises(ValueError, match="16 to the power"):
        update([BUCKET_TAG] * 65_536, levels, records())


def test_levels_that_are_not_the_tree_s_hashes_are_refused_by_name():
    levels = tuple(bytearray(level) for level in _EMPTY_LEVELS)
    buckets = [BUCKET_TAG] * 65_536
    with pytest.raises(ValueError, match="16 to the power"):
        update(buckets, levels[:4] + (levels[4][:-1],), [])
    with pytest.raises(TypeError, match="bytes or bytearray"):
        update(buckets, levels[:4] + (list(levels[4]),), [])
    with pytest.raises(ValueError, match="five levels"):
        update(buckets, levels[:4], [])
    root, changed, undo, changes = update(buckets, levels, [])
    assert (root, changed, undo) == (StateTree.empty().root, {}, b"")
    with pytest.raises(TypeError, match="is a bytearray"):
        install(tuple(bytes(level) for level in levels), changes)


def test_changes_that_do_not_fit_the_levels_are_refused_before_anything_is_written():
    levels = tuple(bytearray(level) for level in _EMPTY_LEVELS)
    before = tuple(bytes(level) for level in levels)
    *_, changes = update([BUCKET_TAG] * 65_536, levels, [(b"alice", b"1")])
    outside = changes[:3] + ((struct.pack("=i", 4096), b"h" * 32),) + changes[4:]  # level 3 has 4,096 nodes
    twice = changes[:4] + ((changes[4][0] * 2, changes[4][1] * 2),)  # the same bucket's position twice
    for damaged, said in [(outside, "outside its level"), (changes[:4], "one \\(positions, hashes\\) pair"),
                          (twice, "ascend, each once"),
                          (changes[:4] + ((changes[4][0], changes[4][1][:-1]),), "packed positions")]:
        with pytest.raises(ValueError, match=said):
            install(levels, damaged)
        assert tuple(bytes(level) for level in levels) == before


@settings(max_examples=40, deadline=None)
@given(st.one_of(blocks, crowded_blocks), st.data())
def test_older_kept_versions_still_prove_their_own_state(history, data):
    """Only the newest version is held whole: an older one is proven through the undo of every block
    after it, and must give exactly the proofs it gave when it was the newest."""
    tree = StateTree.empty()
    state: dict[bytes, bytes] = {}
    versions = []
    for writes in history:
        before = {key: tree.proof(key) for key in writes}
        tree = tree.advance(tree.prepare(writes.items()))
        versions.append((tree, dict(state := {**{k: v for k, v in state.items() if k not in writes},
                                                **{k: v for k, v in writes.items() if v is not None}}), before))
    touched = sorted({key for writes in history for key in writes})
    for at, (version, records, _) in enumerate(versions):
        for key in touched + [data.draw(keys, label="another key")]:
            verify(version.root, key, records.get(key), version.proof(key))
        if at:
            older = versions[at - 1][0]
            for key, proof in versions[at][2].items():
                assert older.proof(key) == proof, "a version proves after later blocks as it did when newest"


def test_a_version_older_than_those_kept_is_refused_and_only_the_newest_advances():
    tree = StateTree.build([(b"alice", b"0")], kept=3)
    versions = [tree]
    for n in range(1, 5):
        versions.append(versions[-1].advance(versions[-1].prepare([(b"alice", b"%d" % n)])))
    for version, value in zip(versions[-3:], (b"2", b"3", b"4")):
        verify(version.root, b"alice", value, version.proof(b"alice"))
    with pytest.raises(VersionGoneError, match="no longer kept"):
        versions[1].proof(b"alice")
    with pytest.raises(ValueError, match="only the newest"):
        versions[-2].prepare([(b"alice", b"x")])
    update = versions[-1].prepare([(b"alice", b"5")])
    newest = versions[-1].advance(update)
    with pytest.raises(ValueError, match="only the newest"):
        newest.advance(update)  # an update of the version before: it would undo what the newest holds


def test_an_update_prepared_on_another_tree_is_refused():
    one, other = StateTree.build([(b"alice", b"1")]), StateTree.build([(b"alice", b"1")])
    update = one.prepare([(b"alice", b"2")])
    assert not other.accepts(update) and one.accepts(update)
    with pytest.raises(ValueError, match="only the newest"):
        other.advance(update)
    assert other.root == one.root == reference_root({b"alice": b"1"})


@pytest.mark.parametrize("sizes", [(255, 256, 257), (6_000, 4_000, 3_000)])
def test_blocks_large_enough_to_be_split_between_threads_equal_the_reference(sizes):
    """Blocks of 256 records and more are hashed and merged by two threads, each taking a share of the
    records and then of the buckets: every share boundary must leave the same tree as one thread would."""
    tree = StateTree.empty()
    state: dict[bytes, bytes] = {}
    versions = []
    for height, size in enumerate(sizes):
        known = sorted(state)
        writes: dict[bytes, bytes | None] = {b"key %d at %d" % (n, height): b"v%d" % n for n in range(size // 2)}
        for n, key in enumerate(known[: size - len(writes)]):  # the rest rewrite or delete what earlier blocks wrote
            writes[key] = None if n % 3 == 0 else b"rewritten at %d" % height
        tree = tree.advance(tree.prepare(list(writes.items())))
        for key, value in writes.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        assert tree.root == reference_root(state)
        versions.append((tree, dict(state)))
    for version, records in versions:  # older versions, seen through the undo of the blocks after them
        for key in sorted(records)[:: max(1, len(records) // 40)] + [b"never written"]:
            verify(version.root, key, records.get(key), version.proof(key))
