"""The consensus write-ahead log: its meaning (consensus/wal.py) and its file (node/host/wal.py).

A torn tail is cut off and the rest trusted; damage anywhere else is never
trusted: the file is set aside and the validator barred from signing at the
height it is deciding.
"""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.events import SigningState, Step
from consensus.messages import MessageType, Proposal, Vote, signing_bytes, value_id
from consensus.sim.validator import MemoryWalStorage
from consensus.wal import Opened, Received, Signed, WriteAheadLog, signing_floor
from node.core.keys import KeyPair
from node.host.wal import (
    WAL_FILE,
    FileWalStorage,
    decode_records,
    encode_record,
    open_wal,
)

CHAIN = "som-wal-test"
ME, PEER = KeyPair.from_seed(b"m" * 32), KeyPair.from_seed(b"p" * 32)
HEIGHT = 7


def proposal(round: int, value: bytes = b"block") -> Proposal:
    vid = value_id(value)
    return Proposal(HEIGHT, round, value, -1, PEER.public_key,
                    PEER.sign(signing_bytes(CHAIN, MessageType.PROPOSAL, HEIGHT, round, vid, -1)))


def vote(kind: MessageType, round: int, vid: bytes | None, key: KeyPair = ME, height: int = HEIGHT) -> Vote:
    return Vote(kind, height, round, vid, key.public_key, key.sign(signing_bytes(CHAIN, kind, height, round, vid)))


def a_height_of_records() -> list:
    """What a validator logs at one height: a received proposal and prevote, its own prevote and precommit."""
    p = proposal(0)
    return [
        Opened(HEIGHT, SigningState(HEIGHT - 1, 0, Step.PRECOMMIT)),
        Received(p),
        Received(vote(MessageType.PREVOTE, 0, p.value_id, PEER)),
        Signed(SigningState(HEIGHT, 0, Step.PREVOTE), vote(MessageType.PREVOTE, 0, p.value_id)),
        Signed(SigningState(HEIGHT, 0, Step.PRECOMMIT), vote(MessageType.PRECOMMIT, 0, p.value_id)),
    ]


def write(path, records) -> bytes:
    data = b"".join(encode_record(record) for record in records)
    path.write_bytes(data)
    return data


def test_a_restart_replays_the_height_being_decided_with_the_lock(tmp_path):
    records = a_height_of_records()
    write(tmp_path / WAL_FILE, records)
    opened = open_wal(tmp_path, committed_height=HEIGHT - 1)
    replay = opened.wal.replay(HEIGHT)
    assert not opened.barred
    assert replay.messages == tuple(r.message for r in records[1:])
    assert replay.own == 2 and replay.signing_state == SigningState(HEIGHT, 0, Step.PRECOMMIT)
    assert replay.lock == records[-1].message
    assert opened.wal.replay(HEIGHT + 1).messages == (), "a log about another height replays nothing"
    opened.storage.close()


def test_records_are_appended_and_truncated_after_a_decision(tmp_path):
    opened = open_wal(tmp_path, committed_height=0)
    wal = opened.wal
    wal.begin(HEIGHT)
    for record in a_height_of_records()[1:]:
        if isinstance(record, Signed):
            wal.signed(record.state, record.message)
        else:
            wal.received(record.message)
    wal.received(vote(MessageType.PREVOTE, 0, None, PEER, height=HEIGHT + 1))  # not this height: not logged
    assert [type(r) for r in decode_records((tmp_path / WAL_FILE).read_bytes()).records] == \
        [Opened, Received, Received, Signed, Signed]
    wal.begin(HEIGHT + 1)
    opened.storage.close()
    loaded = decode_records((tmp_path / WAL_FILE).read_bytes())
    assert loaded.records == (Opened(HEIGHT + 1, SigningState(HEIGHT, 0, Step.PRECOMMIT)),)


@pytest.mark.parametrize("cut", [1, 5, 9, 40])
def test_a_torn_tail_is_cut_off_and_the_rest_trusted(tmp_path, caplog, cut):
    records = a_height_of_records()
    data = write(tmp_path / WAL_FILE, records)
    (tmp_path / WAL_FILE).write_bytes(data[:-cut])  # the last record's write was interrupted
    with caplog.at_level(logging.WARNING):
        opened = open_wal(tmp_path, committed_height=HEIGHT - 1)
    replay = opened.wal.replay(HEIGHT)
    assert replay.messages == tuple(r.message for r in records[1:-1])
    assert replay.signing_state == SigningState(HEIGHT, 0, Step.PREVOTE)
    assert not opened.barred and "wal.torn_tail" in caplog.text
    assert (tmp_path / WAL_FILE).read_bytes() == data[:len(data) - len(encode_record(records[-1]))]
    opened.storage.close()


def test_a_last_record_failing_its_checksum_is_a_torn_tail(tmp_path, caplog):
    records = a_height_of_records()
    data = bytearray(write(tmp_path / WAL_FILE, records))
    data[-3] ^= 0xFF  # the body of the last record, as a partly written page leaves it
    (tmp_path / WAL_FILE).write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        opened = open_wal(tmp_path, committed_height=HEIGHT - 1)
    assert opened.wal.replay(HEIGHT).messages == tuple(r.message for r in records[1:-1])
    assert "wal.torn_tail" in caplog.text
    opened.storage.close()


def test_a_damaged_record_before_the_tail_is_never_trusted(tmp_path, caplog):
    records = a_height_of_records()
    data = bytearray(write(tmp_path / WAL_FILE, records))
    offset = len(encode_record(records[0])) + 20  # inside the second record; more follow
    data[offset] ^= 0x01
    (tmp_path / WAL_FILE).write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR):
        opened = open_wal(tmp_path, committed_height=HEIGHT - 1)
    replay = opened.wal.replay(HEIGHT)
    assert replay.messages == () and opened.barred
    assert replay.signing_state == signing_floor(HEIGHT) == SigningState(HEIGHT, 2**32 - 1, Step.PRECOMMIT)
    assert not replay.signing_state.allows(HEIGHT, 50, Step.PROPOSE)
    assert replay.signing_state.allows(HEIGHT + 1, 0, Step.PROPOSE)
    assert "wal.damaged" in caplog.text and "fails its checksum" in caplog.text
    kept = list(tmp_path.glob(f"{WAL_FILE}.damaged-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == bytes(data), "the damaged file is kept for analysis"
    opened.storage.close()


def test_a_log_that_does_not_start_with_its_height_is_damaged(tmp_path):
    write(tmp_path / WAL_FILE, a_height_of_records()[1:])
    opened = open_wal(tmp_path, committed_height=HEIGHT - 1)
    assert opened.barred and opened.wal.signing_state == signing_floor(HEIGHT)
    opened.storage.close()


def test_a_missing_log_bars_the_next_height_once_blocks_are_committed(tmp_path):
    (tmp_path / "fresh").mkdir()
    fresh = open_wal(tmp_path / "fresh", committed_height=0)
    assert not fresh.barred and fresh.wal.signing_state is None, "a new validator has signed nothing"
    fresh.storage.close()
    (tmp_path / "lost").mkdir()
    lost = open_wal(tmp_path / "lost", committed_height=HEIGHT - 1)
    assert lost.barred and lost.wal.signing_state == signing_floor(HEIGHT)
    lost.storage.close()


def test_a_log_above_a_rebuilt_ledger_keeps_what_was_signed_and_bars_the_heights_caught_up(tmp_path, caplog):
    records = a_height_of_records()
    write(tmp_path / WAL_FILE, records)
    with caplog.at_level(logging.WARNING):
        opened = open_wal(tmp_path, committed_height=HEIGHT - 5)  # a ledger restored below the log's height
    assert opened.barred and "wal.ahead" in caplog.text
    kept = opened.wal.replay(HEIGHT - 4).signing_state
    assert kept is not None and kept.height == HEIGHT and not kept.allows(HEIGHT, 0, Step.PREVOTE)
    opened.storage.close()
    same = open_wal(tmp_path, committed_height=HEIGHT - 1)
    assert not same.barred, "a log of the height being decided is this start's own"
    same.storage.close()


def test_the_previous_releases_signing_state_is_taken_over(tmp_path, caplog):
    (tmp_path / "signing_state.json").write_text(json.dumps({"height": HEIGHT, "round": 3, "step": 1}))
    with caplog.at_level(logging.INFO):
        opened = open_wal(tmp_path, committed_height=HEIGHT - 1)
    assert not opened.barred and opened.wal.signing_state == SigningState(HEIGHT, 3, Step.PREVOTE)
    assert "wal.migrated" in caplog.text
    opened.storage.close()


def test_past_its_bound_the_log_keeps_the_lock_and_its_proposal():
    storage = MemoryWalStorage()
    wal = WriteAheadLog(storage, [], max_size=8)
    wal.begin(HEIGHT)
    locked = proposal(1, b"locked value")
    wal.received(proposal(0))
    wal.received(locked)
    wal.signed(SigningState(HEIGHT, 1, Step.PRECOMMIT), vote(MessageType.PRECOMMIT, 1, locked.value_id))
    for round in range(2, 12):
        wal.received(vote(MessageType.PREVOTE, round, None, PEER))
    assert storage.size <= 8
    replay = WriteAheadLog(storage, storage.records, max_size=8).replay(HEIGHT)
    assert locked in replay.messages and replay.lock is not None and replay.lock.value_id == locked.value_id
    assert replay.signing_state == SigningState(HEIGHT, 1, Step.PRECOMMIT)


def test_signing_states_only_grow():
    wal = WriteAheadLog(MemoryWalStorage(), [], max_size=100)
    wal.begin(HEIGHT)
    wal.signed(SigningState(HEIGHT, 1, Step.PREVOTE), vote(MessageType.PREVOTE, 1, None))
    with pytest.raises(AssertionError):
        wal.signed(SigningState(HEIGHT, 0, Step.PRECOMMIT), vote(MessageType.PRECOMMIT, 0, None))


_RECORDS = a_height_of_records()


@given(st.lists(st.sampled_from(_RECORDS[1:]), max_size=6), st.data())
def test_any_cut_leaves_a_trusted_prefix_and_a_torn_tail(body, data):
    records = [_RECORDS[0], *body]
    encoded = [encode_record(record) for record in records]
    whole = b"".join(encoded)
    cut = data.draw(st.integers(0, len(whole)))
    loaded = decode_records(whole[:cut])
    assert loaded.damage is None
    assert loaded.records == tuple(records[:len(loaded.records)])
    assert len(b"".join(encoded[:len(loaded.records)])) + loaded.torn_bytes == cut


@given(st.data())
def test_any_flipped_byte_is_refused_or_cut_never_misread(data):
    whole = b"".join(encode_record(record) for record in _RECORDS)
    position = data.draw(st.integers(0, len(whole) - 1))
    flipped = bytearray(whole)
    flipped[position] ^= data.draw(st.integers(1, 255))
    loaded = decode_records(bytes(flipped))
    assert loaded.records == tuple(_RECORDS[:len(loaded.records)]), "a changed record was accepted"
    assert loaded.damage is not None or loaded.torn_bytes or len(loaded.records) < len(_RECORDS)


def test_the_file_storage_counts_what_it_holds(tmp_path):
    storage = FileWalStorage(tmp_path / WAL_FILE)
    records = a_height_of_records()
    storage.replace(records[:1])
    for record in records[1:]:
        storage.append(record, durable=isinstance(record, Signed))
    assert storage.size == (tmp_path / WAL_FILE).stat().st_size == sum(len(encode_record(r)) for r in records)
    storage.close()
