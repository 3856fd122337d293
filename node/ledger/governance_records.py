"""The governance state as LevelDB records (node/ledger/layout.py): what the store writes and reads back.

The records are application state, so they enter the app hash exactly as
written; a deleted record enters it with a nil value.
"""

from __future__ import annotations

import msgpack
import plyvel

from node.core.actions import ActionKind, Freeze, Order, Seize
from node.core.tiers import Tier
from node.core.validator_set import encode_validators
from node.ledger import layout as k
from node.ledger.governance import Board, Governance, ValidatorPowers

Record = tuple[bytes, bytes | None]  # None: the record is deleted


def genesis_records(state: Governance) -> list[Record]:
    """Every governance record of a chain's first state."""
    return [
        (k.BOARD, _board_value(state.board)),
        (k.ISSUER, state.issuer),
        (k.SEQUENCE, k.encode_height(state.sequence)),
        *((k.bank_key(key), name.encode("utf-8")) for key, name in state.banks),
        *((k.retired_key(old), new) for old, new in state.retired),
        *((k.tier_key(tier.id), encode_tier(tier)) for tier in state.tiers),
        *((k.observer_key(key), name.encode("utf-8")) for key, name in state.observers),
        (k.validators_key(state.validators_from), encode_validators(state.validators)),
    ]


def changed_records(before: Governance, after: Governance) -> list[Record]:
    """The records a block rewrote: only what changed, deletions included."""
    records: list[Record] = []
    if after.board != before.board:
        records.append((k.BOARD, _board_value(after.board)))
    if after.issuer != before.issuer:
        records.append((k.ISSUER, after.issuer))
    if after.sequence != before.sequence:
        records.append((k.SEQUENCE, k.encode_height(after.sequence)))
    old_banks, new_banks = dict(before.banks), dict(after.banks)
    for key in old_banks.keys() - new_banks.keys():
        records.append((k.bank_key(key), None))
    for key, name in new_banks.items():
        if old_banks.get(key) != name:
            records.append((k.bank_key(key), name.encode("utf-8")))
    old_observers, new_observers = dict(before.observers), dict(after.observers)
    records.extend((k.observer_key(key), None) for key in old_observers.keys() - new_observers.keys())
    records.extend((k.observer_key(key), name.encode("utf-8")) for key, name in new_observers.items()
                   if old_observers.get(key) != name)
    old_tiers = {tier.id: tier for tier in before.tiers}
    records.extend((k.tier_key(tier.id), encode_tier(tier)) for tier in after.tiers if old_tiers.get(tier.id) != tier)
    already = dict(before.retired)
    records.extend((k.retired_key(old), new) for old, new in after.retired if old not in already)
    if after.validators_from != before.validators_from:
        records.append((k.validators_key(after.validators_from), encode_validators(after.validators)))
    return records


def read_governance(db: plyvel.DB) -> tuple[Governance, list[tuple[int, ValidatorPowers]]]:
    """The governance state and the whole validator schedule as a store holds them; ValueError
    (or plyvel's CorruptionError) if a record is missing or damaged."""
    singletons = {key: db.get(key, verify_checksums=True) for key in (k.BOARD, k.ISSUER, k.SEQUENCE)}
    if any(value is None for value in singletons.values()):
        raise ValueError("a governance record is missing")
    issuer = singletons[k.ISSUER]
    if issuer is None or len(issuer) != 32:
        raise ValueError("the issuer record is not a 32-byte key")
    with db.iterator(prefix=k.VALIDATORS, verify_checksums=True) as entries:
        schedule = [(k.decode_height(key[len(k.VALIDATORS):]), decode_validators(value)) for key, value in entries]
    with db.iterator(prefix=k.BANK, verify_checksums=True) as entries:
        banks = tuple((key[len(k.BANK):], value.decode("utf-8")) for key, value in entries)
    with db.iterator(prefix=k.RETIRED, verify_checksums=True) as entries:
        retired = tuple((key[len(k.RETIRED):], value) for key, value in entries)
    with db.iterator(prefix=k.TIER, verify_checksums=True) as entries:
        tiers = tuple(decode_tier(key[len(k.TIER)], value) for key, value in entries)
    with db.iterator(prefix=k.OBSERVER, verify_checksums=True) as entries:
        observers = tuple((key[len(k.OBSERVER):], value.decode("utf-8")) for key, value in entries)
    if not schedule:
        raise ValueError("there is no validator set")
    from_height, validators = schedule[-1]
    governance = Governance(
        sequence=k.decode_height(singletons[k.SEQUENCE]), board=decode_board(singletons[k.BOARD]),
        issuer=issuer, banks=banks, validators=validators, validators_from=from_height, retired=retired,
        tiers=tiers, observers=observers)
    return governance, schedule


def decode_validators(raw: bytes) -> ValidatorPowers:
    entries = msgpack.unpackb(raw, raw=False, use_list=True)
    if not isinstance(entries, list) or not all(
            isinstance(e, list) and len(e) == 2 and type(e[0]) is bytes and type(e[1]) is int for e in entries):
        raise ValueError("a validator set record is [[key, power], ...]")
    return tuple((key, power) for key, power in entries)


def encode_order(order: Order) -> bytes:
    """A legal order as the account's order history keeps it (node/ledger/layout.py)."""
    ref = order.reference
    if isinstance(order, Seize):
        detail, destination = order.amount, order.destination
    else:
        detail, destination = int(order.scope), b""
    kind = ActionKind.SEIZE if isinstance(order, Seize) else (
        ActionKind.FREEZE if isinstance(order, Freeze) else ActionKind.UNFREEZE)
    encoded: bytes = msgpack.packb([int(kind), detail, destination, ref.authority, ref.number, ref.date,
                                    ref.document_sha256], use_bin_type=True)
    return encoded


def encode_tier(tier: Tier) -> bytes:
    encoded: bytes = msgpack.packb([tier.name, tier.max_balance, tier.max_payment, tier.max_daily_out],
                                   use_bin_type=True)
    return encoded


def decode_tier(tier_id: int, raw: bytes) -> Tier:
    fields = msgpack.unpackb(raw, raw=False, use_list=True)
    if not (isinstance(fields, list) and len(fields) == 4):
        raise ValueError("a tier record is [name, max_balance, max_payment, max_daily_out]")
    return Tier(tier_id, *fields)


def decode_board(raw: bytes) -> Board:
    fields = msgpack.unpackb(raw, raw=False, use_list=True)
    if not (isinstance(fields, list) and len(fields) == 2 and type(fields[0]) is int and isinstance(fields[1], list)
            and all(type(member) is bytes for member in fields[1])):
        raise ValueError("a board record is [threshold, [member, ...]]")
    return Board(fields[0], tuple(fields[1]))


def _board_value(board: Board) -> bytes:
    encoded: bytes = msgpack.packb([board.threshold, list(board.members)], use_bin_type=True)
    return encoded
