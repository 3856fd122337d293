"""A node set to join by state sync, before it has anything: its config is checked, and a signal ends it.

With no peer that can serve it, the node waits; SIGTERM then ends the
process cleanly, with nothing half written in place of a ledger.
"""

from __future__ import annotations

import dataclasses

import pytest

from node.app.config import ConfigError, StateSyncSection, load_config, parse_config, render_config
from tests.localnet import make_network, running, wait_for
from tests.signing_net import full_log

TRUST_HASH = "9f558a064b56b754667eb10e07a3558857804a50ddc51d93c3d82216b8fd612d"


def test_a_trust_needs_both_a_height_and_a_64_digit_hash(tmp_path):
    network = make_network(tmp_path / "net", validators=1)
    text = network.config_files[0].read_text()
    for section, said in (("[state_sync]\ntrust_height = 5\n", "give both"),
                          (f'[state_sync]\ntrust_hash = "{TRUST_HASH}"\n', "give both"),
                          ('[state_sync]\ntrust_height = 5\ntrust_hash = "ab"\n', "64 lowercase hex digits"),
                          (f'[state_sync]\ntrust_height = 5\ntrust_hash = "{TRUST_HASH.upper()}"\n', "lowercase")):
        with pytest.raises(ConfigError, match=said):
            parse_config(text.replace("[state_sync]\ntrust_height = 0\n", section), tmp_path)
    config = parse_config(text.replace("[state_sync]\ntrust_height = 0\n",
                                       f'[state_sync]\ntrust_height = 5\ntrust_hash = "{TRUST_HASH}"\n'), tmp_path)
    assert config.state_sync == StateSyncSection(5, TRUST_HASH)


def test_a_pruning_node_snapshots_often_enough_for_peers_to_join_from_its_blocks(tmp_path):
    network = make_network(tmp_path / "net", validators=1)
    text = network.config_files[0].read_text()
    storage = text[text.index("[storage]"):text.index("[state_sync]")]

    def with_storage(retain: int, interval: int) -> str:
        return text.replace(storage, f"[storage]\nretain_blocks = {retain}\nsnapshot_interval = {interval}\n\n")

    with pytest.raises(ConfigError, match="at most every 100 heights"):
        parse_config(with_storage(200, 1000), tmp_path)
    assert parse_config(with_storage(200, 100), tmp_path).storage.snapshot_interval == 100
    assert parse_config(with_storage(200, 0), tmp_path).storage.snapshot_interval == 0
    assert parse_config(with_storage(0, 1000), tmp_path).storage.retain_blocks == 0


def test_a_signal_ends_a_node_waiting_to_sync_and_leaves_no_ledger(tmp_path):
    network = make_network(tmp_path / "net", validators=1)
    path = network.config_files[0]
    config = load_config(path)
    path.write_text(render_config(dataclasses.replace(config, state_sync=StateSyncSection(5, TRUST_HASH)),
                                  path.parent))
    with running(network, start=False) as net:
        net.start(0)
        wait_for(lambda: "statesync.started trust_height=5" in full_log(net, 0), "state sync starts", 30)
        net.stop(0)
        assert net.processes[0] is not None and net.processes[0].returncode == 0, full_log(net, 0)
    log = full_log(net, 0)
    assert "node.stopping reason=signal_during_start" in log and "Traceback" not in log, log
    assert not (config.node.data_dir / "ledger").exists()
