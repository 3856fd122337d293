"""Commit certificates as stored beside each block: the same msgpack array the
peer protocol sends, so a block served to a catching-up peer is re-encoded
from exactly what was committed."""

from __future__ import annotations

import msgpack

from consensus.certificate import CommitCertificate
from node.p2p.framing import WireError
from node.p2p.wire import certificate_fields, decode_certificate_fields


def encode_certificate(certificate: CommitCertificate) -> bytes:
    return msgpack.packb(certificate_fields(certificate), use_bin_type=True)


def decode_certificate(raw: bytes) -> CommitCertificate:
    try:
        return decode_certificate_fields(msgpack.unpackb(raw, raw=False, use_list=True))
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, WireError) as exc:
        raise ValueError(f"stored commit certificate is damaged: {exc}") from exc
