"""Decoding msgpack from strangers: one bounded unpacker for transactions, blocks and frames.

Anything a peer, a client or the disk hands the node is decoded with limits
fixed before decoding starts (total size, string, binary and array lengths;
no maps, no extension types), so hostile input costs at most its own size in
memory and time before it is refused.  The canonical encodings built on this
(node/core/tx.py, node/core/block.py, node/p2p/framing.py) then check the
shape of what came out.
"""

from __future__ import annotations

import msgpack


class CodecError(ValueError):
    """Not one msgpack value within the limits; ``code`` is ``too_large`` or ``malformed``."""

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
