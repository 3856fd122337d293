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


# ---- [signer]: where the validator's keys are

SIGNER_BASE = MINIMAL.replace('key_file = "../keys/validator1.json"\n', "")


def test_a_pkcs11_signer_needs_its_token_fields_and_one_pin_source():
    config = parse(SIGNER_BASE + '[signer]\nbackend = "pkcs11"\npkcs11_module = "/usr/lib/softhsm/libsofthsm2.so"\n'
                   'pkcs11_token = "somnode"\npkcs11_key = "validator1"\npkcs11_pin_env = "PIN"\n')
    assert config.node.key_file is None
    assert (config.signer.backend, config.signer.pkcs11_token, config.signer.pkcs11_pin_env) == \
        ("pkcs11", "somnode", "PIN")
    assert parse_config(render_config(config, Path("/srv/somnode/validator1")),
                        base_dir=Path("/srv/somnode/validator1")) == config
    no_pin = (SIGNER_BASE + '[signer]\nbackend = "pkcs11"\npkcs11_module = "m.so"\npkcs11_token = "t"\n'
              'pkcs11_key = "k"\n')
    assert error_for(no_pin).startswith("signer.pkcs11_pin_file: give the token's PIN in exactly one of")
    assert error_for(no_pin + 'pkcs11_pin_env = "A"\npkcs11_pin_file = "pin"\n').startswith(
        "signer.pkcs11_pin_file: give the token's PIN in exactly one of")
    assert error_for(SIGNER_BASE + '[signer]\nbackend = "pkcs11"\n').startswith(
        "signer.pkcs11_key: missing required field (signer.backend is 'pkcs11')")


def test_each_backend_refuses_the_fields_of_the_others():
    assert error_for(MINIMAL + '[signer]\nbackend = "remote"\n').startswith("signer.remote_address: missing")
    assert error_for(MINIMAL + '[signer]\npkcs11_token = "t"\n') == \
        "signer.pkcs11_token: not used with signer.backend = 'file'; remove it"
    remote = (SIGNER_BASE + '[signer]\nbackend = "remote"\nremote_address = "10.0.2.11:26659"\n'
              'remote_key = "som1rkdv77y6wocfcv32zvnp5zafivswrxl4rhqjbbr2avl3y6xut4lxx2o5wy"\n'
              'remote_link_key_file = "link.json"\n')
    assert parse(remote).signer.remote_address == Endpoint("10.0.2.11", 26659)
    assert error_for(remote + 'pkcs11_key = "k"\n') == \
        "signer.pkcs11_key: not used with signer.backend = 'remote'; remove it"
    assert error_for(remote.replace('backend = "remote"', 'backend = "cloud"')) == \
        "signer.backend: expected one of file, pkcs11, remote, got 'cloud'"
    assert error_for(remote.replace("rkdv77", "rkdv78")).startswith("signer.remote_key: ")
    assert error_for(SIGNER_BASE) == "node.key_file: missing required field (signer.backend is 'file')"
