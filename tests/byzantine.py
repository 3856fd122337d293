"""A Byzantine validator for tests: holds a genuine validator key and misuses it.

Everything it sends is signed with the real key, so honest validators cannot
drop it as forged: they must notice the equivocation (two signed messages for
one height, round and step) and survive it.  Two ways to reach them: the real
``PeerNetwork`` (well-formed messages to a chosen validator) and raw
authenticated websockets (frames the p2p layer itself must refuse).
"""

from __future__ import annotations

import aiohttp

from consensus.messages import MessageType, Proposal, Vote
from consensus.validators import Validator, ValidatorSet
from node.core.block import build_block
from node.core.genesis import Genesis
from node.core.keys import KeyPair
from node.core.validator_set import validators_hash
from node.p2p.config import NetworkConfig
from node.p2p.handshake import Identity, Role, run_handshake
from node.p2p.transport import P2P_PATH, PeerNetwork


class ByzantineValidator:
    """Signs whatever a test asks for as ``key``'s validator; the caller owns ``start``/``stop``."""

    def __init__(self, genesis: Genesis, key: KeyPair) -> None:
        assert key.public_key in {v.public_key for v in genesis.validators}, "a Byzantine validator is a validator"
        self.genesis = genesis
        self.key = key
        self.validators = ValidatorSet([Validator(v.public_key, v.power) for v in genesis.validators])
        self.network: PeerNetwork | None = None
        self._session: aiohttp.ClientSession | None = None
        self.sent = 0

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    async def join(self) -> None:
        """Link to every honest validator through the real p2p layer, on its genesis port."""
        own = next(v for v in self.genesis.validators if v.public_key == self.key.public_key)
        config = NetworkConfig(
            chain_id=self.chain_id, genesis_hash=self.genesis.hash(),
            validators=tuple((v.public_key, v.p2p_address) for v in self.genesis.validators),
            listen_port=int(own.p2p_address.rsplit(":", 1)[1]), backoff_max_s=1.0)
        self.network = PeerNetwork(config, self.key)
        await self.network.start()

    async def stop(self) -> None:
        if self.network is not None:
            await self.network.stop()
            self.network = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ---- signed messages

    def is_proposer(self, height: int, round_: int) -> bool:
        return self.validators.proposer(height, round_) == self.key.public_key

    def vote(self, kind: MessageType, height: int, round_: int, value_id: bytes | None) -> Vote:
        unsigned = Vote(kind, height, round_, value_id, self.key.public_key, bytes(64))
        return Vote(kind, height, round_, value_id, self.key.public_key,
                    self.key.sign(unsigned.signing_bytes(self.chain_id)))

    def proposal(self, height: int, round_: int, value: bytes) -> Proposal:
        unsigned = Proposal(height, round_, value, -1, self.key.public_key, bytes(64))
        return Proposal(height, round_, value, -1, self.key.public_key,
                        self.key.sign(unsigned.signing_bytes(self.chain_id)))

    def block(self, parent: dict, time_offset_ms: int) -> bytes:
        """An empty block that passes node.host.validity's valid(v) on top of ``parent`` (an API block document).

        Blocks differing only in ``time_offset_ms`` are all valid: that is
        what makes proposing two of them an equivocation rather than a forgery.
        """
        return build_block(
            chain_id=self.chain_id, height=parent["height"] + 1,
            time_ms=parent["time_ms"] + time_offset_ms, proposer=self.key.public_key,
            previous_block_hash=bytes.fromhex(parent["hash"]),
            previous_app_hash=bytes.fromhex(parent["app_hash"]),
            previous_results_hash=bytes.fromhex(parent["results_hash"]),
            # The genesis set throughout: no governance runs in these tests.
            next_validators_hash=validators_hash([(v.public_key, v.power) for v in self.validators]), txs=(),
        ).encode()

    def send(self, index: int, message: Proposal | Vote) -> None:
        """Send ``message`` to genesis validator ``index`` only."""
        assert self.network is not None, "join first"
        if self.network.send(self.genesis.validators[index].public_key, message):
            self.sent += 1

    # ---- raw frames

    async def raw_link(self, index: int) -> aiohttp.ClientWebSocketResponse:
        """An authenticated websocket to validator ``index`` on which the test writes any bytes."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        target = self.genesis.validators[index]
        ws = await self._session.ws_connect(f"http://{target.p2p_address}{P2P_PATH}", compress=0)
        identity = Identity(self.chain_id, self.genesis.hash(), self.key,
                            frozenset(v.public_key for v in self.genesis.validators))
        await run_handshake(ws, identity, Role.INITIATOR, target.public_key)
        return ws
