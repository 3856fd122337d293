"""Governance transactions: the board's multi-signed actions on the platform's membership and keys.

The genesis names a board (keys and a threshold M).  A governance
transaction carries one action, the board's next sequence number (replay
protection), the last height at which it may be committed, and the
approvals: signatures of board members (at least M distinct ones) over the
same domain-separated bytes, which include the chain id.  A validator may
also rotate its own consensus key: the old key's approval then suffices.

Signed form (msgpack array, docs/protocol.md):

    [version, 4, sequence, expiry_height, action, [[signer, signature], ...]]

with the approvals sorted by signer key, each signer once, and the action one of

    [1, name, bank]                       add a bank
    [2, bank]                             remove a bank
    [3, validator, power]                 set a validator's voting power; 0 removes it
    [4, old_key, new_key, proof]          rotate a validator's consensus key
    [5, issuer]                           replace the issuer key
    [6, threshold, [member, ...]]         replace the board (members sorted, unique)

Every approval signs ``signing_bytes(chain_id)``: GOVERNANCE_DOMAIN, the
chain id (one length byte, then UTF-8) and the msgpack array without the
approvals.  A rotation's ``proof`` is the new key's signature over
PROOF_DOMAIN, the chain id, the old key and the new key: whoever rotates a
validator to a key must hold that key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from node.core import tx as _tx
from node.core.address import encode_address
from node.core.codec import CodecError, unpack_bounded
from node.core.genesis import MAX_TOTAL_POWER
from node.core.names import name_error
from node.core.tx import (
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    TX_VERSION,
    Signer,
    TxDecodeCode,
    TxDecodeError,
    TxKind,
    chain_id_bytes,
)

GOVERNANCE_DOMAIN = b"somnode-governance-v1\x00"
PROOF_DOMAIN = b"somnode-key-proof-v1\x00"
MAX_BOARD_MEMBERS = 32
_U64 = 2**64 - 1


class ActionKind(IntEnum):
    ADD_BANK = 1
    REMOVE_BANK = 2
    SET_VALIDATOR = 3
    ROTATE_VALIDATOR_KEY = 4
    REPLACE_ISSUER = 5
    SET_BOARD = 6


@dataclass(frozen=True, slots=True)
class AddBank:
    name: str
    bank: bytes


@dataclass(frozen=True, slots=True)
class RemoveBank:
    bank: bytes


@dataclass(frozen=True, slots=True)
class SetValidator:
    """Power 0 removes the validator; a key not in the set joins with ``power``."""

    validator: bytes
    power: int


@dataclass(frozen=True, slots=True)
class RotateValidatorKey:
    old_key: bytes
    new_key: bytes
    proof: bytes  # the new key's signature over proof_bytes(chain_id, old_key, new_key)


@dataclass(frozen=True, slots=True)
class ReplaceIssuer:
    issuer: bytes


@dataclass(frozen=True, slots=True)
class SetBoard:
    threshold: int
    members: tuple[bytes, ...]


Action = AddBank | RemoveBank | SetValidator | RotateValidatorKey | ReplaceIssuer | SetBoard


def proof_bytes(chain_id: str, old_key: bytes, new_key: bytes) -> bytes:
    """What a rotation's new key signs to prove it is held by whoever rotates to it."""
    chain = chain_id_bytes(chain_id)
    return PROOF_DOMAIN + bytes([len(chain)]) + chain + old_key + new_key


def describe(action: Action) -> str:
    """The action in words, with addresses, for the people who approve it."""
    match action:
        case AddBank(name=name, bank=bank):
            return f"add the bank {name!r} with key {encode_address(bank)}"
        case RemoveBank(bank=bank):
            return f"remove the bank {encode_address(bank)}"
        case SetValidator(validator=validator, power=0):
            return f"remove the validator {encode_address(validator)} (power 0)"
        case SetValidator(validator=validator, power=power):
            return f"set the voting power of validator {encode_address(validator)} to {power}"
        case RotateValidatorKey(old_key=old_key, new_key=new_key):
            return f"rotate the validator key {encode_address(old_key)} to {encode_address(new_key)}"
        case ReplaceIssuer(issuer=issuer):
            return f"make {encode_address(issuer)} the issuer"
        case SetBoard(threshold=threshold, members=members):
            listed = ", ".join(encode_address(member) for member in members)
            return f"make the board {threshold} of {len(members)}: {listed}"
    raise TypeError(f"not a governance action: {action!r}")


def action_fields(action: Action) -> list[object]:
    match action:
        case AddBank(name=name, bank=bank):
            return [int(ActionKind.ADD_BANK), name, bank]
        case RemoveBank(bank=bank):
            return [int(ActionKind.REMOVE_BANK), bank]
        case SetValidator(validator=validator, power=power):
            return [int(ActionKind.SET_VALIDATOR), validator, power]
        case RotateValidatorKey(old_key=old_key, new_key=new_key, proof=proof):
            return [int(ActionKind.ROTATE_VALIDATOR_KEY), old_key, new_key, proof]
        case ReplaceIssuer(issuer=issuer):
            return [int(ActionKind.REPLACE_ISSUER), issuer]
        case SetBoard(threshold=threshold, members=members):
            return [int(ActionKind.SET_BOARD), threshold, list(members)]
    raise TypeError(f"not a governance action: {action!r}")


@dataclass(frozen=True, slots=True)
class GovernanceTransaction:
    """An unsigned governance transaction; ``kind`` is always GOVERNANCE, like a payment's ``kind``."""

    sequence: int
    expiry_height: int
    action: Action

    def __post_init__(self) -> None:
        _check(self)

    @property
    def kind(self) -> TxKind:
        return TxKind.GOVERNANCE

    def fields(self) -> list[object]:
        return [TX_VERSION, int(TxKind.GOVERNANCE), self.sequence, self.expiry_height, action_fields(self.action)]

    def unsigned_bytes(self) -> bytes:
        return _tx.pack(self.fields())

    def signing_bytes(self, chain_id: str) -> bytes:
        chain = chain_id_bytes(chain_id)
        return GOVERNANCE_DOMAIN + bytes([len(chain)]) + chain + self.unsigned_bytes()

    def approve(self, key: Signer, chain_id: str) -> tuple[bytes, bytes]:
        """One approval: (the signer's key, its signature)."""
        return key.public_key, key.sign(self.signing_bytes(chain_id))

    def signed(self, approvals: Sequence[tuple[bytes, bytes]]) -> SignedGovernance:
        """The transaction with ``approvals`` (any order; one per signer)."""
        ordered = tuple(sorted(approvals))
        if len({key for key, _ in ordered}) != len(ordered):
            raise TxDecodeError(TxDecodeCode.DUPLICATE_SIGNER, "a signer approves a transaction once")
        raw = _tx.pack(self.fields() + [[list(pair) for pair in ordered]])
        return SignedGovernance(self, ordered, raw, hashlib.sha256(raw).digest())


@dataclass(frozen=True, slots=True)
class SignedGovernance:
    """A governance transaction with its approvals, canonical bytes and hash (signatures not yet verified)."""

    tx: GovernanceTransaction
    approvals: tuple[tuple[bytes, bytes], ...]
    raw: bytes
    hash: bytes

    def verify_items(self, chain_id: str) -> list[tuple[bytes, bytes, bytes]]:
        """Every signature it carries as (public key, message, signature): approvals, then a rotation's proof."""
        message = self.tx.signing_bytes(chain_id)
        items = [(key, message, signature) for key, signature in self.approvals]
        action = self.tx.action
        if isinstance(action, RotateValidatorKey):
            items.append((action.new_key, proof_bytes(chain_id, action.old_key, action.new_key), action.proof))
        return items

    def signature_checks(self, chain_id: str) -> tuple[list[tuple[bytes, bytes, bytes]], list[bytes]]:
        """``verify_items`` with a cache key for each: the transaction's hash and the item's position
        determine the triple, as a payment's hash determines its one triple."""
        items = self.verify_items(chain_id)
        return items, [hashlib.sha256(self.hash + bytes([index])).digest() for index in range(len(items))]

    @property
    def signers(self) -> tuple[bytes, ...]:
        return tuple(key for key, _ in self.approvals)


def decode_fields(fields: list[object], raw: bytes) -> SignedGovernance:
    """A governance transaction from its decoded envelope (version and kind already checked)."""
    if len(fields) != 6:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD_COUNT, f"governance has 6 fields, got {len(fields)}")
    tx = _unsigned(fields[:5])
    approvals = fields[5]
    if type(approvals) is not list or not approvals:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "a governance transaction carries its approvals")
    pairs = []
    for entry in approvals:
        if (type(entry) is not list or len(entry) != 2 or type(entry[0]) is not bytes
                or len(entry[0]) != PUBLIC_KEY_SIZE or type(entry[1]) is not bytes
                or len(entry[1]) != SIGNATURE_SIZE):
            raise TxDecodeError(TxDecodeCode.BAD_FIELD, "an approval is [32-byte key, 64-byte signature]")
        pairs.append((entry[0], entry[1]))
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise TxDecodeError(TxDecodeCode.DUPLICATE_SIGNER, "a signer approves a transaction once")
    if keys != sorted(keys):
        raise TxDecodeError(TxDecodeCode.NON_CANONICAL, "approvals are sorted by signer key")
    signed = tx.signed(pairs)
    if signed.raw != raw:
        raise TxDecodeError(TxDecodeCode.NON_CANONICAL, "the encoding is not canonical")
    return signed


def decode_unsigned(raw: bytes) -> GovernanceTransaction:
    """The unsigned array ``[version, 4, sequence, expiry_height, action]`` that the approvals sign,
    as the board passes it around before it is signed (node/tools/gov_file.py)."""
    try:
        fields = unpack_bounded(raw, what="governance transaction", max_bytes=_tx.MAX_TX_BYTES,
                                max_array_len=MAX_BOARD_MEMBERS)
    except CodecError as exc:
        raise TxDecodeError(TxDecodeCode(exc.code), str(exc)) from None
    if type(fields) is not list or len(fields) != 5:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD_COUNT, "an unsigned governance transaction has 5 fields")
    if type(fields[0]) is not int or fields[0] != TX_VERSION:
        raise TxDecodeError(TxDecodeCode.BAD_VERSION, f"unsupported transaction version {fields[0]!r}")
    if type(fields[1]) is not int or fields[1] != int(TxKind.GOVERNANCE):
        raise TxDecodeError(TxDecodeCode.UNKNOWN_KIND, "not a governance transaction")
    tx = _unsigned(fields)
    if _tx.pack(tx.fields()) != raw:
        raise TxDecodeError(TxDecodeCode.NON_CANONICAL, "the encoding is not canonical")
    return tx


def _unsigned(fields: list[object]) -> GovernanceTransaction:
    _, _, sequence, expiry_height, action_payload = fields
    if type(sequence) is not int or type(expiry_height) is not int:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "sequence and expiry height are integers")
    return GovernanceTransaction(sequence, expiry_height, _decode_action(action_payload))


def _key(value: object, what: str) -> bytes:
    if type(value) is not bytes or len(value) != PUBLIC_KEY_SIZE:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, f"{what} must be a 32-byte public key")
    return value


def _decode_action(payload: object) -> Action:
    if type(payload) is not list or not payload or type(payload[0]) is not int:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "an action is an array starting with its kind")
    kind, *rest = payload
    try:
        kind = ActionKind(kind)
    except ValueError:
        raise TxDecodeError(TxDecodeCode.UNKNOWN_ACTION, f"unknown governance action {kind!r}") from None
    expected = {ActionKind.ADD_BANK: 2, ActionKind.REMOVE_BANK: 1, ActionKind.SET_VALIDATOR: 2,
                ActionKind.ROTATE_VALIDATOR_KEY: 3, ActionKind.REPLACE_ISSUER: 1, ActionKind.SET_BOARD: 2}[kind]
    if len(rest) != expected:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD_COUNT, f"{kind.name.lower()} has {expected} fields")
    match kind:
        case ActionKind.ADD_BANK:
            name, bank = rest
            if type(name) is not str:
                raise TxDecodeError(TxDecodeCode.BAD_FIELD, "a bank's name is text")
            return AddBank(name, _key(bank, "bank"))
        case ActionKind.REMOVE_BANK:
            return RemoveBank(_key(rest[0], "bank"))
        case ActionKind.SET_VALIDATOR:
            validator, power = rest
            if type(power) is not int:
                raise TxDecodeError(TxDecodeCode.BAD_FIELD, "power is an integer")
            return SetValidator(_key(validator, "validator"), power)
        case ActionKind.ROTATE_VALIDATOR_KEY:
            old_key, new_key, proof = rest
            if type(proof) is not bytes or len(proof) != SIGNATURE_SIZE:
                raise TxDecodeError(TxDecodeCode.BAD_FIELD, "the proof is a 64-byte signature")
            return RotateValidatorKey(_key(old_key, "old key"), _key(new_key, "new key"), proof)
        case ActionKind.REPLACE_ISSUER:
            return ReplaceIssuer(_key(rest[0], "issuer"))
        case ActionKind.SET_BOARD:
            threshold, members = rest
            if type(threshold) is not int or type(members) is not list:
                raise TxDecodeError(TxDecodeCode.BAD_FIELD, "a board is a threshold and a list of members")
            return SetBoard(threshold, tuple(_key(member, "board member") for member in members))
    raise AssertionError(f"no decoder for {kind}")


def _check(tx: GovernanceTransaction) -> None:
    """The fields' own bounds; whether the action is possible depends on the state (node/ledger/governance.py)."""
    if type(tx.sequence) is not int or not 0 <= tx.sequence <= _U64:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "sequence must be an unsigned 64-bit integer")
    if type(tx.expiry_height) is not int or not 1 <= tx.expiry_height <= _U64:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "expiry height must be 1..2^64-1")
    action = tx.action
    if isinstance(action, AddBank):
        name = action.name
        refusal = name_error(name)
        if refusal is not None:
            raise TxDecodeError(TxDecodeCode.BAD_FIELD, f"the bank's name: {refusal}")
    elif isinstance(action, SetValidator):
        if not 0 <= action.power <= MAX_TOTAL_POWER:
            raise TxDecodeError(TxDecodeCode.BAD_FIELD, f"power must be 0..{MAX_TOTAL_POWER}")
    elif isinstance(action, RotateValidatorKey):
        if action.old_key == action.new_key:
            raise TxDecodeError(TxDecodeCode.BAD_FIELD, "a rotation changes the key")
    elif isinstance(action, SetBoard):
        members = action.members
        if not 1 <= len(members) <= MAX_BOARD_MEMBERS:
            raise TxDecodeError(TxDecodeCode.BAD_FIELD, f"a board has 1..{MAX_BOARD_MEMBERS} members")
        if not 1 <= action.threshold <= len(members):
            raise TxDecodeError(TxDecodeCode.BAD_FIELD, "the threshold is 1..the number of members")
        if list(members) != sorted(set(members)):
            raise TxDecodeError(TxDecodeCode.NON_CANONICAL, "board members are sorted and unique")


# Any transaction a block may carry.
AnyTransaction = _tx.SignedTransaction | SignedGovernance
