"""The handshake in memory: both sides authenticate, and replayed, reflected or foreign handshakes fail."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import pytest

from node.core.keys import KeyPair
from node.p2p.handshake import (
    HandshakeRefused,
    Hello,
    Identity,
    Refusal,
    Role,
    decode_auth,
    decode_hello,
    encode_auth,
    run_handshake,
)

CHAIN = "som-test"
GENESIS = bytes(range(32))


class Pipe:
    """One end of an in-memory duplex channel that records what it sent."""

    def __init__(self, inbox: asyncio.Queue, outbox: asyncio.Queue) -> None:
        self.inbox, self.outbox, self.sent = inbox, outbox, []

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)
        await self.outbox.put(data)

    async def receive(self) -> aiohttp.WSMessage:
        data = await self.inbox.get()
        return aiohttp.WSMessage(aiohttp.WSMsgType.BINARY, data, None)


def pipes() -> tuple[Pipe, Pipe]:
    a, b = asyncio.Queue(), asyncio.Queue()
    return Pipe(a, b), Pipe(b, a)


@pytest.fixture
def keys():
    return [KeyPair.generate() for _ in range(3)]


def identity(key: KeyPair, keys: list[KeyPair], chain: str = CHAIN, genesis: bytes = GENESIS) -> Identity:
    return Identity(chain, genesis, key, frozenset(k.public_key for k in keys))


async def handshake(initiator: Identity, responder: Identity, expected: bytes | None = None):
    """Run both sides; once one side fails, the other (left waiting) is cancelled."""
    left, right = pipes()
    tasks = [
        asyncio.create_task(run_handshake(left, initiator, Role.INITIATOR, expected or responder.key.public_key)),
        asyncio.create_task(run_handshake(right, responder, Role.RESPONDER)),
    ]
    try:
        await asyncio.wait(tasks, timeout=5, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    return results, left, right


async def test_both_sides_learn_each_others_key(keys):
    (got_responder, got_initiator), _, _ = await handshake(identity(keys[0], keys), identity(keys[1], keys))
    assert got_responder == keys[1].public_key
    assert got_initiator == keys[0].public_key


@pytest.mark.parametrize(
    ("initiator_chain", "initiator_genesis", "reason"),
    [("som-other", GENESIS, Refusal.CHAIN_ID), (CHAIN, bytes(32), Refusal.GENESIS)],
)
async def test_another_chain_is_refused(keys, initiator_chain, initiator_genesis, reason):
    (_, refused), _, right = await handshake(
        identity(keys[0], keys, initiator_chain, initiator_genesis), identity(keys[1], keys))
    assert isinstance(refused, HandshakeRefused) and refused.reason is reason
    assert right.sent == []  # the responder revealed nothing


async def test_unknown_key_is_refused(keys):
    outsider = KeyPair.generate()
    (_, refused), _, right = await handshake(identity(outsider, keys + [outsider]), identity(keys[1], keys))
    assert isinstance(refused, HandshakeRefused) and refused.reason is Refusal.UNKNOWN_VALIDATOR
    assert right.sent == []


async def test_initiator_refuses_a_responder_it_did_not_dial(keys):
    (refused, accepted), _, _ = await handshake(
        identity(keys[0], keys), identity(keys[1], keys), expected=keys[2].public_key)
    assert isinstance(refused, HandshakeRefused) and refused.reason is Refusal.UNEXPECTED_PEER
    assert not isinstance(accepted, bytes)


async def test_recorded_initiator_frames_do_not_authenticate_again(keys):
    (_, ok), left, _ = await handshake(identity(keys[0], keys), identity(keys[1], keys))
    assert ok == keys[0].public_key
    recorded_hello, recorded_auth = left.sent
    replay, victim = pipes()
    task = asyncio.create_task(run_handshake(victim, identity(keys[1], keys), Role.RESPONDER))
    await replay.send_bytes(recorded_hello)
    decode_hello(await replay.inbox.get())  # the victim's fresh nonce, which the recording never signed
    await replay.send_bytes(recorded_auth)
    with pytest.raises(HandshakeRefused) as excinfo:
        await asyncio.wait_for(task, 5)
    assert excinfo.value.reason is Refusal.BAD_SIGNATURE


async def test_reflected_signature_is_refused(keys):
    """An attacker holding no key bounces the initiator's own auth back as the responder's."""
    victim_id = identity(keys[0], keys)
    victim, attacker = pipes()
    task = asyncio.create_task(run_handshake(victim, victim_id, Role.INITIATOR, keys[1].public_key))
    hello = decode_hello(await attacker.inbox.get())
    # The attacker claims to be keys[1] but can only echo the victim's nonce and signatures.
    await attacker.send_bytes(Hello(hello.version, CHAIN, GENESIS, keys[1].public_key, hello.nonce).encode())
    victims_auth = decode_auth(await attacker.inbox.get())
    await attacker.send_bytes(encode_auth(victims_auth))
    with pytest.raises(HandshakeRefused) as excinfo:
        await asyncio.wait_for(task, 5)
    assert excinfo.value.reason is Refusal.BAD_SIGNATURE


async def test_garbage_instead_of_hello_is_refused(keys):
    replay, victim = pipes()
    task = asyncio.create_task(run_handshake(victim, identity(keys[1], keys), Role.RESPONDER))
    await replay.send_bytes(os.urandom(40))
    with pytest.raises(HandshakeRefused) as excinfo:
        await asyncio.wait_for(task, 5)
    assert excinfo.value.reason is Refusal.MALFORMED
