"""Votes and commit certificates in their canonical msgpack arrays.

The same arrays travel between validators (node/p2p/wire.py) and are stored
beside each block, so a block served to a catching-up peer is re-encoded from
exactly what was committed, and a client reading docs/protocol.md decodes
both the same way:

    vote          [vote_type, height, round, value_id or nil, validator, signature]
    certificate   [height, round, value_id, [vote, ...]]
"""

from __future__ import annotations

import msgpack

from consensus.certificate import CommitCertificate
from consensus.messages import VALUE_ID_SIZE, MessageType, Vote, is_well_formed
from node.core.codec import CodecError, array, blob, uint, unpack_bounded
from node.core.tx import PUBLIC_KEY_SIZE, SIGNATURE_SIZE

MAX_CERTIFICATE_VOTES = 1000
U64 = 2**64 - 1
U32 = 2**32 - 1
# A certificate of MAX_CERTIFICATE_VOTES precommits, with room to spare.
_MAX_CERTIFICATE_BYTES = 256 * 1024


def vote_fields(vote: Vote) -> list[object]:
    return [int(vote.type), vote.height, vote.round, vote.value_id, vote.validator, vote.signature]


def decode_vote_fields(payload: object) -> Vote:
    """A vote from its unpacked array; raise CodecError saying what is wrong."""
    vote_type, height, round_, vid, validator, signature = array(payload, 6, "vote")
    if type(vote_type) is not int or vote_type not in (MessageType.PREVOTE, MessageType.PRECOMMIT):
        raise CodecError("bad_field", "vote type must be prevote (2) or precommit (3)")
    vote = Vote(
        type=MessageType(vote_type),
        height=uint(height, U64, "vote height"),
        round=uint(round_, U32, "vote round"),
        value_id=None if vid is None else blob(vid, "vote value id", size=VALUE_ID_SIZE),
        validator=blob(validator, "vote validator", size=PUBLIC_KEY_SIZE),
        signature=blob(signature, "vote signature", size=SIGNATURE_SIZE),
    )
    assert is_well_formed(vote), "every field was checked above"
    return vote


def certificate_fields(certificate: CommitCertificate) -> list[object]:
    return [certificate.height, certificate.round, certificate.value_id,
            [vote_fields(v) for v in certificate.precommits]]


def decode_certificate_fields(payload: object) -> CommitCertificate:
    """A certificate from its unpacked array; raise CodecError saying what is wrong."""
    height, round_, vid, votes = array(payload, 4, "commit certificate")
    if type(votes) is not list or not 0 < len(votes) <= MAX_CERTIFICATE_VOTES:
        raise CodecError("bad_payload", f"a certificate holds 1..{MAX_CERTIFICATE_VOTES} precommits")
    precommits = tuple(decode_vote_fields(v) for v in votes)
    if any(v.type is not MessageType.PRECOMMIT for v in precommits):
        raise CodecError("bad_field", "a commit certificate holds precommits only")
    return CommitCertificate(height=uint(height, U64, "certificate height"),
                             round=uint(round_, U32, "certificate round"),
                             value_id=blob(vid, "certificate value id", size=VALUE_ID_SIZE),
                             precommits=precommits)


def encode_certificate(certificate: CommitCertificate) -> bytes:
    return msgpack.packb(certificate_fields(certificate), use_bin_type=True)


def decode_certificate(raw: bytes) -> CommitCertificate:
    """A stored certificate; a damaged one raises ValueError."""
    try:
        return decode_certificate_fields(unpack_bounded(raw, what="commit certificate",
                                                        max_bytes=_MAX_CERTIFICATE_BYTES,
                                                        max_array_len=MAX_CERTIFICATE_VOTES))
    except CodecError as exc:
        raise ValueError(f"stored commit certificate is damaged: {exc}") from exc
