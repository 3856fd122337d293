"""Frames on a validator link.

Every websocket message between validators is one binary frame holding a
msgpack array ``[type, payload]``.  Decoding is bounded before it starts (frame
size, string, binary and array lengths; no maps, no extension types), so a
hostile peer can cost us at most one frame's worth of memory and CPU before the
link is closed.
"""

from __future__ import annotations

from enum import IntEnum

import msgpack

from node.core.block import MAX_BLOCK_BYTES, MAX_BLOCK_TXS
from node.core.codec import CodecError, unpack_bounded

# One block plus its commit certificate and framing must fit in one frame.
MAX_FRAME_BYTES = MAX_BLOCK_BYTES + 1024 * 1024
MAX_ARRAY_LEN = MAX_BLOCK_TXS


class FrameType(IntEnum):
    PROPOSAL = 1
    VOTE = 2
    TXS = 3
    BLOCK_REQUEST = 4
    BLOCK_RESPONSE = 5
    STATUS = 6
    SNAPSHOTS_REQUEST = 7
    SNAPSHOTS_RESPONSE = 8
    CHUNK_REQUEST = 9
    CHUNK_RESPONSE = 10
    # Only valid while the link is being authenticated.
    HELLO = 16
    AUTH = 17


class WireError(CodecError):
    """A frame that is not a well-formed message; the link that sent it is closed.

    ``code`` is a short machine-readable reason used for counters and logs.
    """


def pack_frame(kind: FrameType, payload: object) -> bytes:
    return msgpack.packb([int(kind), payload], use_bin_type=True)


def unpack_frame(data: bytes, max_frame_bytes: int = MAX_FRAME_BYTES) -> tuple[FrameType, object]:
    """Split a frame into its type and still-unvalidated payload."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError("malformed", "a frame is binary")
    try:
        frame = unpack_bounded(data, what="frame", max_bytes=max_frame_bytes, max_array_len=MAX_ARRAY_LEN)
    except CodecError as exc:
        raise WireError(exc.code, str(exc)) from exc
    if type(frame) is not list or len(frame) != 2:
        raise WireError("malformed", "a frame is a two-element array [type, payload]")
    kind, payload = frame
    if type(kind) is not int:
        raise WireError("malformed", "the frame type must be an integer")
    try:
        return FrameType(kind), payload
    except ValueError:
        raise WireError("unknown_type", f"unknown frame type {kind}") from None
