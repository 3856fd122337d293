"""Wallet registration: a commercial bank puts a customer's wallet in a tier and links it to an account.

A bank signs it with its own key and nonce, like a payment, so it rides the
same admission, ordering and signature paths:

    [version, 5, bank, nonce, wallet, tier, linked, signature]

``tier`` is 0..254 (the board alone designates institutional accounts);
``linked`` is the 32-byte key of the account that takes what would carry the
wallet over its holding limit (the waterfall), or empty for none.  The
signature covers the same prefix as a payment's (node/core/tx.py): domain
tag, chain id, unsigned array.  A registration moves no money, so it has
no amount; it names the wallet as its ``recipient``, the account it changes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from node.core.tiers import MAX_TIER_ID
from node.core.tx import (
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    TX_VERSION,
    Signer,
    TxDecodeCode,
    TxDecodeError,
    TxKind,
    pack,
    signing_prefix,
)

_U64 = 2**64 - 1
# Wire bytes of the signature field: msgpack bin 8 header (0xc4, length 64).
_SIGNATURE_FIELD_SIZE = 2 + SIGNATURE_SIZE


@dataclass(frozen=True, slots=True)
class Registration:
    sender: bytes  # the registering bank
    nonce: int
    wallet: bytes
    tier: int
    linked: bytes  # empty: no linked account

    def __post_init__(self) -> None:
        _check(self)

    @property
    def kind(self) -> TxKind:
        return TxKind.REGISTER

    @property
    def recipient(self) -> bytes:
        """The account the registration changes."""
        return self.wallet

    @property
    def amount(self) -> int:
        return 0

    def fields(self) -> list[object]:
        return [TX_VERSION, int(TxKind.REGISTER), self.sender, self.nonce, self.wallet, self.tier, self.linked]

    def unsigned_bytes(self) -> bytes:
        return pack(self.fields())

    def signing_bytes(self, chain_id: str) -> bytes:
        return signing_prefix(chain_id) + self.unsigned_bytes()

    def sign(self, key: Signer, chain_id: str) -> SignedRegistration:
        if key.public_key != self.sender:
            raise ValueError("the key does not belong to the registering bank")
        signature = key.sign(self.signing_bytes(chain_id))
        raw = pack(self.fields() + [signature])
        return SignedRegistration(self, signature, raw, hashlib.sha256(raw).digest())


@dataclass(frozen=True, slots=True)
class SignedRegistration:
    tx: Registration
    signature: bytes
    raw: bytes
    hash: bytes

    def unsigned_bytes(self) -> bytes:
        return bytes([self.raw[0] - 1]) + self.raw[1:-_SIGNATURE_FIELD_SIZE]

    def verify_item(self, prefix: bytes) -> tuple[bytes, bytes, bytes]:
        """(public key, message, signature) for the verifier, as a payment's."""
        return self.tx.sender, prefix + self.unsigned_bytes(), self.signature


def decode_fields(fields: list[object], raw: bytes) -> SignedRegistration:
    """A registration from its decoded envelope (version and kind already checked)."""
    if len(fields) != 8:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD_COUNT, f"register has 8 fields, got {len(fields)}")
    _, _, sender, nonce, wallet, tier, linked, signature = fields
    if type(signature) is not bytes or len(signature) != SIGNATURE_SIZE:
        raise TxDecodeError(TxDecodeCode.BAD_SIGNATURE, "signature must be 64 bytes")
    if type(nonce) is not int or type(tier) is not int:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "nonce and tier are integers")
    tx = Registration(sender, nonce, wallet, tier, linked)  # type: ignore[arg-type]  # checked in _check
    if pack(fields) != raw:
        raise TxDecodeError(TxDecodeCode.NON_CANONICAL, "the encoding is not canonical")
    return SignedRegistration(tx, signature, raw, hashlib.sha256(raw).digest())


def _check(tx: Registration) -> None:
    for what, key in (("the bank", tx.sender), ("the wallet", tx.wallet)):
        if type(key) is not bytes or len(key) != PUBLIC_KEY_SIZE:
            raise TxDecodeError(TxDecodeCode.BAD_FIELD, f"{what} must be a 32-byte public key")
    if type(tx.nonce) is not int or not 0 <= tx.nonce <= _U64:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "nonce must be an unsigned 64-bit integer")
    if type(tx.tier) is not int or not 0 <= tx.tier <= MAX_TIER_ID:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, f"a bank registers tiers 0..{MAX_TIER_ID}")
    if type(tx.linked) is not bytes or len(tx.linked) not in (0, PUBLIC_KEY_SIZE):
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "a linked account is a 32-byte public key, or empty for none")
    if tx.wallet == tx.sender:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "a bank does not register itself")
    if tx.linked == tx.wallet:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "a wallet is not its own linked account")
