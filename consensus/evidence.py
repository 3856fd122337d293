"""Equivocation evidence: two conflicting signed messages from one validator.

Tendermint's safety holds while less than a third of the voting power is
Byzantine; a validator that signs two different proposals or votes for the same
height, round and step has broken the protocol, and the pair of signatures is
proof anyone can check.  The engine records such pairs so operators (and, later,
the chain itself) can act on them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from consensus.crypto import Verifier
from consensus.messages import MessageType, Proposal, Vote
from consensus.validators import ValidatorSet


class EvidenceError(ValueError):
    """The pair of messages does not prove equivocation."""


@dataclass(frozen=True, slots=True)
class Evidence:
    validator: bytes
    first: Proposal | Vote
    second: Proposal | Vote


def signer_of(message: Proposal | Vote) -> bytes:
    return message.proposer if isinstance(message, Proposal) else message.validator


def _slot(message: Proposal | Vote) -> tuple[int, int, int]:
    kind = MessageType.PROPOSAL if isinstance(message, Proposal) else int(message.type)
    return (message.height, message.round, kind)


def _content(message: Proposal | Vote) -> tuple[object, ...]:
    """What an honest validator signs at most once per (height, round, step)."""
    if isinstance(message, Proposal):
        return (message.value, message.valid_round)
    return (message.value_id,)


def conflicting(first: Proposal | Vote, second: Proposal | Vote) -> bool:
    """True when the two messages are an equivocation (signatures not checked)."""
    return (
        type(first) is type(second)
        and signer_of(first) == signer_of(second)
        and _slot(first) == _slot(second)
        and _content(first) != _content(second)
    )


def make_evidence(first: Proposal | Vote, second: Proposal | Vote) -> Evidence:
    """Evidence with the pair in a canonical order, so the same equivocation
    observed in either arrival order yields equal evidence."""
    if not conflicting(first, second):
        raise EvidenceError("the messages do not conflict")
    a, b = sorted((first, second), key=lambda m: m.signature)
    return Evidence(signer_of(a), a, b)


def verify_evidence(
    evidence: Evidence,
    chain_id: str,
    verifier: Verifier,
    validators: ValidatorSet | None = None,
) -> None:
    """Raise ``EvidenceError`` unless ``evidence`` is genuine equivocation.

    Genuine means: both messages are signed by ``evidence.validator`` (a member
    of ``validators`` when given), for the same height, round and type, with
    different content, and both signatures verify.
    """
    first, second = evidence.first, evidence.second
    if not all(isinstance(m, (Proposal, Vote)) for m in (first, second)):
        raise EvidenceError("evidence must hold two proposals or two votes")
    if type(first) is not type(second):
        raise EvidenceError("evidence mixes a proposal and a vote")
    if signer_of(first) != evidence.validator or signer_of(second) != evidence.validator:
        raise EvidenceError("a message in the evidence is not from the accused validator")
    if validators is not None and evidence.validator not in validators:
        raise EvidenceError(f"{evidence.validator.hex()} is not a validator")
    if _slot(first) != _slot(second):
        raise EvidenceError("the messages are for different heights, rounds or types")
    if _content(first) == _content(second):
        raise EvidenceError("the messages have the same content")
    for message in (first, second):
        try:
            signed = message.signing_bytes(chain_id)
        except (struct.error, TypeError, ValueError, AttributeError) as exc:
            raise EvidenceError(f"malformed message in evidence: {exc}") from exc
        if not verifier.verify(evidence.validator, signed, message.signature):
            raise EvidenceError("a signature in the evidence does not verify")
