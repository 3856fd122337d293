"""Checking a state proof document (``GET /v1/state/proof``, ``/v1/accounts/{address}/proof``) against a
header the client verified (docs/protocol.md §16.3, §17).

A document proves that after block ``height`` the record ``key`` had ``value``
(or was absent) under ``app_hash``; it is worth something only because block
``height + 1``'s header, whose certificate the client checked, carries that
``app_hash`` as its ``previous_app_hash``.  So the caller hands in the headers
it followed, and every field of the document is checked against them: none is
taken from the node on trust.

The record layouts decoded here are docs/ledger.md's ("Key layout"), written
out again rather than imported from node/ledger, so that a light client does
not load the node's storage engine.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass

import msgpack

from node.core import state_proof
from node.core.block import Header
from node.lightclient.documents import from_hex, hex_field, integer

ACCOUNT_PREFIX = b"a"
ORDER_PREFIX = b"o"
PUBLIC_KEY_SIZE = 32
# balance u64 || next nonce u64 || tier u8 || freeze flags u8 || day u32 || spent that day u64
ACCOUNT_VALUE = struct.Struct(">QQBBIQ")
FROZEN_OUTGOING = 1
FROZEN_INCOMING = 2
_ORDER_POSITION = struct.Struct(">QI")


class StateProofError(ValueError):
    """The document does not prove what it claims; the message names the failing check."""


@dataclass(frozen=True, slots=True)
class ProvenRecord:
    """A record (or its absence) after block ``height``, proven under the app hash that the verified
    header of ``height + 1`` carries."""

    height: int
    key: bytes
    value: bytes | None
    app_hash: bytes


@dataclass(frozen=True, slots=True)
class ProvenAccount:
    """An account record's fields (docs/ledger.md, Accounts)."""

    balance: int
    nonce: int
    tier: int
    flags: int
    day: int
    spent: int


@dataclass(frozen=True, slots=True)
class ProvenOrder:
    """A legal order record: ``[kind, scope or amount, destination, authority, number, date, document sha256]``."""

    height: int
    index: int
    kind: int
    detail: int
    destination: bytes
    authority: str
    number: str
    date: str
    document_sha256: bytes


def account_key(public_key: bytes) -> bytes:
    return ACCOUNT_PREFIX + public_key


def order_key(public_key: bytes, height: int, index: int) -> bytes:
    return ORDER_PREFIX + public_key + _ORDER_POSITION.pack(height, index)


def verify_state_document(document: Mapping[str, object], key: bytes, headers: Mapping[int, Header]) -> ProvenRecord:
    """Check ``document`` for the record ``key`` against the verified ``headers`` (by height); raise
    ``StateProofError`` at the first mismatch.

    The order of the checks is docs/protocol.md §17.3's: the document is about this key; it names a
    height whose certifying header the client followed; its app hash is that header's
    ``previous_app_hash``; and its entries and siblings lead from the value to that app hash.
    """
    height = integer(document, "height", StateProofError)
    certified_by = integer(document, "certified_by", StateProofError)
    if hex_field(document, "key", StateProofError) != key:
        raise StateProofError(f"key: the document proves key {document.get('key')}, not {key.hex()}")
    if certified_by != height + 1:
        raise StateProofError(f"certified_by: {certified_by}, but the state after block {height} is certified by "
                              f"block {height + 1}")
    header = headers.get(certified_by)
    if header is None:
        raise StateProofError(f"certified_by: block {certified_by} is not among the headers this client verified")
    app_hash = hex_field(document, "app_hash", StateProofError)
    if app_hash != header.previous_app_hash:
        raise StateProofError(f"app_hash: {app_hash.hex()} is not the previous_app_hash "
                              f"{header.previous_app_hash.hex()} of the verified header {certified_by}")
    raw_value = document.get("value")
    value = None if raw_value is None else hex_field(document, "value", StateProofError)
    proof = document.get("proof")
    if not isinstance(proof, Mapping):
        raise StateProofError("proof: must be an object with entries and siblings")
    entries = proof.get("entries")
    siblings = proof.get("siblings")
    if not isinstance(entries, list) or len(entries) > state_proof.MAX_PROOF_ENTRIES:
        raise StateProofError("proof.entries: must be a list of hex entries")
    if not isinstance(siblings, list) or len(siblings) != state_proof.LEVELS \
            or any(not isinstance(level, list) for level in siblings):
        raise StateProofError(f"proof.siblings: must be {state_proof.LEVELS} lists of hex hashes")
    parsed = state_proof.StateProof(
        tuple(from_hex(e, "proof.entries", StateProofError) for e in entries),
        tuple(tuple(from_hex(s, "proof.siblings", StateProofError) for s in level) for level in siblings))
    try:
        state_proof.verify(app_hash, key, value, parsed)
    except state_proof.ProofError as exc:
        raise StateProofError(f"proof: {exc}") from None
    return ProvenRecord(height, key, value, app_hash)


def decode_account(value: bytes) -> ProvenAccount:
    if len(value) != ACCOUNT_VALUE.size:
        raise StateProofError(f"value: an account record is {ACCOUNT_VALUE.size} bytes, not {len(value)}")
    return ProvenAccount(*ACCOUNT_VALUE.unpack(value))


def decode_order(key: bytes, value: bytes) -> ProvenOrder:
    """An order record; its height and index come from its key."""
    height, index = _ORDER_POSITION.unpack(key[1 + PUBLIC_KEY_SIZE:])
    try:
        fields = msgpack.unpackb(value, raw=False)
    except (ValueError, msgpack.exceptions.ExtraData) as exc:
        raise StateProofError(f"value: the order record is not msgpack: {exc}") from None
    if not isinstance(fields, list) or len(fields) != 7:
        raise StateProofError("value: an order record is a 7-element array")
    kind, detail, destination, authority, number, date, document = fields
    if type(kind) is not int or type(detail) is not int or type(destination) is not bytes \
            or not all(type(text) is str for text in (authority, number, date)) or type(document) is not bytes:
        raise StateProofError("value: the order record's fields have the wrong types")
    return ProvenOrder(height, index, kind, detail, destination, authority, number, date, document)
