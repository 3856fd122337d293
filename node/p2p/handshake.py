"""Mutual authentication of two validators opening a link.

Only validators may hold a link (those of the height being decided and of
the next: the set is a function of the height), so each side proves it holds
the private key of the validator it claims to be:

    initiator -> responder   hello  [version, chain_id, genesis_hash, public_key, nonce_i]
    responder -> initiator   hello  [version, chain_id, genesis_hash, public_key, nonce_r]
    initiator -> responder   auth   [sign_i(transcript(INITIATOR))]
    responder -> initiator   auth   [sign_r(transcript(RESPONDER))]

    transcript(role) = domain || len(chain_id) || chain_id || genesis_hash
                       || initiator_key || responder_key || nonce_i || nonce_r || role

Each signature covers the other side's fresh random nonce, so a recorded
handshake is worthless on a new link (replay), and it names the signer's role,
so a signature cannot be bounced back to the side that made it (reflection).
The responder checks the initiator's hello before revealing anything and its
auth before signing anything, so an outsider never obtains a signature.

The handshake admits peers; it does not encrypt or bind later frames.  Every
consensus message, transaction and certificate carries its own signature, and
deployments that need link confidentiality terminate the websocket in TLS.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Protocol

import aiohttp

from consensus.crypto import SigningUnavailable
from node.core.keys import Key, verify_signature
from node.core.tx import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, chain_id_bytes
from node.p2p.framing import FrameType, WireError, pack_frame, unpack_frame

HANDSHAKE_DOMAIN = b"somnode-p2p-handshake-v1\x00"
# 2: a status carries the lowest height whose block the sender keeps (pruning).
# 3: snapshot and chunk requests (state sync), and observer links.
PROTOCOL_VERSION = 3
NONCE_SIZE = 32
GENESIS_HASH_SIZE = 32
# Hello and auth frames are tiny; anything bigger during the handshake is hostile.
HANDSHAKE_FRAME_BYTES = 512
# Websocket close code (private range) sent with the refusal reason as text.
REFUSAL_CLOSE_CODE = 4001


class Role(IntEnum):
    INITIATOR = 1
    RESPONDER = 2


class Refusal(StrEnum):
    """Why a link was refused; the value is what logs and counters show."""

    MALFORMED = "malformed"
    VERSION = "protocol_version"
    CHAIN_ID = "chain_id_mismatch"
    GENESIS = "genesis_mismatch"
    UNKNOWN_VALIDATOR = "unknown_validator"
    UNEXPECTED_PEER = "unexpected_peer"
    SELF = "self_connection"
    BAD_SIGNATURE = "bad_signature"
    ALREADY_CONNECTED = "already_connected"
    TIMEOUT = "timeout"
    REMOTE_CLOSED = "remote_closed"
    TOO_MANY_PENDING = "too_many_pending"
    SIGNER_UNAVAILABLE = "signer_unavailable"
    TOO_MANY_OBSERVERS = "too_many_observers"


class HandshakeRefused(Exception):
    def __init__(self, reason: Refusal, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


class Channel(Protocol):
    """The part of an aiohttp websocket (client or server side) the handshake uses."""

    async def send_bytes(self, data: bytes) -> None: ...

    async def receive(self) -> aiohttp.WSMessage: ...


@dataclass(frozen=True, slots=True)
class Identity:
    """This validator's key and the chain it belongs to."""

    chain_id: str
    genesis_hash: bytes
    key: Key
    validators: Collection[bytes] | Callable[[bytes], bool]  # who may link: a set, or a test of a key
    # Whether an admitted key is an observer for whom no link is free (``p2p.max_observers``).
    full: Callable[[bytes], bool] = lambda key: False

    def __post_init__(self) -> None:
        chain_id_bytes(self.chain_id)
        if len(self.genesis_hash) != GENESIS_HASH_SIZE:
            raise ValueError("genesis hash must be 32 bytes")

    def admits(self, key: bytes) -> bool:
        """Whether ``key`` may hold a link: a validator of the height being decided or of the next."""
        return self.validators(key) if callable(self.validators) else key in self.validators


@dataclass(frozen=True, slots=True)
class Hello:
    version: int
    chain_id: str
    genesis_hash: bytes
    public_key: bytes
    nonce: bytes

    def encode(self) -> bytes:
        return pack_frame(
            FrameType.HELLO,
            [self.version, self.chain_id, self.genesis_hash, self.public_key, self.nonce],
        )


def decode_hello(data: bytes) -> Hello:
    payload = _payload(data, FrameType.HELLO)
    if type(payload) is not list or len(payload) != 5:
        raise HandshakeRefused(Refusal.MALFORMED, "hello is a 5-element array")
    version, chain_id, genesis_hash, public_key, nonce = payload
    if (type(version) is not int or type(chain_id) is not str
            or type(genesis_hash) is not bytes or len(genesis_hash) != GENESIS_HASH_SIZE
            or type(public_key) is not bytes or len(public_key) != PUBLIC_KEY_SIZE
            or type(nonce) is not bytes or len(nonce) != NONCE_SIZE):
        raise HandshakeRefused(Refusal.MALFORMED, "hello field of the wrong type or size")
    return Hello(version, chain_id, genesis_hash, public_key, nonce)


def encode_auth(signature: bytes) -> bytes:
    return pack_frame(FrameType.AUTH, [signature])


def decode_auth(data: bytes) -> bytes:
    payload = _payload(data, FrameType.AUTH)
    if (type(payload) is not list or len(payload) != 1
            or type(payload[0]) is not bytes or len(payload[0]) != SIGNATURE_SIZE):
        raise HandshakeRefused(Refusal.MALFORMED, "auth is [64-byte signature]")
    return payload[0]


def _payload(data: bytes, expected: FrameType) -> object:
    try:
        kind, payload = unpack_frame(data, HANDSHAKE_FRAME_BYTES)
    except WireError as exc:
        raise HandshakeRefused(Refusal.MALFORMED, str(exc)) from exc
    if kind is not expected:
        raise HandshakeRefused(Refusal.MALFORMED, f"expected {expected.name.lower()}, got {kind.name.lower()}")
    return payload


def new_hello(identity: Identity, nonce_source: Callable[[int], bytes] = os.urandom) -> Hello:
    nonce = nonce_source(NONCE_SIZE)
    if len(nonce) != NONCE_SIZE:
        raise ValueError("the nonce source must return 32 bytes")
    return Hello(PROTOCOL_VERSION, identity.chain_id, identity.genesis_hash, identity.key.public_key, nonce)


def check_hello(identity: Identity, hello: Hello, expected_key: bytes | None) -> None:
    """Refuse a peer that is on another chain, is neither a validator nor a registered observer, or is
    an observer beyond the validator's limit (said before any signature is spent on it)."""
    if hello.version != PROTOCOL_VERSION:
        raise HandshakeRefused(Refusal.VERSION, f"peer speaks version {hello.version}")
    if hello.chain_id != identity.chain_id:
        raise HandshakeRefused(Refusal.CHAIN_ID, f"peer is on chain {hello.chain_id!r}")
    if hello.genesis_hash != identity.genesis_hash:
        raise HandshakeRefused(Refusal.GENESIS, f"peer genesis {hello.genesis_hash.hex()}")
    if hello.public_key == identity.key.public_key:
        raise HandshakeRefused(Refusal.SELF, "peer presented our own key")
    if not identity.admits(hello.public_key):
        raise HandshakeRefused(Refusal.UNKNOWN_VALIDATOR, f"key {hello.public_key.hex()} is not a validator")
    if identity.full(hello.public_key):
        raise HandshakeRefused(Refusal.TOO_MANY_OBSERVERS, "this validator serves no more observers")
    if expected_key is not None and hello.public_key != expected_key:
        raise HandshakeRefused(Refusal.UNEXPECTED_PEER, f"dialled {expected_key.hex()}, got {hello.public_key.hex()}")


def transcript(chain_id: str, genesis_hash: bytes, initiator: Hello, responder: Hello, role: Role) -> bytes:
    """The bytes the side playing ``role`` signs."""
    chain = chain_id_bytes(chain_id)
    return (
        HANDSHAKE_DOMAIN + bytes([len(chain)]) + chain + genesis_hash
        + initiator.public_key + responder.public_key
        + initiator.nonce + responder.nonce + bytes([role])
    )


async def _receive_frame(channel: Channel) -> bytes:
    message = await channel.receive()
    if message.type is aiohttp.WSMsgType.BINARY:
        return message.data
    if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
        detail = message.extra if isinstance(message.extra, str) else ""
        raise HandshakeRefused(Refusal.REMOTE_CLOSED, detail)
    raise HandshakeRefused(Refusal.MALFORMED, f"unexpected {message.type.name.lower()} message")


async def run_handshake(
    channel: Channel,
    identity: Identity,
    role: Role,
    expected_key: bytes | None = None,
    nonce_source: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """Authenticate the peer on ``channel``; return its public key or raise HandshakeRefused.

    The caller bounds this with a timeout and closes the channel on refusal.
    """
    ours = new_hello(identity, nonce_source)
    if role is Role.INITIATOR:
        await channel.send_bytes(ours.encode())
        theirs = decode_hello(await _receive_frame(channel))
        check_hello(identity, theirs, expected_key)
        initiator, responder = ours, theirs
        await channel.send_bytes(encode_auth(await _sign(
            identity, transcript(identity.chain_id, identity.genesis_hash, initiator, responder, Role.INITIATOR))))
        _verify(identity, initiator, responder, Role.RESPONDER, decode_auth(await _receive_frame(channel)))
    else:
        theirs = decode_hello(await _receive_frame(channel))
        check_hello(identity, theirs, expected_key)
        initiator, responder = theirs, ours
        await channel.send_bytes(ours.encode())
        _verify(identity, initiator, responder, Role.INITIATOR, decode_auth(await _receive_frame(channel)))
        await channel.send_bytes(encode_auth(await _sign(
            identity, transcript(identity.chain_id, identity.genesis_hash, initiator, responder, Role.RESPONDER))))
    return theirs.public_key


async def _sign(identity: Identity, message: bytes) -> bytes:
    """Our transcript signature, made off the event loop: the key may be in a token or at a remote signer."""
    try:
        return await asyncio.to_thread(identity.key.sign, message)
    except SigningUnavailable as exc:
        raise HandshakeRefused(Refusal.SIGNER_UNAVAILABLE, str(exc)) from None


def _verify(identity: Identity, initiator: Hello, responder: Hello, signer: Role, signature: bytes) -> None:
    key = initiator.public_key if signer is Role.INITIATOR else responder.public_key
    message = transcript(identity.chain_id, identity.genesis_hash, initiator, responder, signer)
    if not verify_signature(key, message, signature):
        raise HandshakeRefused(Refusal.BAD_SIGNATURE, f"{signer.name.lower()} signature does not verify")
