"""The board's actions: what a governance transaction (node/core/governance.py) asks the ledger to do.

Each action is a msgpack array starting with its kind (docs/protocol.md §13):

    [1, name, bank]                            add a bank
    [2, bank]                                  remove a bank
    [3, validator, power]                      set a validator's voting power; 0 removes it
    [4, old_key, new_key, proof]               rotate a validator's consensus key
    [5, issuer]                                replace the issuer key
    [6, threshold, [member, ...]]              replace the board (members sorted, unique)
    [7, tier, name, max_balance, max_payment, max_daily_out]    define (or redefine) a wallet tier
    [8, wallet, tier, linked]                  set a wallet's tier and linked account
    [9, account, scope, reference]             legal order: freeze
    [10, account, scope, reference]            legal order: unfreeze
    [11, account, amount, destination, reference]   legal order: seize
    [12, name, observer]                       register an observer node's key
    [13, observer]                             remove an observer
    reference = [authority, number, date, document_sha256]

A legal order names the act behind it (the issuing authority, the order's
number and date, and the SHA-256 of the order document), so that the ledger's
record of every freeze and seizure leads back to the paper a court signed.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from enum import IntEnum

from node.core.address import encode_address
from node.core.amount import MAX_TYIYN, format_som
from node.core.genesis import MAX_TOTAL_POWER
from node.core.names import name_error
from node.core.tiers import INSTITUTIONAL, Tier, tier_error
from node.core.tx import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, TxDecodeCode, TxDecodeError, chain_id_bytes

PROOF_DOMAIN = b"somnode-key-proof-v1\x00"
MAX_BOARD_MEMBERS = 32
MAX_ORDER_NUMBER_CHARS = 64
DOCUMENT_HASH_SIZE = 32


class ActionKind(IntEnum):
    ADD_BANK = 1
    REMOVE_BANK = 2
    SET_VALIDATOR = 3
    ROTATE_VALIDATOR_KEY = 4
    REPLACE_ISSUER = 5
    SET_BOARD = 6
    DEFINE_TIER = 7
    SET_WALLET = 8
    FREEZE = 9
    UNFREEZE = 10
    SEIZE = 11
    ADD_OBSERVER = 12
    REMOVE_OBSERVER = 13


class Scope(IntEnum):
    """Which payments a freeze stops: a bit each, so an unfreeze can lift one and keep the other."""

    OUTGOING = 1
    INCOMING = 2
    BOTH = 3


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


@dataclass(frozen=True, slots=True)
class DefineTier:
    tier: Tier


@dataclass(frozen=True, slots=True)
class SetWallet:
    """The board's registration of a wallet: any tier, institutional (255) included; ``linked``
    empty for none.  The bank that registered the wallet, if any, stays its registering bank."""

    wallet: bytes
    tier: int
    linked: bytes


@dataclass(frozen=True, slots=True)
class OrderReference:
    authority: str
    number: str
    date: str  # YYYY-MM-DD
    document_sha256: bytes


@dataclass(frozen=True, slots=True)
class Freeze:
    account: bytes
    scope: Scope
    reference: OrderReference


@dataclass(frozen=True, slots=True)
class Unfreeze:
    account: bytes
    scope: Scope
    reference: OrderReference


@dataclass(frozen=True, slots=True)
class Seize:
    account: bytes
    amount: int
    destination: bytes
    reference: OrderReference


@dataclass(frozen=True, slots=True)
class AddObserver:
    """Validators admit the key's links: a node that follows the chain and serves the API, never voting."""

    name: str
    observer: bytes


@dataclass(frozen=True, slots=True)
class RemoveObserver:
    observer: bytes


Order = Freeze | Unfreeze | Seize
Action = (AddBank | RemoveBank | SetValidator | RotateValidatorKey | ReplaceIssuer | SetBoard | DefineTier
          | SetWallet | Freeze | Unfreeze | Seize | AddObserver | RemoveObserver)


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
        case DefineTier(tier=t):
            return (f"define tier {t.id} {t.name!r}: balance at most {format_som(t.max_balance)} som, "
                    f"a payment at most {format_som(t.max_payment)} som, "
                    f"at most {format_som(t.max_daily_out)} som out a day")
        case SetWallet(wallet=wallet, tier=tier, linked=linked):
            which = "institutional (no limits)" if tier == INSTITUTIONAL else f"tier {tier}"
            link = f", linked to {encode_address(linked)}" if linked else ", no linked account"
            return f"register the wallet {encode_address(wallet)} as {which}{link}"
        case Freeze(account=account, scope=scope, reference=ref):
            return f"freeze {_scope_words(scope)} of {encode_address(account)}, by {_cite(ref)}"
        case Unfreeze(account=account, scope=scope, reference=ref):
            return f"unfreeze {_scope_words(scope)} of {encode_address(account)}, by {_cite(ref)}"
        case Seize(account=account, amount=amount, destination=destination, reference=ref):
            return (f"seize {format_som(amount)} som from {encode_address(account)} into "
                    f"{encode_address(destination)}, by {_cite(ref)}")
        case AddObserver(name=name, observer=observer):
            return f"register the observer {name!r} with key {encode_address(observer)}"
        case RemoveObserver(observer=observer):
            return f"remove the observer {encode_address(observer)}"
    raise TypeError(f"not a governance action: {action!r}")


def _scope_words(scope: Scope) -> str:
    return {Scope.OUTGOING: "outgoing payments", Scope.INCOMING: "incoming payments",
            Scope.BOTH: "all payments"}[scope]


def _cite(ref: OrderReference) -> str:
    return f"order {ref.number!r} of {ref.authority!r} dated {ref.date} (document sha256 {ref.document_sha256.hex()})"


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
        case DefineTier(tier=t):
            return [int(ActionKind.DEFINE_TIER), t.id, t.name, t.max_balance, t.max_payment, t.max_daily_out]
        case SetWallet(wallet=wallet, tier=tier, linked=linked):
            return [int(ActionKind.SET_WALLET), wallet, tier, linked]
        case Freeze(account=account, scope=scope, reference=ref):
            return [int(ActionKind.FREEZE), account, int(scope), _reference_fields(ref)]
        case Unfreeze(account=account, scope=scope, reference=ref):
            return [int(ActionKind.UNFREEZE), account, int(scope), _reference_fields(ref)]
        case Seize(account=account, amount=amount, destination=destination, reference=ref):
            return [int(ActionKind.SEIZE), account, amount, destination, _reference_fields(ref)]
        case AddObserver(name=name, observer=observer):
            return [int(ActionKind.ADD_OBSERVER), name, observer]
        case RemoveObserver(observer=observer):
            return [int(ActionKind.REMOVE_OBSERVER), observer]
    raise TypeError(f"not a governance action: {action!r}")


def _reference_fields(ref: OrderReference) -> list[object]:
    return [ref.authority, ref.number, ref.date, ref.document_sha256]


_FIELD_COUNTS = {ActionKind.ADD_BANK: 2, ActionKind.REMOVE_BANK: 1, ActionKind.SET_VALIDATOR: 2,
                 ActionKind.ROTATE_VALIDATOR_KEY: 3, ActionKind.REPLACE_ISSUER: 1, ActionKind.SET_BOARD: 2,
                 ActionKind.DEFINE_TIER: 5, ActionKind.SET_WALLET: 3, ActionKind.FREEZE: 3,
                 ActionKind.UNFREEZE: 3, ActionKind.SEIZE: 4, ActionKind.ADD_OBSERVER: 2,
                 ActionKind.REMOVE_OBSERVER: 1}


def decode_action(payload: object) -> Action:
    """An action from its decoded msgpack array; TxDecodeError names what is wrong."""
    if type(payload) is not list or not payload or type(payload[0]) is not int:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "an action is an array starting with its kind")
    number, *rest = payload
    try:
        kind = ActionKind(number)
    except ValueError:
        raise TxDecodeError(TxDecodeCode.UNKNOWN_ACTION, f"unknown governance action {number!r}") from None
    if len(rest) != _FIELD_COUNTS[kind]:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD_COUNT, f"{kind.name.lower()} has {_FIELD_COUNTS[kind]} fields")
    action = _decode(kind, rest)
    check_action(action)
    return action


def _decode(kind: ActionKind, rest: list[object]) -> Action:
    match kind:
        case ActionKind.ADD_BANK:
            return AddBank(_text(rest[0], "a bank's name"), _key(rest[1], "bank"))
        case ActionKind.REMOVE_BANK:
            return RemoveBank(_key(rest[0], "bank"))
        case ActionKind.SET_VALIDATOR:
            return SetValidator(_key(rest[0], "validator"), _integer(rest[1], "power"))
        case ActionKind.ROTATE_VALIDATOR_KEY:
            proof = rest[2]
            if type(proof) is not bytes or len(proof) != SIGNATURE_SIZE:
                raise TxDecodeError(TxDecodeCode.BAD_FIELD, "the proof is a 64-byte signature")
            return RotateValidatorKey(_key(rest[0], "old key"), _key(rest[1], "new key"), proof)
        case ActionKind.REPLACE_ISSUER:
            return ReplaceIssuer(_key(rest[0], "issuer"))
        case ActionKind.SET_BOARD:
            threshold, members = rest
            if type(members) is not list:
                raise TxDecodeError(TxDecodeCode.BAD_FIELD, "a board is a threshold and a list of members")
            return SetBoard(_integer(threshold, "the threshold"),
                            tuple(_key(member, "board member") for member in members))
        case ActionKind.DEFINE_TIER:
            tier_id, name, max_balance, max_payment, max_daily_out = rest
            try:
                return DefineTier(Tier(_integer(tier_id, "the tier id"), _text(name, "a tier's name"),
                                       _integer(max_balance, "max_balance"), _integer(max_payment, "max_payment"),
                                       _integer(max_daily_out, "max_daily_out")))
            except ValueError as exc:
                raise TxDecodeError(TxDecodeCode.BAD_FIELD, str(exc)) from None
        case ActionKind.SET_WALLET:
            return SetWallet(_key(rest[0], "wallet"), _integer(rest[1], "the tier"), _linked(rest[2]))
        case ActionKind.FREEZE | ActionKind.UNFREEZE:
            order = Freeze if kind is ActionKind.FREEZE else Unfreeze
            return order(_key(rest[0], "account"), _scope(rest[1]), _reference(rest[2]))
        case ActionKind.SEIZE:
            return Seize(_key(rest[0], "account"), _integer(rest[1], "amount"), _key(rest[2], "destination"),
                         _reference(rest[3]))
        case ActionKind.ADD_OBSERVER:
            return AddObserver(_text(rest[0], "an observer's name"), _key(rest[1], "observer"))
        case ActionKind.REMOVE_OBSERVER:
            return RemoveObserver(_key(rest[0], "observer"))
    raise AssertionError(f"no decoder for {kind}")


def check_action(action: Action) -> None:
    """The fields' own bounds; whether the action is possible depends on the state (node/ledger/governance.py)."""
    if isinstance(action, AddBank):
        refusal = name_error(action.name)
        if refusal is not None:
            raise TxDecodeError(TxDecodeCode.BAD_FIELD, f"the bank's name: {refusal}")
    elif isinstance(action, AddObserver):
        refusal = name_error(action.name)
        if refusal is not None:
            raise TxDecodeError(TxDecodeCode.BAD_FIELD, f"the observer's name: {refusal}")
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
    elif isinstance(action, DefineTier):
        refusal = tier_error(action.tier)
        if refusal is not None:
            raise TxDecodeError(TxDecodeCode.BAD_FIELD, refusal)
    elif isinstance(action, SetWallet):
        if not 0 <= action.tier <= INSTITUTIONAL:
            raise TxDecodeError(TxDecodeCode.BAD_FIELD, f"a wallet's tier is 0..{INSTITUTIONAL}")
        if action.linked == action.wallet:
            raise TxDecodeError(TxDecodeCode.BAD_FIELD, "a wallet is not its own linked account")
    elif isinstance(action, Seize):
        if not 1 <= action.amount <= MAX_TYIYN:
            raise TxDecodeError(TxDecodeCode.BAD_AMOUNT, "a seizure takes 1..2^64-1 tyiyn")
        if action.destination == action.account:
            raise TxDecodeError(TxDecodeCode.BAD_FIELD, "a seizure moves money to another account")
    if isinstance(action, Freeze | Unfreeze | Seize):
        _check_reference(action.reference)


def _check_reference(ref: OrderReference) -> None:
    refusal = name_error(ref.authority)
    if refusal is not None:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, f"the order's authority: {refusal}")
    refusal = name_error(ref.number)
    if refusal is not None or len(ref.number) > MAX_ORDER_NUMBER_CHARS:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD,
                            f"the order's number: 1..{MAX_ORDER_NUMBER_CHARS} characters of a name")
    try:
        valid = datetime.date.fromisoformat(ref.date).isoformat() == ref.date
    except ValueError:
        valid = False
    if not valid:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, f"the order's date is YYYY-MM-DD, got {ref.date!r}")
    if len(ref.document_sha256) != DOCUMENT_HASH_SIZE:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "the order document's hash is 32 bytes of SHA-256")


def _key(value: object, what: str) -> bytes:
    if type(value) is not bytes or len(value) != PUBLIC_KEY_SIZE:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, f"{what} must be a 32-byte public key")
    return value


def _linked(value: object) -> bytes:
    if type(value) is not bytes or len(value) not in (0, PUBLIC_KEY_SIZE):
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "a linked account is a 32-byte public key, or empty for none")
    return value


def _integer(value: object, what: str) -> int:
    if type(value) is not int:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, f"{what} is an integer")
    return value


def _text(value: object, what: str) -> str:
    if type(value) is not str:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, f"{what} is text")
    return value


def _scope(value: object) -> Scope:
    if type(value) is not int or value not in (1, 2, 3):
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "a scope is 1 (outgoing), 2 (incoming) or 3 (both)")
    return Scope(value)


def _reference(value: object) -> OrderReference:
    if type(value) is not list or len(value) != 4:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "an order's reference is [authority, number, date, sha256]")
    authority, number, date, document = value
    if type(document) is not bytes:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "the order document's hash is 32 bytes of SHA-256")
    return OrderReference(_text(authority, "the authority"), _text(number, "the order's number"),
                          _text(date, "the order's date"), document)
