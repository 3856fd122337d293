"""``somnode verify``'s exit codes before any proof: a user's mistake is 2, a node that cannot be asked is 3,
each one line without a traceback (the proofs themselves: tests/test_light_client_network.py)."""

from __future__ import annotations

from node import cli
from node.core.genesis import load_genesis
from node.tools.network import create_network
from node.tools.testnet import free_ports


def genesis_file(tmp_path):
    ports = free_ports(2)
    network = create_network(tmp_path / "net", validators=1, banks=1, ports=[(ports[0], ports[1])])
    path = network.directory / "genesis.json"
    load_genesis(path)
    return path


def test_a_bad_address_or_hash_is_a_usage_error(tmp_path, capsys):
    genesis = genesis_file(tmp_path)
    assert cli.main(["verify", "--genesis", str(genesis), "--account", "som1nope"]) == 2
    assert cli.main(["verify", "--genesis", str(genesis), "--tx", "abcd"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("somnode verify: error: --account som1nope:")
    assert lines[1] == "somnode verify: error: --tx abcd: a transaction hash is 64 hex digits"


def test_an_unreachable_node_exits_3(tmp_path, capsys):
    genesis = genesis_file(tmp_path)
    (port,) = free_ports(1)
    assert cli.main(["verify", "--genesis", str(genesis), "--node", f"http://127.0.0.1:{port}"]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"somnode verify: error: GET http://127.0.0.1:{port}/v1/genesis: cannot reach the node")
    assert len(err.strip().splitlines()) == 1
