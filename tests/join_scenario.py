"""Joining a long, pruned chain: the scenario tests/test_state_sync_network.py checks and scripts/bench_join.py times.

Four validator processes commit ``blocks`` heights under transfers, pruning
to ``retain`` blocks and snapshotting every ``interval`` heights; validator4
alone keeps every block, so that a full replay stays possible to compare with.
Then:

1. The board adds validator5.  One snapshot on validator3's disk is damaged
   (a byte of every chunk flipped), and the operator's trusted block is the
   one right after that snapshot, so the joining nodes must use it.
2. validator5 starts with an empty ledger and that trust: it refuses
   validator3's chunks, records validator3, restores from the others, catches
   up and votes (its own precommit in its own certificate).
3. observer1, registered in the genesis, joins the same way; its balances and
   proofs match validator1's, and a transfer submitted to it commits.
4. observer2 joins with no trust: it replays every block from validator4.

What it returns is what each join took, from process start until the node
reached the height the network had when it started.
"""

from __future__ import annotations

import dataclasses
import struct
import time
from pathlib import Path

from node.app.config import StateSyncSection, load_config, render_config
from node.core.keys import KeyPair, read_key_file
from node.tools.testnet import LocalTestnet
from tests.localnet import (
    TransferLoad,
    Wallet,
    board_decides,
    height_of,
    joining_config,
    make_network,
    node_log,
    proof,
    wait_for,
)

VALIDATOR5, OBSERVER1, OBSERVER2 = 4, 5, 6
ARCHIVE, DAMAGED = 3, 2  # validator4 keeps every block; validator3's snapshot is damaged
TIMEOUT_S = 180


@dataclasses.dataclass(frozen=True, slots=True)
class JoinReport:
    blocks: int
    snapshot_height: int
    validator_sync_s: float
    observer_sync_s: float
    replay_s: float


def set_storage_and_trust(path: Path, retain: int, interval: int, trust: tuple[int, str] | None = None) -> None:
    config = load_config(path)
    storage = dataclasses.replace(config.storage, retain_blocks=retain, snapshot_interval=interval, snapshot_keep=4)
    state_sync = StateSyncSection() if trust is None else StateSyncSection(*trust)
    path.write_text(render_config(dataclasses.replace(config, storage=storage, state_sync=state_sync), path.parent))


def damage_chunks(path: Path) -> None:
    """Flip the last byte of every chunk of a snapshot file (node/statesync/files.py gives the layout)."""
    data = bytearray(path.read_bytes())
    (manifest_length,) = struct.unpack(">I", data[8:12])
    lengths_at = 12 + manifest_length
    lengths = struct.unpack(">256Q", data[lengths_at:lengths_at + 256 * 8])
    end = lengths_at + 256 * 8
    for length in lengths:
        end += length
        data[end - 1] ^= 0x5A
    path.write_bytes(bytes(data))


def full_log(net: LocalTestnet, index: int) -> str:
    return (net.config_files[index].parent / "node.log").read_text(errors="replace")


def snapshot_file(net: LocalTestnet, index: int, height: int) -> Path:
    return net.config_files[index].parent / "data" / "snapshots" / f"{height:020d}.snapshot"


def join(net: LocalTestnet, index: int) -> float:
    """Start node ``index``; how long until it reached the height the network had then."""
    target = height_of(net, 0)
    started = time.monotonic()
    net.start(index)
    wait_for(lambda: height_of(net, index) >= target, f"{net.name(index)} reached {target}: {node_log(net, index)}",
             TIMEOUT_S)
    return time.monotonic() - started


def run(tmp_path: Path, blocks: int, retain: int, interval: int) -> JoinReport:
    network = make_network(tmp_path / "net", validators=4, observers=2, empty_block_interval_ms=1000)
    directory, genesis = network.directory, network.genesis
    for index, path in enumerate(network.config_files + network.observer_config_files):
        set_storage_and_trust(path, 0 if index == ARCHIVE else retain, interval)
    joining_config(directory, "validator5", load_config(network.config_files[0]))
    net = LocalTestnet(directory)
    assert [net.name(i) for i in (VALIDATOR5, OBSERVER1, OBSERVER2)] == ["validator5", "observer1", "observer2"]
    wallets = [Wallet(path, genesis.chain_id) for path in network.bank_key_files]
    load = TransferLoad(net, wallets[:2], (0, 1))
    try:
        for index in range(4):
            net.start(index)
        net.wait_ready(indices=[0, 1, 2, 3])
        load.start()
        wait_for(lambda: height_of(net, 0) >= blocks, f"the network committed {blocks} blocks", 20 * blocks)
        assert net.status(0)["earliest_height"] > 1 and net.status(ARCHIVE)["earliest_height"] == 1

        # 1. validator5 is added; the trusted block is the one after a snapshot, damaged on validator3.
        fifth = read_key_file(directory / "keys" / "validator5.json").address
        added_at = board_decides(tmp_path, "add", ["set-validator", "--validator", fifth, "--power", "100"],
                                 net.api_urls[1], list(network.board_key_files[:2]))
        snapshot = (max(height_of(net, 0), added_at + 2) // interval + 1) * interval
        wait_for(lambda: all(snapshot_file(net, i, snapshot).exists() for i in range(4))
                 and height_of(net, 0) > snapshot, f"every validator wrote the snapshot of {snapshot}")
        damage_chunks(snapshot_file(net, DAMAGED, snapshot))
        trust = (snapshot + 1, net.client(0).block(snapshot + 1)["hash"])
        for index in (VALIDATOR5, OBSERVER1):
            set_storage_and_trust(net.config_files[index], retain, interval, trust)

        # 2. validator5 joins by state sync, passing over validator3, and votes.
        validator_sync_s = join(net, VALIDATOR5)
        log = full_log(net, VALIDATOR5)
        damaged_key = read_key_file(network.validator_key_files[DAMAGED]).public_key.hex()[:16]
        assert f"statesync.peer_refused peer={damaged_key}" in log, log
        assert f"statesync.restored height={snapshot}" in log, log
        assert net.status(VALIDATOR5)["earliest_height"] == snapshot + 1
        voted_from = height_of(net, VALIDATOR5)
        wait_for(lambda: any(fifth in {p["validator"] for p in net.client(VALIDATOR5).block(h)["commit"]["precommits"]}
                             for h in range(voted_from, height_of(net, VALIDATOR5) + 1)),
                 f"validator5 votes: {node_log(net, VALIDATOR5)}")

        # 3. observer1 joins the same way; it answers as the validators do and forwards transfers.
        observer_sync_s = join(net, OBSERVER1)
        assert f"statesync.restored height={snapshot}" in full_log(net, OBSERVER1)
        load.stop()
        settled = height_of(net, OBSERVER1)
        wait_for(lambda: min(height_of(net, i) for i in (0, VALIDATOR5, OBSERVER1)) > settled + 1, "all moved on")
        for wallet in wallets:
            ours, theirs = (proof(net, index, wallet.key.address, settled) for index in (OBSERVER1, 0))
            assert ours == theirs, wallet.key.address
        payee = KeyPair.generate().public_key
        [result] = net.client(OBSERVER1).submit([wallets[2].transfer(payee, 4_321).raw])
        assert result["accepted"], result
        wait_for(lambda: net.client(0).tx(result["hash"])["status"] == "committed", "the forwarded transfer commits")
        top = min(height_of(net, i) for i in (0, VALIDATOR5, OBSERVER1))
        assert len({net.client(i).block(top)["app_hash"] for i in (0, VALIDATOR5, OBSERVER1)}) == 1

        # 4. observer2 replays the whole chain from the archive node.
        replay_s = join(net, OBSERVER2)
        assert "statesync.started" not in full_log(net, OBSERVER2)
        for index in range(len(net)):
            assert net.alive(index), node_log(net, index)
        return JoinReport(height_of(net, 0), snapshot, validator_sync_s, observer_sync_s, replay_s)
    finally:
        load.stop()
        net.stop()
