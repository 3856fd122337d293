"""Commit certificate verification: every way a certificate can lie is caught."""

from __future__ import annotations

import dataclasses

import pytest

from consensus.certificate import (
    CertificateError,
    CommitCertificate,
    verify_certificate,
)
from consensus.messages import MessageType, Vote, signing_bytes, value_id
from consensus.validators import Validator, ValidatorSet
from node.core.keys import KeyPair, verify_signature

CHAIN = "som-test"
KEYS = [KeyPair.from_seed(bytes([i + 10]) * 32) for i in range(4)]
# Powers 3, 3, 3, 1: a quorum is 7, so any three of the power-3 validators suffice
# but two of them plus the power-1 validator (7) also do, and two alone (6) do not.
POWERS = {KEYS[0].public_key: 3, KEYS[1].public_key: 3, KEYS[2].public_key: 3, KEYS[3].public_key: 1}
VALIDATORS = ValidatorSet([Validator(k, p) for k, p in POWERS.items()])
HEIGHT, ROUND = 7, 2
VALUE_ID = value_id(b"block")


class Ed25519:
    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return verify_signature(public_key, message, signature)


def precommit(key: KeyPair, *, kind: MessageType = MessageType.PRECOMMIT, height: int = HEIGHT,
              round: int = ROUND, vid: bytes | None = VALUE_ID, chain: str = CHAIN) -> Vote:
    return Vote(kind, height, round, vid, key.public_key, key.sign(signing_bytes(chain, kind, height, round, vid)))


def certificate(*votes: Vote) -> CommitCertificate:
    return CommitCertificate(HEIGHT, ROUND, VALUE_ID, votes)


def check(cert: CommitCertificate, **expected) -> None:
    verify_certificate(cert, VALIDATORS, CHAIN, Ed25519(), **expected)


def test_valid_certificates_pass() -> None:
    check(certificate(*(precommit(k) for k in KEYS[:3])), height=HEIGHT, value_id=VALUE_ID)
    check(certificate(precommit(KEYS[0]), precommit(KEYS[1]), precommit(KEYS[3])))
    check(certificate(*(precommit(k) for k in KEYS)))


@pytest.mark.parametrize(("cert", "expected", "problem"), [
    (certificate(precommit(KEYS[0]), precommit(KEYS[1])), {}, "insufficient power"),
    (certificate(precommit(KEYS[0]), precommit(KEYS[1]), precommit(KEYS[1])), {}, "duplicate signer"),
    (certificate(precommit(KEYS[0]), precommit(KEYS[1]), precommit(KEYS[2])), {"height": HEIGHT + 1},
     "height"),
    (certificate(precommit(KEYS[0]), precommit(KEYS[1]), precommit(KEYS[2])), {"value_id": value_id(b"x")},
     "expected"),
    (certificate(precommit(KEYS[0]), precommit(KEYS[1]), precommit(KeyPair.from_seed(b"\x77" * 32))), {},
     "not a validator"),
    (certificate(precommit(KEYS[0]), precommit(KEYS[1]), precommit(KEYS[2], kind=MessageType.PREVOTE)), {},
     "not a precommit"),
    (certificate(precommit(KEYS[0]), precommit(KEYS[1]), precommit(KEYS[2], vid=None)), {}, "nil vote"),
    (certificate(precommit(KEYS[0]), precommit(KEYS[1]), precommit(KEYS[2], vid=value_id(b"other"))), {},
     "different value"),
    (certificate(precommit(KEYS[0]), precommit(KEYS[1]), precommit(KEYS[2], height=HEIGHT - 1)), {},
     "height"),
    (certificate(precommit(KEYS[0]), precommit(KEYS[1]), precommit(KEYS[2], round=ROUND + 1)), {}, "round"),
    (certificate(precommit(KEYS[0]), precommit(KEYS[1]), precommit(KEYS[2], chain="other-chain")), {},
     "bad signature"),
])
def test_bad_certificates_are_rejected_naming_the_problem(cert: CommitCertificate, expected: dict,
                                                          problem: str) -> None:
    with pytest.raises(CertificateError, match=problem):
        check(cert, **expected)


def test_forged_signature_is_rejected() -> None:
    votes = [precommit(k) for k in KEYS[:3]]
    forged = dataclasses.replace(votes[2], signature=votes[1].signature)
    with pytest.raises(CertificateError, match="bad signature"):
        check(certificate(votes[0], votes[1], forged))
    flipped = dataclasses.replace(votes[2], signature=bytes([votes[2].signature[0] ^ 1]) + votes[2].signature[1:])
    with pytest.raises(CertificateError, match="bad signature"):
        check(certificate(votes[0], votes[1], flipped))


def test_certificate_for_another_value_than_its_votes_is_rejected() -> None:
    votes = tuple(precommit(k) for k in KEYS[:3])
    with pytest.raises(CertificateError, match="different value"):
        check(CommitCertificate(HEIGHT, ROUND, value_id(b"forged block"), votes))


def test_malformed_vote_fields_raise_certificate_error() -> None:
    votes = [precommit(k) for k in KEYS[:3]]
    cert = CommitCertificate(-1, ROUND, VALUE_ID, tuple(dataclasses.replace(v, height=-1) for v in votes))
    with pytest.raises(CertificateError, match="malformed"):
        check(cert)
