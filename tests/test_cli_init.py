"""``somnode init``: the written network loads, and every validator owns its key."""

from __future__ import annotations

import stat

import pytest

from node.app.config import load_config
from node.cli import main
from node.core.address import decode_address
from node.core.genesis import load_genesis
from node.core.keys import read_key_file
from node.tools.network import NetworkSpecError, create_network


@pytest.fixture
def network(tmp_path, capsys):
    directory = tmp_path / "net"
    code = main(["init", "--validators", "4", "--dir", str(directory), "--chain-id", "som-test",
                 "--base-port", "30000", "--genesis-time", "2026-01-01T00:00:00Z"])
    assert code == 0, capsys.readouterr().err
    return directory, capsys.readouterr().out


def test_init_writes_a_loadable_genesis_with_issuer_banks_and_validators(network):
    directory, _ = network
    genesis = load_genesis(directory / "genesis.json")
    assert genesis.chain_id == "som-test"
    assert genesis.genesis_time == "2026-01-01T00:00:00Z"
    assert read_key_file(directory / "keys" / "issuer.json").public_key == genesis.issuer
    assert len(genesis.validators) == 4
    assert len(genesis.banks) == 3
    bank_keys = [read_key_file(directory / "keys" / f"bank{i}.json").public_key for i in (1, 2, 3)]
    assert [bank.public_key for bank in genesis.banks] == bank_keys
    assert dict(genesis.balances) == dict.fromkeys(bank_keys, 100000000)


def test_each_config_loads_and_uses_its_own_validator_key(network):
    directory, _ = network
    genesis = load_genesis(directory / "genesis.json")
    seen_ports = set()
    for k, validator in enumerate(genesis.validators, start=1):
        config = load_config(directory / f"validator{k}" / "config.toml")
        assert config.node.name == validator.name == f"validator{k}"
        assert read_key_file(config.node.key_file).public_key == validator.public_key
        assert load_genesis(config.node.genesis_file) == genesis
        assert config.node.data_dir == (directory / f"validator{k}" / "data").resolve()
        assert str(config.p2p.listen) == validator.p2p_address
        assert str(config.api.listen) == validator.api_address
        assert config.p2p.listen.host == config.api.listen.host == "127.0.0.1"
        seen_ports |= {config.p2p.listen.port, config.api.listen.port}
    assert seen_ports == set(range(30000, 30008))


def test_key_files_are_private(network):
    directory, _ = network
    key_files = sorted((directory / "keys").iterdir())
    assert len(key_files) == 1 + 3 + 4 + 3  # issuer, banks, validators, board
    for path in key_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_summary_names_the_genesis_hash_and_every_address(network):
    directory, out = network
    genesis = load_genesis(directory / "genesis.json")
    assert genesis.hash().hex() in out
    printed = {word for word in out.split() if word.startswith("som1")}
    expected = {genesis.issuer, *(b.public_key for b in genesis.banks), *(v.public_key for v in genesis.validators),
                *(m.public_key for m in genesis.board.members)}
    assert {decode_address(a) for a in printed} == expected


def test_network_directory_is_relocatable(network, tmp_path):
    directory, _ = network
    moved = directory.rename(tmp_path / "moved")
    config = load_config(moved / "validator3" / "config.toml")
    assert config.node.key_file == (moved / "keys" / "validator3.json").resolve()
    genesis = load_genesis(config.node.genesis_file)
    assert read_key_file(config.node.key_file).public_key == genesis.validators[2].public_key


def test_init_refuses_a_non_empty_directory(network, capsys):
    directory, _ = network
    before = (directory / "genesis.json").read_bytes()
    assert main(["init", "--validators", "2", "--dir", str(directory)]) == 2
    err = capsys.readouterr().err
    assert "--dir" in err and "not an empty directory" in err
    assert (directory / "genesis.json").read_bytes() == before


def test_init_accepts_an_existing_empty_directory(tmp_path, capsys):
    assert main(["init", "--validators", "1", "--dir", str(tmp_path)]) == 0
    genesis = load_genesis(tmp_path / "genesis.json")
    assert len(genesis.validators) == 1 and genesis.banks == () and genesis.balances == ()


def test_bank_count_and_balance_options(tmp_path, capsys):
    directory = tmp_path / "net"
    assert main(["init", "--validators", "2", "--banks", "5", "--bank-balance", "12.5", "--dir", str(directory)]) == 0
    genesis = load_genesis(directory / "genesis.json")
    assert len(genesis.banks) == 5
    assert sorted(amount for _, amount in genesis.balances) == [1250] * 5


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (["--validators", "0"], "--validators"),
        (["--validators", "101"], "--validators"),
        (["--validators", "2", "--banks", "-1"], "--banks"),
        (["--validators", "4", "--base-port", "65530"], "--base-port"),
        (["--validators", "4", "--base-port", "0"], "--base-port"),
        (["--validators", "2", "--host", "bad host"], "--host"),
        (["--validators", "2", "--chain-id", "has space"], "chain_id"),
        (["--validators", "2", "--genesis-time", "yesterday"], "genesis_time"),
        (["--validators", "2", "--bank-balance", "1.234"], "1.234"),
        (["--validators", "2", "--bank-balance", "184467440737095516.15", "--banks", "2"], "--bank-balance"),
    ],
)
def test_bad_options_fail_before_writing_anything(tmp_path, capsys, options, field):
    directory = tmp_path / "net"
    assert main(["init", "--dir", str(directory), *options]) == 2
    err = capsys.readouterr().err
    assert field in err, err
    assert len(err.strip().splitlines()) == 1
    assert not directory.exists()


def test_create_network_with_explicit_ports_and_ipv6_host(tmp_path):
    ports = [(40001, 40007), (40003, 40002)]
    network = create_network(tmp_path / "net", validators=2, banks=1, host="::1", ports=ports,
                             genesis_time="2026-01-01T00:00:00Z")
    assert load_genesis(network.genesis_file) == network.genesis
    for (p2p, api), config_file, validator in zip(ports, network.config_files, network.genesis.validators):
        config = load_config(config_file)
        assert (config.p2p.listen.port, config.api.listen.port) == (p2p, api)
        assert config.p2p.listen.host == "::1"
        assert validator.p2p_address == f"[::1]:{p2p}"


@pytest.mark.parametrize(
    ("ports", "message"),
    [([(40001, 40002)], "expected 2"), ([(1, 2), (2, 3)], "two ports of its own"), ([(1, 2), (3, 70000)], "1..65535")],
)
def test_create_network_rejects_bad_ports(tmp_path, ports, message):
    with pytest.raises(NetworkSpecError, match=message):
        create_network(tmp_path / "net", validators=2, banks=0, ports=ports)
    assert not (tmp_path / "net").exists()
