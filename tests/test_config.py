"""Validator config: TOML round trip, relative paths, and errors naming the field."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.app.config import (
    ApiSection,
    Config,
    ConfigError,
    ConsensusSection,
    Endpoint,
    MempoolSection,
    NodeSection,
    P2PSection,
    load_config,
    parse_config,
    parse_endpoint,
    render_config,
    write_config,
)

MINIMAL = """
[node]
name = "validator1"
data_dir = "data"
key_file = "../keys/validator1.json"
genesis_file = "../genesis.json"

[p2p]
listen = "127.0.0.1:26656"

[api]
listen = "127.0.0.1:26657"
"""


def parse(text: str, base: Path = Path("/srv/somnode/validator1")) -> Config:
    return parse_config(text, base_dir=base)


def error_for(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return str(info.value)


def test_minimal_config_gets_defaults_and_resolved_paths():
    config = parse(MINIMAL)
    assert config.node.data_dir == Path("/srv/somnode/validator1/data")
    assert config.node.key_file == Path("/srv/somnode/keys/validator1.json")
    assert config.node.genesis_file == Path("/srv/somnode/genesis.json")
    assert config.node.log_level == "info"
    assert config.p2p.listen == Endpoint("127.0.0.1", 26656)
    assert config.api.listen == Endpoint("127.0.0.1", 26657)
    assert config.mempool == MempoolSection()
    assert config.consensus == ConsensusSection()


def test_absolute_paths_are_kept():
    config = parse(MINIMAL.replace('"data"', '"/var/lib/somnode"'))
    assert config.node.data_dir == Path("/var/lib/somnode")


def test_load_config_resolves_against_the_file_directory(tmp_path):
    (tmp_path / "v1").mkdir()
    path = tmp_path / "v1" / "config.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    config = load_config(path)
    assert config.node.key_file == (tmp_path / "keys" / "validator1.json").resolve()
    assert config.node.data_dir == (tmp_path / "v1" / "data").resolve()


def test_load_config_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_write_then_load_round_trips(tmp_path):
    config = Config(
        node=NodeSection('val "one" \\ x', tmp_path / "d\tir\x7f", tmp_path / "k.json", tmp_path / "g" / "genesis.json",
                         "debug"),
        p2p=P2PSection(Endpoint("::1", 1)),
        api=ApiSection(Endpoint("node1.bank.kg", 65535), 32768),
        mempool=MempoolSection(10, 10_000),
        consensus=ConsensusSection(1, 2, 3, 0, 7, 8192),
    )
    path = tmp_path / "sub" / "config.toml"
    path.parent.mkdir()
    write_config(path, config)
    assert load_config(path) == config
    text = path.read_text()
    assert 'key_file = "../k.json"' in text and 'listen = "[::1]:1"' in text
    with pytest.raises(FileExistsError):
        write_config(path, config)


printable_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30).filter(
    lambda s: s.strip() and s.isprintable()
)


@given(name=printable_names, port=st.integers(1, 65535), timeout=st.integers(1, 600_000))
def test_rendered_toml_round_trips_through_tomllib(name, port, timeout):
    base = Path("/srv/v")
    config = Config(
        node=NodeSection(name, base / "data", base / "key.json", base / "genesis.json"),
        p2p=P2PSection(Endpoint("127.0.0.1", port)),
        api=ApiSection(Endpoint("127.0.0.1", port)),
        consensus=ConsensusSection(timeout_propose_ms=timeout),
    )
    text = render_config(config, base)
    tomllib.loads(text)
    assert parse_config(text, base) == config


def _replace(old: str, new: str) -> str:
    assert old in MINIMAL
    return MINIMAL.replace(old, new)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_replace('"127.0.0.1:26657"', '"abc"'), "api.listen: expected host:port, got 'abc'"),
        (_replace('"127.0.0.1:26657"', '"127.0.0.1:0"'), "api.listen: port 0"),
        (_replace('"127.0.0.1:26657"', '"127.0.0.1:65536"'), "api.listen: port 65536"),
        (_replace('"127.0.0.1:26656"', '"127.0.0.1:-1"'), "p2p.listen: expected host:port"),
        (_replace('"127.0.0.1:26656"', '26656'), "p2p.listen: expected a string, got an integer"),
        (_replace('"127.0.0.1:26656"', '"[zz::1]:80"'), "p2p.listen: 'zz::1'"),
        (_replace('"127.0.0.1:26656"', '"bad_host:80"'), "p2p.listen: 'bad_host'"),
        (_replace('name = "validator1"', 'name = 7'), "node.name: expected a string"),
        (_replace('name = "validator1"', 'name = " "'), "node.name: expected a non-empty"),
        (_replace('name = "validator1"\n', ''), "node.name: missing required field"),
        (_replace('key_file = "../keys/validator1.json"\n', ''), "node.key_file: missing required field"),
        (_replace('data_dir = "data"', 'data_dir = ""'), "node.data_dir: expected a file system path"),
        (_replace('data_dir = "data"', 'data_dir = ["data"]'), "node.data_dir: expected a string, got an array"),
        (MINIMAL + '\n[mempool]\nmax_txs = "100"\n', "mempool.max_txs: expected an integer, got a string"),
        (MINIMAL + '\n[mempool]\nmax_txs = 1.5\n', "mempool.max_txs: expected an integer, got a number"),
        (MINIMAL + '\n[mempool]\nmax_txs = true\n', "mempool.max_txs: expected an integer, got a boolean"),
        (MINIMAL + '\n[mempool]\nmax_txs = 0\n', "mempool.max_txs: must be between"),
        (MINIMAL + '\n[consensus]\ntimeout_propose_ms = -5\n', "consensus.timeout_propose_ms: must be between"),
        (MINIMAL + '\n[consensus]\nmax_block_txs = 20001\n', "consensus.max_block_txs: must be between"),
        (MINIMAL + '\n[consensus]\ntimeout_propse_ms = 5\n', "consensus.timeout_propse_ms: unknown field"),
        (MINIMAL + '\n[api2]\nx = 1\n', "api2: unknown section"),
        (MINIMAL.replace("[node]", "[node]\nlog_level = \"verbose\""), "node.log_level: expected one of"),
        (MINIMAL.replace("[node]", "[node]\npeers = []"), "node.peers: unknown field"),
        ("mempool = 5\n" + MINIMAL, "mempool: expected a [mempool] section"),
        (MINIMAL.replace("[p2p]\nlisten", "[p2p]\nlisten = \"127.0.0.1:1\"\nlisten"), "not valid TOML"),
    ],
)
def test_errors_name_the_field(text, message):
    assert message in error_for(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:26656", Endpoint("127.0.0.1", 26656)),
        ("localhost:1", Endpoint("localhost", 1)),
        ("node-1.bank.kg:65535", Endpoint("node-1.bank.kg", 65535)),
        ("[::1]:8080", Endpoint("::1", 8080)),
    ],
)
def test_parse_endpoint_accepts(text, expected):
    assert parse_endpoint(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    "text", ["", ":80", "host:", "host", "host:80:90", "::1:80", "-host:80", "a..b:80", "host:123456", "[::1]", 5]
)
def test_parse_endpoint_rejects(text):
    with pytest.raises(ValueError):
        parse_endpoint(text)
