"""A validator that cannot write a committed block stops with the reason,
instead of serving a frozen state as if it were live."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from node.app.assembly import ValidatorNode, load_node_files
from node.cli.run import NodeHalted, _serve
from node.ledger.state import GenesisState
from node.ledger.store import LedgerStore
from node.tools.network import create_network
from tests.localnet import free_ports


async def test_a_block_that_cannot_be_written_stops_the_node(tmp_path, monkeypatch):
    network = create_network(tmp_path / "net", validators=1, banks=1, ports=[tuple(free_ports(2))])
    config, genesis, keys = load_node_files(network.config_files[0])
    # Empty blocks without waiting for a heartbeat, so that the third one comes within seconds.
    config = dataclasses.replace(config, consensus=dataclasses.replace(config.consensus, empty_block_interval_ms=0))
    real_apply = LedgerStore.apply

    def apply_until_the_disk_fills(self, prepared, *args, **kwargs):
        if prepared.height >= 3:
            raise OSError(28, "No space left on device")
        return real_apply(self, prepared, *args, **kwargs)

    monkeypatch.setattr(LedgerStore, "apply", apply_until_the_disk_fills)
    node = ValidatorNode(config, genesis, keys)
    with pytest.raises(NodeHalted, match="No space left on device"):
        await asyncio.wait_for(_serve(node), timeout=60)
    # The committed blocks before the failure are intact and the store was closed cleanly.
    monkeypatch.setattr(LedgerStore, "apply", real_apply)
    store = LedgerStore.open(config.node.data_dir / "ledger", GenesisState.from_genesis(genesis))
    try:
        assert store.height == 2
    finally:
        store.close()
