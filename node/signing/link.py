"""The link between a validator and its remote signer: handshake, sealed frames, requests and answers.

Both sides authenticate with Ed25519 keys they were configured to expect (the
validator with its link key, the signer with the validator's consensus key,
which is what the validator needs to know it is talking to), agree on fresh
session keys by X25519 (libsodium's ``crypto_kx``), and seal every frame
after the hellos with ChaCha20-Poly1305 under a per-direction counter, so a
frame cannot be read, forged, replayed or reordered on the wire.  Pure
functions and values only: the validator's blocking client
(node/signing/remote.py) and the signer's asyncio server
(node/signing/server.py) do the I/O.  docs/protocol.md §15 is the same
protocol in words, for an implementation in another language.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

import msgpack
import nacl.bindings
import nacl.exceptions

LINK_DOMAIN = b"somnode-signer-link-v1\x00"
VERSION = 1
# Frames are small: a request carries one message to sign (a consensus message or a handshake transcript).
MAX_FRAME = 4096
KEY_SIZE = 32
SIGNATURE_SIZE = 64
MAX_KEYS = 2  # the validator's key and the one it rotates to
_LENGTH = struct.Struct(">I")
_NONCE_PREFIX = bytes(4)


class LinkError(Exception):
    """The peer broke the protocol or could not authenticate; the link is closed."""


class Request(IntEnum):
    SIGN = 1
    PING = 2


class Status(IntEnum):
    OK = 0
    REFUSED = 1  # at or below the high-water mark: the double-sign guard
    NOT_ALLOWED = 2  # bytes the signer never signs
    UNAVAILABLE = 3  # the signer's own key (a token) cannot sign just now


class Role(IntEnum):
    CLIENT = 1
    SERVER = 2


def frame(body: bytes) -> bytes:
    assert 0 < len(body) <= MAX_FRAME, "frames are small"
    return _LENGTH.pack(len(body)) + body


def frame_length(header: bytes) -> int:
    """The body length a 4-byte frame header announces."""
    (length,) = _LENGTH.unpack(header)
    if not 0 < length <= MAX_FRAME:
        raise LinkError(f"a frame of {length} bytes (at most {MAX_FRAME})")
    return length


def _unpack(body: bytes) -> object:
    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise LinkError(f"undecodable frame: {exc}") from None


def _is_key(value: object) -> bool:
    return type(value) is bytes and len(value) == KEY_SIZE


@dataclass(frozen=True, slots=True)
class ClientHello:
    """[version, chain_id, link key, ephemeral X25519 key]."""

    chain_id: str
    link_key: bytes
    ephemeral: bytes

    def encode(self) -> bytes:
        return msgpack.packb([VERSION, self.chain_id, self.link_key, self.ephemeral], use_bin_type=True)

    @classmethod
    def decode(cls, body: bytes) -> ClientHello:
        payload = _unpack(body)
        if type(payload) is not list or len(payload) != 4 or payload[0] != VERSION:
            raise LinkError("the client hello is not [1, chain_id, link_key, ephemeral]")
        _, chain_id, link_key, ephemeral = payload
        if type(chain_id) is not str or not _is_key(link_key) or not _is_key(ephemeral):
            raise LinkError("a client hello field of the wrong type or size")
        return cls(chain_id, link_key, ephemeral)


@dataclass(frozen=True, slots=True)
class ServerHello:
    """[version, chain_id, ephemeral X25519 key, [the public keys it signs with]]."""

    chain_id: str
    ephemeral: bytes
    keys: tuple[bytes, ...]

    def encode(self) -> bytes:
        return msgpack.packb([VERSION, self.chain_id, self.ephemeral, list(self.keys)], use_bin_type=True)

    @classmethod
    def decode(cls, body: bytes) -> ServerHello:
        payload = _unpack(body)
        if type(payload) is not list or len(payload) != 4 or payload[0] != VERSION:
            raise LinkError("the server hello is not [1, chain_id, ephemeral, keys]")
        _, chain_id, ephemeral, keys = payload
        if (type(chain_id) is not str or not _is_key(ephemeral) or type(keys) is not list
                or not 1 <= len(keys) <= MAX_KEYS or not all(_is_key(key) for key in keys)):
            raise LinkError("a server hello field of the wrong type or size")
        return cls(chain_id, ephemeral, tuple(keys))


def transcript(client: ClientHello, server: ServerHello, role: Role) -> bytes:
    """What each side signs to prove its key: both hellos, bound to the role that signs."""
    chain = client.chain_id.encode("utf-8")
    return (LINK_DOMAIN + bytes([len(chain)]) + chain + client.link_key + client.ephemeral + server.ephemeral
            + bytes([len(server.keys)]) + b"".join(server.keys) + bytes([role]))


def ephemeral_keypair() -> tuple[bytes, bytes]:
    """(public, secret) X25519 keys for one link."""
    return nacl.bindings.crypto_kx_keypair()


class Cipher:
    """Seals and opens one link's frames: ChaCha20-Poly1305 IETF, nonce = 4 zero bytes || 64-bit counter."""

    def __init__(self, send_key: bytes, receive_key: bytes) -> None:
        self._send_key, self._receive_key = send_key, receive_key
        self._sent = self._received = 0

    @classmethod
    def for_client(cls, public: bytes, secret: bytes, server_ephemeral: bytes) -> Cipher:
        try:
            receive, send = nacl.bindings.crypto_kx_client_session_keys(public, secret, server_ephemeral)
        except nacl.exceptions.CryptoError:
            raise LinkError("the server's ephemeral key is unusable") from None
        return cls(send, receive)

    @classmethod
    def for_server(cls, public: bytes, secret: bytes, client_ephemeral: bytes) -> Cipher:
        try:
            receive, send = nacl.bindings.crypto_kx_server_session_keys(public, secret, client_ephemeral)
        except nacl.exceptions.CryptoError:
            raise LinkError("the client's ephemeral key is unusable") from None
        return cls(send, receive)

    def seal(self, payload: object) -> bytes:
        """A whole frame (header included) carrying ``payload`` as msgpack."""
        nonce = _NONCE_PREFIX + self._sent.to_bytes(8, "big")
        self._sent += 1
        plain = msgpack.packb(payload, use_bin_type=True)
        return frame(nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt(plain, None, nonce, self._send_key))

    def open(self, body: bytes) -> object:
        nonce = _NONCE_PREFIX + self._received.to_bytes(8, "big")
        try:
            plain = nacl.bindings.crypto_aead_chacha20poly1305_ietf_decrypt(body, None, nonce, self._receive_key)
        except nacl.exceptions.CryptoError:
            raise LinkError("a frame failed authentication") from None
        self._received += 1
        return _unpack(plain)


def decode_auth(payload: object) -> bytes:
    if type(payload) is not list or len(payload) != 1 or type(payload[0]) is not bytes \
            or len(payload[0]) != SIGNATURE_SIZE:
        raise LinkError("auth is [64-byte signature]")
    return payload[0]


def decode_request(payload: object) -> tuple[int, Request, int, bytes]:
    """(request id, kind, key index, message); a PING has key index 0 and no message."""
    if type(payload) is not list or len(payload) not in (2, 4) or type(payload[0]) is not int \
            or not 0 <= payload[0] < 2**32:
        raise LinkError("a request is [id, kind, ...]")
    if payload[1] == Request.PING and len(payload) == 2:
        return payload[0], Request.PING, 0, b""
    if payload[1] == Request.SIGN and len(payload) == 4 and type(payload[2]) is int \
            and 0 <= payload[2] < MAX_KEYS and type(payload[3]) is bytes:
        return payload[0], Request.SIGN, payload[2], payload[3]
    raise LinkError("a request is [id, 1, key index, message] or [id, 2]")


def decode_answer(payload: object, request_id: int) -> tuple[Status, object]:
    """(status, value) of the answer to ``request_id``: a signature, a high-water mark, or a reason."""
    if type(payload) is not list or len(payload) != 3 or payload[0] != request_id:
        raise LinkError("an answer is [id, status, value] for the request outstanding")
    try:
        status = Status(payload[1])
    except ValueError:
        raise LinkError(f"answer status {payload[1]!r} is unknown") from None
    return status, payload[2]
