"""The committed example network in configs/ still loads and is consistent."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.app.config import load_config
from node.core.genesis import load_genesis
from node.core.keys import read_key_file

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_example_genesis_loads_with_issuer_and_bank_keys():
    genesis = load_genesis(CONFIGS / "genesis.json")
    assert genesis.chain_id == "som-example"
    assert read_key_file(CONFIGS / "keys" / "issuer.json").public_key == genesis.issuer
    for index, bank in enumerate(genesis.banks, start=1):
        assert read_key_file(CONFIGS / "keys" / f"bank{index}.json").public_key == bank.public_key
    assert {key for key, _ in genesis.balances} == {bank.public_key for bank in genesis.banks}


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_example_validator_config_matches_the_genesis(k):
    config = load_config(CONFIGS / f"validator{k}" / "config.toml")
    genesis = load_genesis(config.node.genesis_file)
    validator = genesis.validators[k - 1]
    assert config.node.name == validator.name
    assert read_key_file(config.node.key_file).public_key == validator.public_key
    assert str(config.p2p.listen) == validator.p2p_address
    assert str(config.api.listen) == validator.api_address
    assert config.node.data_dir == (CONFIGS / f"validator{k}" / "data").resolve()


def test_readme_warns_that_the_keys_are_public():
    readme = (CONFIGS / "README.md").read_text(encoding="utf-8")
    assert "PUBLIC EXAMPLE KEYS" in readme
