"""Commit certificates: the +2/3 precommits that decided a height.

A block is final because more than two thirds of the voting power precommitted
its id in one round (Algorithm 1, lines 49-54).  The certificate stored with
each block is that evidence, so a node catching up, an auditor or a bank's own
systems can check finality from the validator set alone, without trusting the
node that served the block.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from consensus.crypto import Verifier
from consensus.messages import VALUE_ID_SIZE, MessageType, Vote
from consensus.validators import ValidatorSet


class CertificateError(ValueError):
    """The certificate does not prove that its value was decided."""


@dataclass(frozen=True, slots=True)
class CommitCertificate:
    height: int
    round: int
    value_id: bytes
    precommits: tuple[Vote, ...]


def verify_certificate(
    cert: CommitCertificate,
    validators: ValidatorSet,
    chain_id: str,
    verifier: Verifier,
    *,
    height: int | None = None,
    value_id: bytes | None = None,
) -> None:
    """Raise ``CertificateError`` unless ``cert`` proves a decision.

    ``height`` and ``value_id``, when given, are what the caller expects the
    certificate to decide (the block it accompanies).  Signatures are checked
    last, after the cheap structural checks, so junk costs no verification.
    """
    if height is not None and cert.height != height:
        raise CertificateError(f"certificate is for height {cert.height}, expected {height}")
    if value_id is not None and cert.value_id != value_id:
        raise CertificateError(
            f"certificate decides value {_hex(cert.value_id)}, expected {_hex(value_id)}"
        )
    if not isinstance(cert.value_id, bytes) or len(cert.value_id) != VALUE_ID_SIZE:
        raise CertificateError(f"certificate value id must be {VALUE_ID_SIZE} bytes")
    seen: set[bytes] = set()
    power = 0
    for vote in cert.precommits:
        signer = _hex(vote.validator)
        if vote.type != MessageType.PRECOMMIT:
            raise CertificateError(f"vote by {signer} is a {_type_name(vote.type)}, not a precommit")
        if vote.height != cert.height or vote.round != cert.round:
            raise CertificateError(
                f"precommit by {signer} is for height {vote.height} round {vote.round}, "
                f"not height {cert.height} round {cert.round}"
            )
        if vote.value_id is None:
            raise CertificateError(f"precommit by {signer} is a nil vote")
        if vote.value_id != cert.value_id:
            raise CertificateError(f"precommit by {signer} is for a different value {_hex(vote.value_id)}")
        if vote.validator in seen:
            raise CertificateError(f"duplicate signer {signer}")
        voter_power = validators.power_of(vote.validator)
        if voter_power == 0:
            raise CertificateError(f"signer {signer} is not a validator")
        seen.add(vote.validator)
        power += voter_power
    if power < validators.quorum:
        raise CertificateError(
            f"insufficient power: {power} of {validators.total_power}, a quorum needs {validators.quorum}"
        )
    for vote in cert.precommits:
        try:
            signed = vote.signing_bytes(chain_id)
        except (struct.error, TypeError, ValueError, AttributeError) as exc:
            raise CertificateError(f"precommit by {_hex(vote.validator)} is malformed: {exc}") from exc
        if not verifier.verify(vote.validator, signed, vote.signature):
            raise CertificateError(f"bad signature from {_hex(vote.validator)}")


def _hex(data: object) -> str:
    return data.hex() if isinstance(data, bytes) else repr(data)


def _type_name(kind: object) -> str:
    if isinstance(kind, int) and kind in MessageType._value2member_map_:
        return MessageType(kind).name.lower()
    return f"message of type {kind!r}"
