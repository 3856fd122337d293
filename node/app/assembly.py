"""One validator process: builds every component from its config and runs them.

Start order follows the data: the ledger store first (so a node pointed at the
wrong chain or a damaged store stops before it talks to anyone), then the
consensus write-ahead log, the verifier, mempool, engine and the host's
parts (node/host/), then the peer network and the client API.  Stop runs the
other way round and closes the store last, after the consensus task can no
longer write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Coroutine
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from consensus.engine import Engine, TimeoutConfig
from node.api.app import make_api_app
from node.api.node_backend import NodeBackend, committed_block_view
from node.app.config import Config, load_config
from node.app.metrics import NetworkCollector, NodeMetrics, VerifierCollector
from node.app.pruner import Pruner
from node.core.certificate import decode_certificate
from node.core.genesis import Genesis, GenesisError, load_genesis
from node.core.keys import Key, is_test_chain
from node.host.catchup import CatchUp
from node.host.commit import Committed, Committer
from node.host.driver import ConsensusDriver
from node.host.failpoints import Failpoint
from node.host.gossip import ConsensusGossip
from node.host.heartbeat import Heartbeat
from node.host.inbox import Inbox, ProposeNow
from node.host.intake import Intake
from node.host.proposer import Proposer
from node.host.tip import read_tip
from node.host.validators import ValidatorSchedule
from node.host.validity import Validity
from node.host.wal import WalDamaged, open_wal
from node.ledger.errors import LedgerCorruptError
from node.ledger.restore import LedgerRestore
from node.ledger.state import GenesisState
from node.ledger.store import LedgerStore, stored_height
from node.mempool.pool import Mempool
from node.p2p.config import NetworkConfig
from node.p2p.transport import PeerNetwork
from node.signing.keyring import CountedKey, Keyring, KeyringError, open_keyring
from node.statesync.files import SnapshotFiles
from node.statesync.snapshotter import Snapshotter
from node.statesync.sync import StateSync, Trust
from node.verifier.scheduler import BatchVerifier

log = logging.getLogger(__name__)

LEDGER_DIR = "ledger"
RESTORING_DIR = "ledger.restoring"
SNAPSHOTS_DIR = "snapshots"
# How long a node about to state-sync waits for the rest of its peers once the first has linked.
STATE_SYNC_LINK_GRACE_S = 3.0
# Peer messages waiting for the consensus task; more are dropped as lost (re-gossip brings them back).
MAX_QUEUED_PEER_MESSAGES = 10_000
# How long a validator leaves a block its peers committed to be decided live before it fetches it.
CATCH_UP_PATIENCE_S = 1.0
# How often a validator re-sends the messages of the height being decided.
REGOSSIP_S = 1.0
# Pause after each chunk of the background ledger scrub (4,096 records, a few milliseconds of reading).
SCRUB_PAUSE_S = 0.004


class StartError(Exception):
    """The node cannot start with this configuration; the message says what to fix."""


def load_node_files(config_path: str | Path) -> tuple[Config, Genesis, Keyring]:
    """Config, genesis and keys (the validator's key, and the one it rotates to if it is), before anything opens.

    Whether a key validates is the ledger's to say: validators join and leave
    by governance, so a key the genesis does not name may be a validator now.
    A remote signer need not be up: its link is made in the background.
    """
    config = load_config(config_path)
    genesis = load_genesis(config.node.genesis_file)
    try:
        keyring = open_keyring(config, genesis.chain_id)
    except KeyringError as exc:
        raise StartError(str(exc)) from None
    return config, genesis, keyring


class ValidatorNode:
    def __init__(self, config: Config, genesis: Genesis, keyring: Keyring) -> None:
        self.config = config
        self.genesis = genesis
        self.keyring = keyring
        self.registry = CollectorRegistry()
        self.metrics = NodeMetrics(self.registry)
        counted = self.metrics.signatures
        self.keys: tuple[Key, ...] = tuple(CountedKey(key, lambda outcome: counted.labels(outcome).inc())
                                           for key in keyring.keys)
        self.key = self.keys[0]
        self.store: LedgerStore | None = None
        self.driver: ConsensusDriver | None = None
        self._stack: list = []
        self._api_runner: web.AppRunner | None = None
        self._metrics_task: asyncio.Task | None = None
        self._chores: set[asyncio.Task[None]] = set()
        self._pruner: Pruner | None = None
        self._snapshotter: Snapshotter | None = None
        self.halted: asyncio.Future[BaseException] | None = None

    @property
    def name(self) -> str:
        return self.config.node.name

    @property
    def observer(self) -> bool:
        """Whether this node follows without voting (``node.role = "observer"``)."""
        return self.config.node.role == "observer"

    def _client_share(self, validators: int) -> int:
        """An observer's pool holds only what its clients submit: nothing is relayed to it."""
        return self.config.mempool.max_txs if self.observer else client_share(self.config.mempool.max_txs, validators)

    async def start(self) -> None:
        config, genesis = self.config, self.genesis
        self._stack.append(self.keyring.close)
        self.keyring.start()
        if self.keyring.backend == "file" and not is_test_chain(genesis.chain_id):
            log.warning("node.plain_key_file path=%s chain=%s", config.node.key_file, genesis.chain_id)
        data_dir = Path(config.node.data_dir)
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StartError(f"node.data_dir: cannot use {data_dir} as the data directory: {exc.strerror}") from exc
        genesis_state = GenesisState.from_genesis(genesis)
        trust = config.state_sync
        if trust.trust_hash is not None:
            await self._sync_state(data_dir, genesis_state, Trust(trust.trust_height, bytes.fromhex(trust.trust_hash)))
        store = await asyncio.to_thread(LedgerStore.open, data_dir / LEDGER_DIR, genesis_state)
        self.store = store
        self._stack.append(store.close)
        if config.storage.retain_blocks:
            self._pruner = Pruner(store, config.storage.retain_blocks, self._halt)
            self._stack.append(self._pruner.stop)
        snapshots = None
        if config.storage.snapshot_interval:
            snapshots = await asyncio.to_thread(
                SnapshotFiles, data_dir / SNAPSHOTS_DIR, config.storage.snapshot_keep)
            self._snapshotter = Snapshotter(store, snapshots, config.storage.snapshot_interval, self._halt)
            self._stack.append(self._snapshotter.stop)
        try:
            opened = await asyncio.to_thread(open_wal, data_dir, store.height)
        except OSError as exc:
            raise StartError(f"node.data_dir: cannot use the consensus write-ahead log in {data_dir}: "
                             f"{exc.strerror or exc}") from exc
        except WalDamaged as exc:
            raise StartError(str(exc)) from exc
        self._stack.append(opened.storage.close)
        replay = opened.wal.replay(store.height + 1)
        try:
            failpoint = Failpoint.from_environment()
        except ValueError as exc:
            raise StartError(str(exc)) from None

        schedule = self.validators = ValidatorSchedule(
            store, vouched=frozenset(peer.public_key for peer in config.p2p.peers))
        self.key = self._presented_key(schedule, store.height)
        if self.observer:
            log.info("node.observer key=%s height=%d", self.key.address, store.height)
        elif self.key.public_key not in schedule(store.height + 1) and self.key.public_key not in schedule(
                store.height + 2):
            log.warning("node.not_a_validator key=%s height=%d", self.key.address, store.height)

        verifier = BatchVerifier(helpers=True)
        self._stack.append(verifier.close)
        mempool = Mempool(
            chain_id=genesis.chain_id, verifier=verifier, account=store.standing,
            governance=lambda: store.governance, committed_height=lambda: store.height,
            max_txs=config.mempool.max_txs, max_bytes=config.mempool.max_bytes,
            max_client_txs=self._client_share(len(schedule(store.height + 1))),
        )
        validity = Validity(store, verifier, schedule, known=mempool.get,
                            max_time_ahead_ms=config.consensus.max_time_ahead_ms)
        c = config.consensus
        # No verifier and no is_valid: the host hands the engine only verified messages and judged values.
        # An observer's engine holds no key: it can never sign a proposal or a vote, whatever the set says.
        engine = Engine(
            genesis.chain_id, schedule, None if self.observer else self.keys, None, None,
            height=store.height + 1, signing_state=replay.signing_state,
            timeouts=TimeoutConfig(c.timeout_propose_ms, c.timeout_prevote_ms,
                                   c.timeout_precommit_ms, c.timeout_delta_ms),
        )
        inbox = Inbox(MAX_QUEUED_PEER_MESSAGES)
        intake = Intake(
            chain_id=genesis.chain_id, validators=schedule, verifier=verifier, validity=validity,
            mempool=mempool, inbox=inbox, current_height=lambda: engine.height,
            committed_height=lambda: store.height,
            on_rejected=lambda reason: self.metrics.peer_messages_rejected.labels(reason).inc(),
        )
        network = PeerNetwork(
            NetworkConfig(
                chain_id=genesis.chain_id, genesis_hash=genesis.hash(),
                validators=_dial_list(genesis, config, self.keys),
                listen_host=config.p2p.listen.host, listen_port=config.p2p.listen.port,
                max_observers=config.p2p.max_observers,
            ),
            self.key, on_message=intake.on_peer_message, block_source=self._block_source, snapshot_source=snapshots,
            local_height=lambda: store.height, local_earliest=lambda: store.earliest_height,
            # An observer links to validators only; a validator serves registered observers too.
            admits=schedule.admits if self.observer else schedule.admits_with_observers, other_keys=self.keys,
            observes=(lambda key: False) if self.observer else schedule.observes,
        )
        self.halted = asyncio.get_running_loop().create_future()
        driver = ConsensusDriver(
            engine=engine, wal=opened.wal, barred=opened.barred, inbox=inbox, tip=read_tip(store), validity=validity,
            proposer=Proposer(
                mempool, genesis.chain_id, max_block_txs=c.max_block_txs,
                max_block_bytes=c.max_block_bytes, empty_block_wait_s=c.empty_block_wait_ms / 1000,
                block_interval_s=c.block_interval_ms / 1000,
                ready=lambda height, round: inbox.put_control(ProposeNow(height, round)),
            ),
            heartbeat=Heartbeat(mempool, c.empty_block_interval_ms / 1000),
            committer=Committer(store, mempool, [self._on_commit]),
            gossip=ConsensusGossip(network, REGOSSIP_S, store.height + 1, lambda: store.earliest_height),
            on_evidence=lambda evidence: self.metrics.evidence.inc(), on_fatal=self._halt, failpoint=failpoint,
            offload_signing=self.keyring.may_block,
        )
        backend = NodeBackend(
            genesis=genesis, genesis_text=_genesis_text(config.node.genesis_file, genesis), node_id=self.key.address,
            store=store, mempool=mempool, network=network,
            engine_view=lambda: engine, decode_certificate=decode_certificate, registry=self.registry,
            evidence_view=lambda: driver.evidence, on_corrupt=self._halt, role=config.node.role,
        )
        self.backend = backend
        self.driver = driver
        self.mempool, self.network, self.inbox = mempool, network, inbox
        self.registry.register(VerifierCollector(lambda: verifier.stats))
        self.registry.register(NetworkCollector(lambda: network.stats))
        catch_up = CatchUp(
            network, validity=validity, committed_height=lambda: store.height, deliver=driver.catch_up,
            on_fatal=self._halt,
            # An observer decides nothing live: every block it has comes from catch-up, as soon as announced.
            patience_s=0.0 if self.observer else CATCH_UP_PATIENCE_S,
        )

        await driver.start(replay)
        self._stack.append(driver.stop)
        await network.start()
        self._stack.append(network.stop)
        self._stack.append(self._end_chores)
        self._stack.append(backend.gossip.flush)
        catch_up.start()
        self._stack.append(catch_up.stop)

        app = make_api_app(backend, max_body_bytes=config.api.max_body_bytes, metrics=self.metrics)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        self._stack.append(runner.cleanup)
        self._stack.append(backend.feed.close)
        site = web.TCPSite(runner, config.api.listen.host, config.api.listen.port)
        await site.start()
        self._metrics_task = asyncio.create_task(self._refresh_metrics(), name="metrics")
        self._start_scrub(store)
        log.info("node.started name=%s address=%s height=%d api=%s p2p=%s",
                 self.name, self.key.address, store.height, config.api.listen, config.p2p.listen)

    async def stop(self) -> None:
        if self._metrics_task is not None:
            self._metrics_task.cancel()
        while self._stack:
            closer = self._stack.pop()
            result = closer()
            if asyncio.iscoroutine(result):
                await result
        log.info("node.stopped name=%s", self.name)

    # ---- hooks

    def _halt(self, exc: BaseException) -> None:
        """The consensus or catch-up task hit an error it cannot survive: the process must stop."""
        if self.halted is not None and not self.halted.done():
            self.halted.set_result(exc)

    async def _sync_state(self, data_dir: Path, genesis: GenesisState, trust: Trust) -> None:
        """Restore the ledger from a peer's snapshot, if it holds nothing past the genesis yet.

        The restore is written beside the ledger and moved into place only when whole: a node stopped
        half-way starts state sync again, and a ledger is never left half restored.
        """
        ledger, restoring = data_dir / LEDGER_DIR, data_dir / RESTORING_DIR
        if ledger.exists():
            height = await asyncio.to_thread(stored_height, ledger)
            if height > 0:
                log.info("statesync.skipped height=%d reason=ledger_holds_blocks", height)
                return
        log.info("statesync.started trust_height=%d trust_hash=%s", trust.height, trust.block_hash.hex())
        started = time.monotonic()

        def fresh_restore() -> LedgerRestore:
            shutil.rmtree(restoring, ignore_errors=True)
            return LedgerRestore(restoring, genesis)

        dial = _dial_list(self.genesis, self.config, self.keys)
        network = PeerNetwork(
            NetworkConfig(chain_id=self.genesis.chain_id, genesis_hash=self.genesis.hash(), validators=dial,
                          listen_port=0),
            self.key, local_height=lambda: 0, other_keys=self.keys)
        await network.start()
        try:
            # The more peers offer a snapshot, the less any one of them can hold the sync up: after the
            # first link, the others get a moment to come up too.
            await network.wait_for_peers(1)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(network.wait_for_peers(len(dial)), STATE_SYNC_LINK_GRACE_S)
            height = await StateSync(network, self.genesis.chain_id, trust, fresh_restore).run()
        finally:
            await network.stop()
        await asyncio.to_thread(shutil.rmtree, ledger, True)
        restoring.rename(ledger)
        log.info("statesync.done height=%d seconds=%.1f", height, time.monotonic() - started)

    def _start_scrub(self, store: LedgerStore) -> None:
        """Check every stored record once in the background; damage halts the node."""
        stopping = threading.Event()

        def between_chunks() -> bool:
            # Flat out, the pass holds the GIL much of the time, and on a large
            # ledger it takes minutes, so it pauses after each chunk and leaves
            # consensus most of the interpreter (docs/performance.md).
            return stopping.wait(SCRUB_PAUSE_S)

        async def scrub() -> None:
            started = time.monotonic()
            try:
                read = await asyncio.to_thread(store.scrub, between_chunks)
            except LedgerCorruptError as exc:
                self._halt(exc)
                return
            if read is not None:
                log.info("ledger.scrubbed records=%d seconds=%.1f", read, time.monotonic() - started)

        task = asyncio.create_task(scrub(), name="ledger-scrub")

        async def stop() -> None:
            # The store must not close under the scrubbing thread's iterator.
            stopping.set()
            await asyncio.gather(task, return_exceptions=True)

        self._stack.append(stop)

    async def _block_source(self, from_height: int, to_height: int):
        store = self.store
        assert store is not None
        out = []
        try:
            for height in range(from_height, min(to_height, store.height) + 1):
                raw, cert = store.block(height), store.certificate(height)
                if raw is None or cert is None:
                    break
                out.append((raw, decode_certificate(cert)))
        except LedgerCorruptError as exc:
            self._halt(exc)
            raise
        return out

    async def _end_chores(self) -> None:
        for task in list(self._chores):
            task.cancel()
        await asyncio.gather(*self._chores, return_exceptions=True)

    def _spawn(self, chore: Coroutine[None, None, None]) -> None:
        """Run a short network chore beside the commit that asked for it."""
        task = asyncio.ensure_future(chore)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    def _presented_key(self, schedule: ValidatorSchedule, height: int) -> Key:
        """The key to link with: the one of this node's keys that the set of the next height holds,
        else of the height after, else the configured key."""
        for candidate in (height + 1, height + 2):
            for key in self.keys:
                if key.public_key in schedule(candidate):
                    return key
        return self.keys[0]

    def _on_commit(self, committed: Committed) -> None:
        self.metrics.observe_commit(committed.height, len(committed.txs), committed.interval_s)
        if self._pruner is not None:
            self._pruner.committed(committed.height)
        if self._snapshotter is not None:
            self._snapshotter.committed(committed.height)
        if not self.observer:
            self.metrics.observe_own_precommit(
                any(vote.validator == self.key.public_key for vote in committed.certificate.precommits))
        # The set may have changed: links of keys no longer validators go, and after a rotation
        # this node links with its new key.
        presented = self._presented_key(self.validators, committed.height)
        self.mempool.limit_clients(self._client_share(len(self.validators(committed.height + 1))))
        network = self.network
        self._spawn(network.use_key(presented) if presented is not self.key else network.prune())
        self.key = presented
        self.backend.feed.publish(committed_block_view(
            committed.block, committed.block_hash, committed.certificate,
            committed.result.app_hash, committed.result.results_hash, committed.result.tx_hashes))

    async def _refresh_metrics(self) -> None:
        driver = self.driver
        assert driver is not None
        config = self.config
        self.metrics.set_mempool_limits(config.mempool.max_txs, config.mempool.max_bytes)
        while True:
            validators = driver.engine.validators
            self.metrics.set_round(driver.engine.round)
            self.metrics.set_mempool(len(self.mempool), self.mempool.size_bytes, self.mempool.gossip_dropped)
            peers = self.network.peers()
            self.metrics.set_peers(len(peers))
            linked = validators.power_of(self.key.public_key) + sum(validators.power_of(p.public_key) for p in peers)
            self.metrics.set_voting_power(linked, validators.quorum, validators.total_power)
            self.metrics.observe_disk(config.node.data_dir)
            await asyncio.sleep(1.0)


def _genesis_text(path: str | Path, genesis: Genesis) -> str:
    """The genesis file as ``GET /v1/genesis`` serves it: the text this node started from."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        same = Genesis.from_json(text).hash() == genesis.hash()
    except (OSError, UnicodeDecodeError, GenesisError) as exc:
        raise StartError(f"node.genesis_file: cannot read {path} again: {exc}") from None
    if not same:
        raise StartError(f"node.genesis_file: {path} changed while the node was starting")
    return text


def _dial_list(genesis: Genesis, config: Config, keys: tuple[Key, ...]) -> tuple[tuple[bytes, str], ...]:
    """The validators this node dials: the config's peers, and the genesis network at the addresses the
    config does not name otherwise (a genesis validator that rotated its key is listed with the new one);
    never itself.  Keys no set admits any more are not dialled (node/p2p/transport.py)."""
    own = {key.public_key for key in keys}
    configured = {str(peer.endpoint): peer.public_key for peer in config.p2p.peers}
    peers = {v.public_key: v.p2p_address for v in genesis.validators if v.p2p_address not in configured}
    peers.update((key, address) for address, key in configured.items())
    return tuple((key, address) for key, address in peers.items() if key not in own)


def client_share(max_txs: int, validators: int) -> int:
    """How much of the pool clients may fill: with other validators, half is kept for what
    they relay (``Mempool.add_gossip`` says why); alone, all of it."""
    return max_txs if validators == 1 else max(1, max_txs // 2)


