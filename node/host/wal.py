"""The consensus write-ahead log in a file of the data directory (``consensus-wal``).

The log's meaning (what is recorded, what must be durable, what a restart
replays, truncation and bounds) is ``consensus.wal``; this module stores its
records.  Each record on disk is::

    u32 length (big-endian) || u32 CRC-32 of the body || body

and the body a msgpack array:

    opened     [1, height, [height, round, step] or nil]
    signed     [2, [height, round, step], message frame]
    received   [3, message frame]

where a message frame is the message exactly as peers exchange it
(node/p2p/wire.py).  A signed record is written and fdatasync'd before its
message leaves the process.

Damage, as found at start:

* A torn tail (the last record incomplete, or failing its checksum where the
  file ends) is a write the crash interrupted.  Its fdatasync never returned,
  so its message never left the process: the tail is cut off and the log
  used, with a warning.
* Anything else (a record failing its checksum or its decoding with more
  bytes after it, a log that does not start with an opened record) is
  damage this node cannot reason about.  The file is kept aside for
  analysis, and the validator refuses to sign anything at the height it is
  deciding (``consensus.wal.signing_floor``): it can then never equivocate,
  and the network loses its votes for one height.
* No log at all, with blocks already committed, gets the same floor: a
  validator whose log was deleted cannot know what it signed.  (A data
  directory of the previous release has ``signing_state.json`` instead; its
  state is taken over as the log's first signing state.)
"""

from __future__ import annotations

import json
import logging
import os
import struct
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import msgpack

from consensus.events import SigningState, Step
from consensus.messages import Message, Proposal, Vote
from consensus.wal import Opened, Received, Record, Signed, WriteAheadLog, signing_floor
from node.core.codec import CodecError, unpack_bounded
from node.p2p.framing import WireError
from node.p2p.wire import decode as decode_message
from node.p2p.wire import encode as encode_message

log = logging.getLogger(__name__)

WAL_FILE = "consensus-wal"
# Past this many bytes the log keeps only what safety and the lock need (consensus.wal).
MAX_WAL_BYTES = 64 * 1024 * 1024
_HEADER = struct.Struct(">II")
# A record holds at most one proposal: a block and its framing.
_MAX_RECORD_BYTES = 16 * 1024 * 1024
_OPENED, _SIGNED, _RECEIVED = 1, 2, 3


class WalDamaged(ValueError):
    """The log holds something other than records this node wrote."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """What the file held: the valid records, and what was wrong with the rest."""

    records: tuple[Record, ...]
    torn_bytes: int  # cut off the tail
    damage: str | None  # why the records could not be trusted, if they could not


def encode_record(record: Record) -> bytes:
    body: list[object]
    match record:
        case Opened(height=height, signing_state=state):
            body = [_OPENED, height, None if state is None else _state_fields(state)]
        case Signed(state=state, message=message):
            body = [_SIGNED, _state_fields(state), encode_message(message)]
        case Received(message=message):
            body = [_RECEIVED, encode_message(message)]
    packed = msgpack.packb(body, use_bin_type=True)
    return _HEADER.pack(len(packed), zlib.crc32(packed)) + packed


def decode_records(data: bytes) -> Loaded:
    """The records in ``data``, stopping at a torn tail or at damage."""
    records: list[Record] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _HEADER.size:
            return Loaded(tuple(records), len(data) - offset, None)
        length, checksum = _HEADER.unpack_from(data, offset)
        end = offset + _HEADER.size + length
        if end > len(data):
            return Loaded(tuple(records), len(data) - offset, None)
        body = data[offset + _HEADER.size:end]
        if zlib.crc32(body) != checksum:
            if end == len(data):
                return Loaded(tuple(records), len(data) - offset, None)
            return Loaded(tuple(records), 0, f"record {len(records)} at byte {offset} fails its checksum")
        try:
            record = _decode_body(body)
        except (CodecError, WireError, ValueError, TypeError) as exc:
            return Loaded(tuple(records), 0, f"record {len(records)} at byte {offset} is malformed: {exc}")
        if not records and not isinstance(record, Opened):
            return Loaded((), 0, "the log does not start with an opened record")
        records.append(record)
        offset = end
    return Loaded(tuple(records), 0, None)


class FileWalStorage:
    """``consensus.wal.WalStorage`` in one append-only file; one writer at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size

    @property
    def size(self) -> int:
        return self._size

    def append(self, record: Record, *, durable: bool) -> None:
        self._write(encode_record(record))
        if durable:
            os.fdatasync(self._fd)

    def replace(self, records: Sequence[Record]) -> None:
        """In place: truncate and write.  A crash part-way leaves an empty or torn log,
        which start-up answers with a signing floor (see the module docstring)."""
        os.ftruncate(self._fd, 0)
        self._size = 0
        self._write(b"".join(encode_record(record) for record in records))
        os.fdatasync(self._fd)

    def close(self) -> None:
        os.close(self._fd)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._size += len(data)


@dataclass(slots=True)
class OpenedWal:
    """The log a validator starts with; ``barred``: it was lost or damaged, so nothing this
    validator signed before can be known (the host bars heights until it sees one decided live)."""

    wal: WriteAheadLog
    storage: FileWalStorage
    barred: bool


def open_wal(data_dir: Path, committed_height: int, *, max_bytes: int = MAX_WAL_BYTES) -> OpenedWal:
    """The validator's log as it finds it at start, repaired or set aside as the module docstring says."""
    path = data_dir / WAL_FILE
    next_height = committed_height + 1
    floor: SigningState | None = None
    barred = False
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = None
    if data is None:
        loaded = Loaded((), 0, None)
        floor = _migrated_state(data_dir)
        if floor is not None:
            log.info("wal.migrated path=%s signing_state=%d/%d/%s", path, floor.height, floor.round,
                     floor.step.name.lower())
        elif committed_height > 0:
            floor, barred = signing_floor(next_height), True
            log.warning("wal.missing path=%s committed_height=%d signing_floor=%d",
                        path, committed_height, next_height)
    else:
        loaded = decode_records(data)
        if loaded.damage is not None:
            kept = path.with_name(f"{WAL_FILE}.damaged-{int(time.time())}")
            os.replace(path, kept)
            floor, barred = signing_floor(next_height), True
            log.error("wal.damaged path=%s reason=%r kept=%s signing_floor=%d",
                      path, loaded.damage, kept, next_height)
            loaded = Loaded((), 0, loaded.damage)
        elif loaded.torn_bytes:
            with open(path, "r+b") as file:
                file.truncate(len(data) - loaded.torn_bytes)
                os.fsync(file.fileno())
            log.warning("wal.torn_tail path=%s dropped_bytes=%d records=%d",
                        path, loaded.torn_bytes, len(loaded.records))
    ahead = max((record.height for record in loaded.records if isinstance(record, Opened)), default=0)
    if ahead > next_height:
        # The log is of a height above the ledger's: the ledger was rebuilt or restored from a snapshot
        # while this log was kept.  It still bars what was signed, but the lock and the messages of that
        # height are past this start's replay, so heights reached by catch-up are barred until one is
        # decided live, as with a lost log.
        barred = True
        log.warning("wal.ahead path=%s log_height=%d committed_height=%d", path, ahead, committed_height)
    storage = FileWalStorage(path)
    return OpenedWal(WriteAheadLog(storage, loaded.records, max_size=max_bytes, floor=floor), storage, barred)


# What the release before the write-ahead log kept: the last signing state, as JSON.
_LEGACY_SIGNING_STATE = "signing_state.json"


def _migrated_state(data_dir: Path) -> SigningState | None:
    """The signing state a data directory of the previous release recorded, if it has one."""
    try:
        document = json.loads((data_dir / _LEGACY_SIGNING_STATE).read_text(encoding="ascii"))
        return _decode_state([document["height"], document["round"], document["step"]])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WalDamaged(f"{data_dir / _LEGACY_SIGNING_STATE} cannot be read to migrate it: {exc}") from exc


def _state_fields(state: SigningState) -> list[int]:
    return [state.height, state.round, int(state.step)]


def _decode_state(fields: object) -> SigningState:
    if not (isinstance(fields, list) and len(fields) == 3 and all(type(f) is int and f >= 0 for f in fields)):
        raise ValueError("a signing state is [height, round, step]")
    return SigningState(fields[0], fields[1], Step(fields[2]))


def _decode_message(frame: object) -> Message:
    if type(frame) is not bytes:
        raise ValueError("a message frame is bytes")
    message = decode_message(frame)
    if not isinstance(message, (Proposal, Vote)):
        raise ValueError(f"a {type(message).__name__} is not a consensus message")
    return message


def _decode_body(body: bytes) -> Record:
    fields = unpack_bounded(body, what="record", max_bytes=_MAX_RECORD_BYTES, max_array_len=4)
    if not isinstance(fields, list) or not fields or type(fields[0]) is not int:
        raise ValueError("a record is an array starting with its kind")
    match fields:
        case [1, int() as height, None] if height >= 0:
            return Opened(height, None)
        case [1, int() as height, state] if height >= 0:
            return Opened(height, _decode_state(state))
        case [2, state, frame]:
            return Signed(_decode_state(state), _decode_message(frame))
        case [3, frame]:
            return Received(_decode_message(frame))
    raise ValueError(f"unknown record kind {fields[0]}")
