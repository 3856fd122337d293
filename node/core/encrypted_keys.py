"""Passphrase-protected key files for people's keys (the issuer, banks, board members).

Those keys sit on workstations and in backups, where a plain seed is one
copied file away from a forged issue or a board approval.  The seed is sealed
with XChaCha20-Poly1305 (an AEAD) under a key that argon2id (memory-hard)
derives from the passphrase, both from libsodium through PyNaCl: nothing here
is home-made cryptography.  The file's header (address and KDF parameters) is
the AEAD's associated data, so a file altered anywhere is refused, and the
parameters a reader accepts are bounded, so a crafted file cannot make it
allocate without limit.  docs/protocol.md §2.1 specifies the format.
"""

from __future__ import annotations

import os
import struct

import nacl.bindings
import nacl.exceptions
import nacl.pwhash
import nacl.utils

ENCRYPTED_KEY_FILE_TYPE = "somnode-ed25519-encrypted-v1"
KDF = "argon2id"
CIPHER = "xchacha20poly1305-ietf"
SEED_SIZE = 32
SALT_SIZE = nacl.pwhash.argon2id.SALTBYTES
NONCE_SIZE = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
# libsodium's "moderate" argon2id: about half a second and 256 MiB on a workstation, once per use of the key.
DEFAULT_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_MODERATE
DEFAULT_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_MODERATE
# What a reader accepts: libsodium's minimum up to 16 passes and 4 GiB.
OPSLIMIT_RANGE = (nacl.pwhash.argon2id.OPSLIMIT_MIN, 16)
MEMLIMIT_RANGE = (nacl.pwhash.argon2id.MEMLIMIT_MIN, 4 * 1024**3)
MIN_PASSPHRASE_CHARS = 12
_AAD_TAG = ENCRYPTED_KEY_FILE_TYPE.encode("ascii") + b"\x00"


class WrongPassphrase(ValueError):
    """The AEAD refused the file: a wrong passphrase, or a file altered since it was written."""


def associated_data(address: str, opslimit: int, memlimit: int, salt: bytes) -> bytes:
    """The header bytes the cipher authenticates alongside the seed."""
    return (_AAD_TAG + address.encode("ascii") + b"\x00" + KDF.encode("ascii") + b"\x00"
            + struct.pack(">QQ", opslimit, memlimit) + salt)


def _derive(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        nacl.bindings.crypto_aead_xchacha20poly1305_ietf_KEYBYTES, passphrase.encode("utf-8"), salt,
        opslimit=opslimit, memlimit=memlimit)


def check_passphrase(passphrase: str) -> None:
    """Refuse a passphrase too short to stand against an offline guess of a stolen file."""
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise ValueError(f"the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters")


def encrypt_seed(seed: bytes, address: str, passphrase: str, *, opslimit: int = DEFAULT_OPSLIMIT,
                 memlimit: int = DEFAULT_MEMLIMIT) -> dict[str, object]:
    """The JSON document of an encrypted key file holding ``seed`` (whose address is ``address``)."""
    assert len(seed) == SEED_SIZE, "an Ed25519 seed is 32 bytes"
    assert OPSLIMIT_RANGE[0] <= opslimit <= OPSLIMIT_RANGE[1] and MEMLIMIT_RANGE[0] <= memlimit <= MEMLIMIT_RANGE[1]
    salt, nonce = os.urandom(SALT_SIZE), os.urandom(NONCE_SIZE)
    key = _derive(passphrase, salt, opslimit, memlimit)
    sealed = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        seed, associated_data(address, opslimit, memlimit, salt), nonce, key)
    return {"type": ENCRYPTED_KEY_FILE_TYPE, "address": address, "kdf": KDF, "opslimit": opslimit,
            "memlimit": memlimit, "salt": salt.hex(), "cipher": CIPHER, "nonce": nonce.hex(),
            "ciphertext": sealed.hex()}


def decrypt_seed(document: dict[str, object], passphrase: str) -> bytes:
    """The seed sealed in ``document``; ValueError for a malformed document, WrongPassphrase when the
    cipher refuses it."""
    if document.get("kdf") != KDF or document.get("cipher") != CIPHER:
        raise ValueError(f"kdf must be {KDF!r} and cipher {CIPHER!r}")
    opslimit, memlimit = document.get("opslimit"), document.get("memlimit")
    if type(opslimit) is not int or not OPSLIMIT_RANGE[0] <= opslimit <= OPSLIMIT_RANGE[1]:
        raise ValueError(f"opslimit must be an integer in {OPSLIMIT_RANGE[0]}..{OPSLIMIT_RANGE[1]}")
    if type(memlimit) is not int or not MEMLIMIT_RANGE[0] <= memlimit <= MEMLIMIT_RANGE[1]:
        raise ValueError(f"memlimit must be an integer in {MEMLIMIT_RANGE[0]}..{MEMLIMIT_RANGE[1]}")
    address = document.get("address")
    if not isinstance(address, str) or not address.isascii():
        raise ValueError("address must be a som1… address")
    salt = _hex_field(document, "salt", SALT_SIZE)
    nonce = _hex_field(document, "nonce", NONCE_SIZE)
    sealed = _hex_field(document, "ciphertext", SEED_SIZE + nacl.bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES)
    key = _derive(passphrase, salt, opslimit, memlimit)
    try:
        return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            sealed, associated_data(address, opslimit, memlimit, salt), nonce, key)
    except nacl.exceptions.CryptoError:
        raise WrongPassphrase("wrong passphrase, or the file was altered since it was written") from None


def _hex_field(document: dict[str, object], name: str, size: int) -> bytes:
    text = document.get(name)
    if not isinstance(text, str) or len(text) != 2 * size:
        raise ValueError(f"{name} must be {size} bytes in hex")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{name} must be {size} bytes in hex") from None
