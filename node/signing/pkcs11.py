"""Ed25519 keys held in a PKCS#11 token (a hardware security module), through python-pkcs11.

The private key is made inside the token (``CKM_EC_EDWARDS_KEY_PAIR_GEN``),
marked sensitive and not extractable, and signs there (``CKM_EDDSA``, plain
Ed25519 as RFC 8032 defines it, which is what every verifier here checks);
this process only ever holds a handle to it.  One logged-in session serves
every key of a token.  A token that goes away mid-run (a network HSM
unreachable, a USB token pulled) makes a signature fail with
``SigningUnavailable``: consensus counts the message as lost, and the session
is opened again on a later signature, at most once per ``REOPEN_S``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pkcs11
import pkcs11.exceptions
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from consensus.crypto import SigningUnavailable
from node.core.address import encode_address

log = logging.getLogger(__name__)

# RFC 8410's object identifier of Ed25519, which the key's CKA_EC_PARAMS names.
ED25519_OID = "1.3.101.112"
REOPEN_S = 1.0
_PUBLIC_KEY_SIZE = 32
_libraries: dict[str, Any] = {}  # pkcs11.lib objects, by module path
_libraries_lock = threading.Lock()


class TokenError(Exception):
    """The module, token, PIN or key is not as the configuration says; the message says which."""


@dataclass(frozen=True, slots=True)
class TokenSpec:
    """Where a key lives: the PKCS#11 module (a shared library), the token's label, and its PIN."""

    module: Path
    token: str
    pin: str


def read_pin(pin_file: Path | None, pin_env: str | None, where: str) -> str:
    """The token's user PIN from the first line of a file or from an environment variable.

    ``where`` prefixes errors (a config field or an option), so the operator sees what to fix.
    """
    if (pin_file is None) == (pin_env is None):
        raise TokenError(f"{where}: give the PIN in exactly one of a file or an environment variable")
    if pin_file is not None:
        try:
            lines = pin_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenError(f"{where}: cannot read the PIN file {pin_file}: {exc}") from None
        pin = lines[0] if lines else ""
    else:
        assert pin_env is not None
        pin = os.environ.get(pin_env, "")
    if not pin:
        raise TokenError(f"{where}: the PIN {'file' if pin_file else 'variable ' + str(pin_env)} is empty or unset")
    return pin


def _library(module: Path) -> Any:
    """A module is loaded once per process: PKCS#11 allows one C_Initialize per library."""
    with _libraries_lock:
        found = _libraries.get(str(module))
        if found is None:
            try:
                found = _libraries[str(module)] = pkcs11.lib(str(module))
            except (RuntimeError, OSError, pkcs11.exceptions.PKCS11Error) as exc:
                raise TokenError(f"cannot load the PKCS#11 module {module}: {exc or type(exc).__name__}") from None
        return found


def _public_key_bytes(point: bytes) -> bytes:
    """CKA_EC_POINT of an Ed25519 key: the 32 bytes, DER-wrapped as an OCTET STRING by most tokens."""
    if len(point) == _PUBLIC_KEY_SIZE + 2 and point[:2] == b"\x04\x20":
        return point[2:]
    if len(point) == _PUBLIC_KEY_SIZE:
        return point
    raise TokenError(f"the token's public key is {len(point)} bytes, not an Ed25519 key")


class Token:
    """One logged-in session on a token, shared by the keys in it and used by one thread at a time."""

    def __init__(self, spec: TokenSpec, writable: bool = False) -> None:
        self.spec = spec
        self._writable = writable
        self._lock = threading.Lock()
        self._session: pkcs11.Session | None = None
        self._private: dict[str, Any] = {}  # private key objects of this session, by label
        self._next_open = 0.0
        with self._lock:
            self._session = self._open()

    def _open(self) -> pkcs11.Session:
        spec = self.spec
        library = _library(spec.module)
        try:
            token = library.get_token(token_label=spec.token)
        except pkcs11.exceptions.NoSuchToken:
            raise TokenError(f"no token labelled {spec.token!r} in {spec.module}") from None
        except pkcs11.exceptions.PKCS11Error as exc:
            raise TokenError(f"cannot reach the token {spec.token!r}: {type(exc).__name__}") from None
        try:
            return token.open(user_pin=spec.pin, rw=self._writable)
        except (pkcs11.exceptions.PinIncorrect, pkcs11.exceptions.PinInvalid, pkcs11.exceptions.PinLenRange):
            raise TokenError(f"the PIN for token {spec.token!r} is wrong") from None
        except pkcs11.exceptions.PinLocked:
            raise TokenError(f"the PIN of token {spec.token!r} is locked after too many wrong tries") from None
        except pkcs11.exceptions.PKCS11Error as exc:
            raise TokenError(f"cannot log in to token {spec.token!r}: {type(exc).__name__}") from None

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                try:
                    self._session.close()
                except pkcs11.exceptions.PKCS11Error:
                    pass  # the token is gone already: nothing left to close
                self._drop()

    def public_key(self, label: str) -> bytes:
        """The Ed25519 public key stored under ``label`` (a private key of that label must exist too)."""
        with self._lock:
            session = self._session
            assert session is not None, "a token is open until closed"
            try:
                session.get_key(ObjectClass.PRIVATE_KEY, KeyType.EC_EDWARDS, label=label)
                public = session.get_key(ObjectClass.PUBLIC_KEY, KeyType.EC_EDWARDS, label=label)
                return _public_key_bytes(bytes(public[Attribute.EC_POINT]))
            except pkcs11.exceptions.NoSuchKey:
                raise TokenError(f"token {self.spec.token!r} holds no Ed25519 key pair labelled {label!r}") from None
            except pkcs11.exceptions.MultipleObjectsReturned:
                raise TokenError(f"token {self.spec.token!r} holds several keys labelled {label!r}") from None

    def generate(self, label: str) -> bytes:
        """Make a new Ed25519 key pair in the token, its private half sensitive and never extractable."""
        with self._lock:
            session = self._session
            assert session is not None and self._writable, "generating needs a read-write session"
            if list(session.get_objects({Attribute.LABEL: label})):
                raise TokenError(f"token {self.spec.token!r} already holds a key labelled {label!r}; "
                                 f"refusing to make a second one")
            params = encode_named_curve_parameters(ED25519_OID)
            try:
                public, _ = session.generate_keypair(
                    KeyType.EC_EDWARDS, mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN, store=True, label=label,
                    public_template={Attribute.EC_PARAMS: params, Attribute.TOKEN: True, Attribute.VERIFY: True},
                    private_template={Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                                      Attribute.EXTRACTABLE: False, Attribute.SIGN: True})
            except pkcs11.exceptions.PKCS11Error as exc:
                raise TokenError(f"token {self.spec.token!r} cannot make an Ed25519 key: {type(exc).__name__}") \
                    from None
            return _public_key_bytes(bytes(public[Attribute.EC_POINT]))

    def sign(self, label: str, message: bytes) -> bytes:
        """Ed25519 in the token; ``SigningUnavailable`` when the token cannot be reached just now."""
        with self._lock:
            if self._session is None:
                now = time.monotonic()
                if now < self._next_open:
                    raise SigningUnavailable(f"token {self.spec.token!r} is unavailable")
                self._next_open = now + REOPEN_S
                try:
                    self._session = self._open()
                except TokenError as exc:
                    log.warning("pkcs11.unavailable token=%s reason=%s", _field(self.spec.token), _field(str(exc)))
                    raise SigningUnavailable(str(exc)) from None
                log.info("pkcs11.reopened token=%s", _field(self.spec.token))
            try:
                key: Any = self._private.get(label)
                if key is None:
                    key = self._private[label] = self._session.get_key(
                        ObjectClass.PRIVATE_KEY, KeyType.EC_EDWARDS, label=label)
                return bytes(key.sign(message, mechanism=Mechanism.EDDSA))
            except pkcs11.exceptions.PKCS11Error as exc:
                # The session is no good any more (device removed, session closed, token reset):
                # drop it, and open a new one on a later signature.
                log.warning("pkcs11.unavailable token=%s reason=%s", _field(self.spec.token), type(exc).__name__)
                self._drop()
                self._next_open = time.monotonic() + REOPEN_S
                raise SigningUnavailable(f"token {self.spec.token!r}: {type(exc).__name__}") from None

    def _drop(self) -> None:
        """Forget the session and the key objects found in it (under the lock)."""
        self._session = None
        self._private.clear()


class TokenKey:
    """A validator key in a token: the node's signer interface over ``Token.sign``."""

    def __init__(self, token: Token, label: str) -> None:
        self._token = token
        self.label = label
        self.public_key = token.public_key(label)

    @property
    def address(self) -> str:
        return encode_address(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._token.sign(self.label, message)


def _field(text: str) -> str:
    """A log field value without spaces."""
    return "_".join(text.split()) or "-"
