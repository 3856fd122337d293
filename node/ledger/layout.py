"""The LevelDB key layout of the ledger.

One-byte prefixes keep each family in its own contiguous key range, so a
family can be scanned with a prefix iterator and two families never collide.
Integers in keys are big-endian so that byte order equals numeric order.

    a<pk:32>        account: balance u64 || next nonce u64 || tier u8 || freeze flags u8
                    || day u32 || spent that day u64 (node/ledger/book.py)
    s               supply: issued u128 || redeemed u128
    gbank<pk:32>    a bank: its name (UTF-8)
    gboard          the board: msgpack [threshold, [member key, ...]]
    gissuer         the issuer's key
    gsequence       the board's next governance sequence: u64
    gretired<pk:32> a validator key rotated away, retired for good: the key that replaced it
    gtier<id:u8>    a wallet tier: msgpack [name, max_balance, max_payment, max_daily_out]
    gobserver<pk:32> an observer node's key, which validators admit to follow the chain: its name (UTF-8)
    w<pk:32>        a wallet's registration: msgpack [registering bank (empty: the board),
                    linked account (empty: none)]
    o<pk:32><height:u64><index:u32>
                    a legal order on the account, applied in that block at that index: msgpack
                    [kind, scope or amount, destination (or empty), authority, number, date, document sha256]
    v<height:u64>   the validator set from that height on: msgpack [[key, power], ...]
    b<height:u64>   block bytes (opaque, supplied by the caller)
    c<height:u64>   commit certificate bytes (opaque)
    r<height:u64>   receipts: (tx_hash:32 || code:u8) per transaction
    t<hash:32>      transaction index: height u64 || index u32 || code u8, and for a payment that
                    overflowed into a linked account: credited u64 || passed on u64 || linked key (32)
    h<n:u64>        governance history, every governance transaction a block applied, numbered
                    from 0: msgpack [height, index, code, transaction bytes]
    m<name>         chain meta (schema, chain id, genesis hash, height, app hash, the results root
                    of the last block, transactions committed so far, governance history entries so far,
                    the earliest height whose block is kept: absent until pruning, node/ledger/pruning.py)

``a``, ``s``, ``g``, ``v``, ``w`` and ``o`` are application state: the leaves of the state tree,
whose root is the app hash (node/ledger/tree.py).
"""

from __future__ import annotations

import struct

ACCOUNT = b"a"
SUPPLY = b"s"
BANK = b"gbank"
BOARD = b"gboard"
ISSUER = b"gissuer"
SEQUENCE = b"gsequence"
RETIRED = b"gretired"
TIER = b"gtier"
OBSERVER = b"gobserver"
REGISTRATION = b"w"
ORDER = b"o"
VALIDATORS = b"v"
HISTORY = b"h"
BLOCK = b"b"
CERTIFICATE = b"c"
RECEIPTS = b"r"
TX_INDEX = b"t"

STATE_PREFIXES = (b"a", b"g", b"o", b"s", b"v", b"w")

META_SCHEMA = b"mschema"
META_CHAIN_ID = b"mchain_id"
META_GENESIS_HASH = b"mgenesis_hash"
META_HEIGHT = b"mheight"
META_APP_HASH = b"mapp_hash"
META_TX_COUNT = b"mtx_count"
META_HISTORY_COUNT = b"mhistory_count"
META_RESULTS_HASH = b"mresults_hash"
META_EARLIEST = b"mearliest"

# 4: block v2 (docs/protocol.md §12), the results root and the state tree (docs/ledger.md);
# stores of schema 3 are not migrated.
SCHEMA_VERSION = b"somnode-ledger-4"

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
ACCOUNT_VALUE = struct.Struct(">QQBBIQ")
SUPPLY_VALUE = struct.Struct(">QQQQ")
_U64_MASK = (1 << 64) - 1


def account_key(public_key: bytes) -> bytes:
    return ACCOUNT + public_key


def block_key(height: int) -> bytes:
    return BLOCK + _U64.pack(height)


def certificate_key(height: int) -> bytes:
    return CERTIFICATE + _U64.pack(height)


def receipts_key(height: int) -> bytes:
    return RECEIPTS + _U64.pack(height)


def tx_key(tx_hash: bytes) -> bytes:
    return TX_INDEX + tx_hash


def encode_height(height: int) -> bytes:
    return _U64.pack(height)


def decode_height(raw: bytes) -> int:
    height: int = _U64.unpack(raw)[0]
    return height


COUNT_SIZE = _U64.size


def encode_count(count: int) -> bytes:
    return _U64.pack(count)


def decode_count(raw: bytes) -> int:
    count: int = _U64.unpack(raw)[0]
    return count


def encode_supply(issued: int, redeemed: int) -> bytes:
    """Issued and redeemed are lifetime totals and may outgrow u64, so they are u128."""
    return SUPPLY_VALUE.pack(issued >> 64, issued & _U64_MASK, redeemed >> 64, redeemed & _U64_MASK)


def decode_supply(raw: bytes) -> tuple[int, int]:
    ih, il, rh, rl = SUPPLY_VALUE.unpack(raw)
    return (ih << 64) | il, (rh << 64) | rl


def bank_key(public_key: bytes) -> bytes:
    return BANK + public_key


def validators_key(height: int) -> bytes:
    return VALIDATORS + _U64.pack(height)


def retired_key(public_key: bytes) -> bytes:
    return RETIRED + public_key


def tier_key(tier_id: int) -> bytes:
    return TIER + bytes([tier_id])


def observer_key(public_key: bytes) -> bytes:
    return OBSERVER + public_key


def registration_key(public_key: bytes) -> bytes:
    return REGISTRATION + public_key


def order_key(public_key: bytes, height: int, index: int) -> bytes:
    return ORDER + public_key + _U64.pack(height) + _U32.pack(index)


def history_key(number: int) -> bytes:
    return HISTORY + _U64.pack(number)


def prefix_end(prefix: bytes) -> bytes:
    """The first key after every key that starts with the one-byte ``prefix`` (an iterator's stop)."""
    assert len(prefix) == 1 and prefix != b"\xff", "record prefixes are single bytes below 0xff"
    return bytes([prefix[0] + 1])
