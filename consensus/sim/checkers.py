"""The properties every simulated run must keep, checked after the run.

Safety: no two honest validators commit different values at one height
(agreement), every value an honest validator commits passes the application
check (validity), every commit carries a certificate that verifies on its own
(certificate validity), and no honest validator ever signs two conflicting
messages for one (height, round, step) (no equivocation; this is what the
persisted signing state protects).  Liveness: once the network has stabilised
and crashed validators are back, every honest validator reaches the target
height within a bounded simulated time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from consensus.certificate import (
    CertificateError,
    CommitCertificate,
    verify_certificate,
)
from consensus.crypto import Verifier
from consensus.messages import Message, Proposal, value_id
from consensus.validators import ValidatorSet


@dataclass(frozen=True, slots=True)
class CommitRecord:
    """A height a simulated validator wrote to its disk, and how it learned it."""

    validator: int
    height: int
    value: bytes
    certificate: CommitCertificate
    time_ms: int
    via: str  # "consensus" (its own engine decided) or "catch-up" (fetched from a peer)


@dataclass(frozen=True, slots=True)
class SignedRecord:
    """A message an honest validator signed and sent, as the network saw it."""

    validator: int
    message: Message
    time_ms: int


@dataclass(frozen=True, slots=True)
class Violation:
    checker: str
    detail: str

    def __str__(self) -> str:
        return f"{self.checker}: {self.detail}"


def check_agreement(commits: Iterable[CommitRecord], honest: frozenset[int]) -> list[Violation]:
    first: dict[int, CommitRecord] = {}
    violations = []
    for record in commits:
        if record.validator not in honest:
            continue
        seen = first.setdefault(record.height, record)
        if seen.value != record.value:
            violations.append(Violation(
                "agreement",
                f"height {record.height}: validator {seen.validator} committed {seen.value!r} "
                f"but validator {record.validator} committed {record.value!r}",
            ))
    return violations


def check_validity(
    commits: Iterable[CommitRecord], honest: frozenset[int], is_valid: Callable[[int, bytes], bool]
) -> list[Violation]:
    return [
        Violation("validity", f"validator {r.validator} committed invalid {r.value!r} at height {r.height}")
        for r in commits
        if r.validator in honest and not is_valid(r.height, r.value)
    ]


@dataclass(frozen=True, slots=True)
class SetRecord:
    """The validator set a simulated validator's engine took for a height."""

    validator: int
    height: int
    validators: ValidatorSet


def check_validator_sets(seen: Iterable[SetRecord], honest: frozenset[int],
                         schedule: Callable[[int], ValidatorSet]) -> list[Violation]:
    """Every honest validator decides each height with that height's set: a change committed
    at H holds from H+2, not a height earlier or later."""
    return [
        Violation("validator set", f"validator {r.validator} took a set for height {r.height} that "
                                   f"{_difference(r.validators, schedule(r.height))}")
        for r in seen
        if r.validator in honest and r.validators != schedule(r.height)
    ]


def _difference(taken: ValidatorSet, holding: ValidatorSet) -> str:
    """How ``taken`` differs from the set that holds, by key prefix and power."""
    had = {v.public_key: v.power for v in taken}
    should = {v.public_key: v.power for v in holding}
    parts = [f"{verb} {key[:4].hex()} (power {power})" for verb, keys, powers in (
        ("lacks", should.keys() - had.keys(), should), ("adds", had.keys() - should.keys(), had))
        for key in sorted(keys) for power in [powers[key]]]
    parts += [f"gives {key[:4].hex()} power {had[key]}, not {should[key]}"
              for key in sorted(had.keys() & should.keys()) if had[key] != should[key]]
    return ", ".join(parts)


def check_certificates(
    commits: Iterable[CommitRecord],
    honest: frozenset[int],
    schedule: Callable[[int], ValidatorSet],
    chain_id: str,
    verifier: Verifier,
) -> list[Violation]:
    """Every certificate an honest validator stored verifies against the set of its height."""
    violations = []
    for record in commits:
        if record.validator not in honest:
            continue
        try:
            verify_certificate(
                record.certificate, schedule(record.height), chain_id, verifier,
                height=record.height, value_id=value_id(record.value),
            )
        except CertificateError as exc:
            violations.append(Violation(
                "certificate",
                f"validator {record.validator} height {record.height} ({record.via}): {exc}",
            ))
    return violations


def check_liveness(
    commits: Iterable[CommitRecord], honest: frozenset[int], target_height: int, deadline_ms: int
) -> list[Violation]:
    reached: dict[int, int] = {}
    for record in commits:
        if record.validator in honest and record.height == target_height:
            reached.setdefault(record.validator, record.time_ms)
    violations = []
    for validator in sorted(honest):
        when = reached.get(validator)
        if when is None:
            violations.append(Violation(
                "liveness", f"validator {validator} never committed height {target_height} "
                f"(deadline {deadline_ms} ms)",
            ))
        elif when > deadline_ms:
            violations.append(Violation(
                "liveness", f"validator {validator} committed height {target_height} at {when} ms, "
                f"after the deadline {deadline_ms} ms",
            ))
    return violations


def conflicting_messages(signed: Iterable[SignedRecord]) -> list[tuple[SignedRecord, SignedRecord]]:
    """Pairs of different messages one validator signed for the same (type, height, round)."""
    first: dict[tuple[int, int, int, int], SignedRecord] = {}
    reported: set[tuple[int, int, int, int]] = set()
    pairs = []
    for record in signed:
        message = record.message
        kind = 1 if isinstance(message, Proposal) else int(message.type)
        slot = (record.validator, kind, message.height, message.round)
        seen = first.setdefault(slot, record)
        if _content(seen.message) != _content(message) and slot not in reported:
            reported.add(slot)
            pairs.append((seen, record))
    return pairs


def _content(message: Message) -> tuple[object, ...]:
    if isinstance(message, Proposal):
        return (message.value, message.valid_round)
    return (message.value_id,)


def check_no_equivocation(signed: Iterable[SignedRecord]) -> list[Violation]:
    return [
        Violation(
            "equivocation",
            f"validator {a.validator} signed conflicting {_describe(a.message)} at {a.time_ms} ms "
            f"and {_describe(b.message)} at {b.time_ms} ms",
        )
        for a, b in conflicting_messages(signed)
    ]


def _describe(message: Message) -> str:
    if isinstance(message, Proposal):
        return f"proposal h={message.height} r={message.round} value={message.value!r}"
    vid = "nil" if message.value_id is None else message.value_id.hex()[:12]
    return f"{message.type.name.lower()} h={message.height} r={message.round} id={vid}"
