"""Decoding msgpack from strangers: one bounded unpacker for transactions, blocks and frames.

Anything a peer, a client or the disk hands the node is decoded with limits
fixed before decoding starts (total size, string, binary and array lengths;
no maps, no extension types), so hostile input costs at most its own size in
memory and time before it is refused.  The canonical encodings built on this
(node/core/tx.py, node/core/block.py, node/p2p/framing.py) then check the
shape of what came out.
"""

from __future__ import annotations

from typing import Any

import msgpack


class CodecError(ValueError):
    """Not one msgpack value within the limits (``code`` ``too_large`` or ``malformed``), or a
    decoded value of the wrong shape (``bad_payload``) or with a wrong field (``bad_field``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def unpack_bounded(data: bytes, *, what: str, max_bytes: int, max_array_len: int) -> object:
    """The single msgpack value in ``data``: arrays as lists, strings as UTF-8 text, no maps.

    ``what`` names the thing in error messages ("transaction", "frame", ...).
    """
    if len(data) > max_bytes:
        raise CodecError("too_large", f"{what} is {len(data)} bytes; the limit is {max_bytes}")
    try:
        return msgpack.unpackb(
            data, raw=False, use_list=True, strict_map_key=True,
            max_bin_len=max_bytes, max_str_len=max_bytes,
            max_array_len=max_array_len, max_map_len=0, max_ext_len=0,
        )
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, UnicodeDecodeError) as exc:
        raise CodecError("malformed", f"{what} is not a single msgpack value: {exc}") from exc


# ---- checking what came out: one field at a time, naming it

def array(payload: object, length: int, what: str) -> list[Any]:
    """``payload`` as a list of exactly ``length`` elements."""
    if type(payload) is not list or len(payload) != length:
        raise CodecError("bad_payload", f"a {what} is an array of {length} elements")
    return payload


def uint(value: object, maximum: int, what: str) -> int:
    if type(value) is not int or not 0 <= value <= maximum:
        raise CodecError("bad_field", f"{what} must be an integer in 0..{maximum}")
    return value


def blob(value: object, what: str, size: int | None = None, max_size: int | None = None) -> bytes:
    """Bytes of exactly ``size``, or of 1..``max_size``."""
    if type(value) is not bytes:
        raise CodecError("bad_field", f"{what} must be bytes")
    if size is not None and len(value) != size:
        raise CodecError("bad_field", f"{what} must be {size} bytes, got {len(value)}")
    if max_size is not None and not 0 < len(value) <= max_size:
        raise CodecError("bad_field", f"{what} must be 1..{max_size} bytes, got {len(value)}")
    return value
