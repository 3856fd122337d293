"""Observer links over real websockets on 127.0.0.1: admission, the limit, and what crosses them."""

from __future__ import annotations

import asyncio

from consensus.messages import MessageType, Vote
from node.core.keys import KeyPair
from node.p2p import NetworkConfig, Refusal, Status, TxBatch
from tests.test_p2p_network import CHAIN, GENESIS, WAIT_S, Node, free_socket, signed_vote, until


class Validator:
    """One validator network with a board's register of observer keys, and the observers that dial it."""

    def __init__(self, max_observers: int) -> None:
        self.key = KeyPair.generate()
        self.sock = free_socket()
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.registered: set[bytes] = set()
        overrides = dict(backoff_initial_s=0.05, backoff_max_s=0.5)
        config = NetworkConfig(chain_id=CHAIN, genesis_hash=GENESIS, validators=((self.key.public_key, self.address),),
                               max_observers=max_observers, **overrides)
        self.node = Node(self.key, config, admits=lambda key: key in self.registered,
                         observes=lambda key: key in self.registered)
        self.observer_config = NetworkConfig(chain_id=CHAIN, genesis_hash=GENESIS,
                                             validators=((self.key.public_key, self.address),), **overrides)
        self.nodes: list[Node] = [self.node]

    async def start(self) -> None:
        await self.node.net.start(self.sock)

    async def observer(self, key: KeyPair) -> Node:
        """An observer's network: it admits and dials the validator only."""
        node = Node(key, self.observer_config, admits=lambda peer: peer == self.key.public_key)
        self.nodes.append(node)
        await node.net.start(free_socket())
        return node

    async def close(self) -> None:
        for node in self.nodes:
            await node.net.stop()


async def with_validator(max_observers: int, body) -> None:
    validator = Validator(max_observers)
    try:
        await validator.start()
        await body(validator)
    finally:
        await validator.close()


def observer_links(node: Node) -> int:
    return sum(peer.observer for peer in node.net.peers())


async def test_an_unregistered_key_is_refused_and_a_registered_observer_links():
    async def body(validator: Validator) -> None:
        key = KeyPair.generate()
        observer = await validator.observer(key)
        stats = validator.node.net.stats
        await until(lambda: stats.refusals[Refusal.UNKNOWN_VALIDATOR] >= 1)
        assert validator.node.net.peers() == ()
        validator.registered.add(key.public_key)  # the board's action is committed
        # Each end counts the link once its own side of the handshake is done: wait for both.
        await until(lambda: observer_links(validator.node) == 1 and len(observer.net.peers()) == 1)
        assert observer.net.peers()[0].public_key == validator.key.public_key
        assert not observer.net.peers()[0].observer, "to the observer, the validator is a validator"

    await with_validator(8, body)


async def test_a_validator_serves_at_most_max_observers():
    async def body(validator: Validator) -> None:
        first, second = KeyPair.generate(), KeyPair.generate()
        validator.registered |= {first.public_key, second.public_key}
        one = await validator.observer(first)
        await until(lambda: observer_links(validator.node) == 1)
        two = await validator.observer(second)
        await until(lambda: validator.node.net.stats.refusals[Refusal.TOO_MANY_OBSERVERS] >= 1)
        assert [p.public_key for p in validator.node.net.peers()] == [first.public_key]
        assert two.net.peers() == ()
        await one.net.stop()  # a place is free again: the second gets it
        await until(lambda: [p.public_key for p in validator.node.net.peers()] == [second.public_key])

    await with_validator(1, body)


async def test_observers_get_status_but_no_consensus_work_and_their_votes_are_never_taken():
    async def body(validator: Validator) -> None:
        key = KeyPair.generate()
        validator.registered.add(key.public_key)
        observer = await validator.observer(key)
        await until(lambda: observer_links(validator.node) == 1 and len(observer.net.peers()) == 1)
        vote = signed_vote(validator.key, MessageType.PREVOTE, 5, 0, None)
        assert validator.node.net.broadcast(vote) == 0, "a vote is no use to an observer"
        assert validator.node.net.broadcast(TxBatch((b"tx",))) == 0, "nor are transactions to propose"
        assert validator.node.net.broadcast(Status(7, 1)) == 1
        async with asyncio.timeout(WAIT_S):
            while True:
                _, message = await observer.inbox.get()
                assert not isinstance(message, Vote | TxBatch), message
                if isinstance(message, Status) and message.height == 7:
                    break

        # The observer relays a validator's genuine vote, then its clients' transactions.
        assert observer.net.broadcast(vote) == 1
        assert observer.net.broadcast(TxBatch((b"client tx",))) == 1
        async with asyncio.timeout(WAIT_S):
            while True:
                peer, message = await validator.node.inbox.get()
                assert not isinstance(message, Vote), "an observer's link never carries consensus in"
                if isinstance(message, TxBatch):
                    assert peer == key.public_key and message.txs == (b"client tx",)
                    break
        assert validator.node.net.stats.observer_consensus == 1

    await with_validator(8, body)
