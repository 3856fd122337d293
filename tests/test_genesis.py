"""Genesis: JSON round trip, canonical hash, and errors that name the field."""

from __future__ import annotations

import hashlib
import json

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.core.address import encode_address
from node.core.genesis import (
    GENESIS_DOMAIN,
    Bank,
    BoardMember,
    Genesis,
    GenesisBoard,
    GenesisError,
    GenesisValidator,
    load_genesis,
)
from node.core.keys import KeyPair
from node.core.tiers import INSTITUTIONAL, Tier

KEYS = [KeyPair.from_seed(bytes([i]) * 32).public_key for i in range(1, 12)]
BOARD_KEYS = [KeyPair.from_seed(bytes([i]) * 32).public_key for i in range(20, 23)]
BOARD = GenesisBoard(2, tuple(BoardMember(f"board{i + 1}", key) for i, key in enumerate(BOARD_KEYS)))
TIERS = (Tier(0, "anonymous", 1_500_000, 500_000, 1_500_000), Tier(1, "basic KYC", 15_000_000, 5_000_000, 15_000_000))
WALLETS = tuple(sorted([(KEYS[8], 1), (KEYS[7], INSTITUTIONAL)]))


def make_genesis(**changes) -> Genesis:
    values = dict(
        chain_id="som-test",
        genesis_time="2026-01-01T00:00:00Z",
        issuer=KEYS[0],
        banks=(Bank("bank1", KEYS[1]), Bank("bank2", KEYS[2])),
        validators=tuple(
            GenesisValidator(
                f"validator{i}", KEYS[2 + i], i, f"127.0.0.1:{26654 + 2 * i}", f"127.0.0.1:{26655 + 2 * i}"
            )
            for i in (1, 2, 3, 4)
        ),
        balances=tuple(sorted([(KEYS[1], 100_000), (KEYS[2], 5), (KEYS[9], 2**63)])),
        board=BOARD,
        tiers=TIERS,
        wallets=WALLETS,
    )
    values.update(changes)
    return Genesis(**values)


def document() -> dict:
    return json.loads(make_genesis().to_json())


def error_for(doc: dict) -> str:
    with pytest.raises(GenesisError) as info:
        Genesis.from_json(json.dumps(doc))
    return str(info.value)


def test_json_round_trip_preserves_everything_and_the_hash():
    genesis = make_genesis()
    again = Genesis.from_json(genesis.to_json())
    assert again == genesis
    assert again.hash() == genesis.hash()


def test_json_uses_addresses_and_integer_tyiyn():
    doc = document()
    assert doc["issuer"] == encode_address(KEYS[0])
    assert doc["validators"][0]["address"] == encode_address(KEYS[3])
    assert {entry["tyiyn"] for entry in doc["balances"]} == {100_000, 5, 2**63}


def test_hash_is_sha256_of_the_documented_encoding():
    genesis = make_genesis()
    body = [
        3, genesis.chain_id, genesis.genesis_time, genesis.issuer,
        [[b.name, b.public_key] for b in genesis.banks],
        [[v.name, v.public_key, v.power, v.p2p_address, v.api_address] for v in genesis.validators],
        [[key, amount] for key, amount in genesis.balances],
        [2, [[m.name, m.public_key] for m in genesis.board.members]],
        [[0, "anonymous", 1_500_000, 500_000, 1_500_000], [1, "basic KYC", 15_000_000, 5_000_000, 15_000_000]],
        [[key, tier] for key, tier in sorted([(KEYS[8], 1), (KEYS[7], 255)])],
    ]
    expected = hashlib.sha256(GENESIS_DOMAIN + msgpack.packb(body, use_bin_type=True)).digest()
    assert genesis.hash() == expected


def test_balance_order_in_json_does_not_change_the_hash():
    doc = document()
    doc["balances"].reverse()
    assert Genesis.from_json(json.dumps(doc)).hash() == make_genesis().hash()


@pytest.mark.parametrize(
    "change",
    [
        {"chain_id": "som-other"},
        {"genesis_time": "2026-01-01T00:00:01Z"},
        {"issuer": KEYS[10]},
        {"banks": (Bank("bank1", KEYS[1]),)},
        {"balances": ((KEYS[1], 100_001),)},
        {"board": GenesisBoard(1, BOARD.members)},
        {"board": GenesisBoard(2, BOARD.members[:2])},
        {"board": GenesisBoard(2, (BoardMember("renamed", BOARD_KEYS[0]), *BOARD.members[1:]))},
        {"tiers": (*TIERS, Tier(2, "full KYC", 1, 1, 1))},
        {"tiers": (TIERS[0], Tier(1, "basic KYC", 15_000_000, 5_000_001, 15_000_000))},
        {"tiers": (TIERS[0], Tier(1, "renamed", 15_000_000, 5_000_000, 15_000_000))},
        {"wallets": ()},
        {"wallets": ((KEYS[7], 1), (KEYS[8], 1))},
    ],
)
def test_every_field_is_covered_by_the_hash(change):
    assert make_genesis(**change).hash() != make_genesis().hash()


def test_validator_fields_are_covered_by_the_hash():
    base = make_genesis()
    first = base.validators[0]
    variants = [
        GenesisValidator("renamed", first.public_key, first.power, first.p2p_address, first.api_address),
        GenesisValidator(first.name, first.public_key, first.power + 1, first.p2p_address, first.api_address),
        GenesisValidator(first.name, first.public_key, first.power, "127.0.0.1:1", first.api_address),
        GenesisValidator(first.name, first.public_key, first.power, first.p2p_address, "127.0.0.1:1"),
    ]
    hashes = {make_genesis(validators=(v, *base.validators[1:])).hash() for v in variants}
    assert len(hashes) == len(variants) and base.hash() not in hashes


def test_genesis_time_in_milliseconds():
    assert make_genesis().genesis_time_ms == 1_767_225_600_000


def test_load_genesis_reads_a_file(tmp_path):
    path = tmp_path / "genesis.json"
    path.write_text(make_genesis().to_json(), encoding="utf-8")
    assert load_genesis(path) == make_genesis()


def test_load_genesis_missing_file(tmp_path):
    with pytest.raises(GenesisError, match="does not exist"):
        load_genesis(tmp_path / "absent.json")


def _set(path: str, value):
    def edit(doc):
        *parents, last = path.split(".")
        target = doc
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value
    return edit


def _delete(path: str):
    def edit(doc):
        *parents, last = path.split(".")
        target = doc
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        del target[last]
    return edit


def _duplicate(section: str, field: str):
    def edit(doc):
        items = doc
        for part in section.split("."):
            items = items[part]
        items[1][field] = items[0][field]
    return edit


def _typo(address: str) -> str:
    last = "a" if address[-1] != "a" else "b"
    return address[:-1] + last


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (_set("issuer", _typo(encode_address(KEYS[0]))), "issuer"),
        (_set("banks.1.address", "som1nonsense"), "banks[1].address"),
        (_set("validators.2.address", _typo(encode_address(KEYS[5]))), "validators[2].address"),
        (_duplicate("validators", "address"), "validators[1].address"),
        (_duplicate("validators", "name"), "validators[1].name"),
        (_duplicate("validators", "p2p_address"), "validators[1].p2p_address"),
        (_duplicate("validators", "api_address"), "validators[1].api_address"),
        (_duplicate("banks", "address"), "banks[1].address"),
        (_duplicate("banks", "name"), "banks[1].name"),
        (_set("banks.0.address", encode_address(KEYS[0])), "banks[0].address"),
        (_set("validators.0.power", 0), "validators[0].power"),
        (_set("validators.0.power", -3), "validators[0].power"),
        (_set("validators.0.power", True), "validators[0].power"),
        (_set("validators.0.power", 1.0), "validators[0].power"),
        (_set("validators.3.power", 2**62), "validators[3].power"),
        (_set("validators.1.p2p_address", "localhost"), "validators[1].p2p_address"),
        (_set("validators.1.api_address", "127.0.0.1:70000"), "validators[1].api_address"),
        (_set("validators", []), "validators"),
        (_set("balances.0.tyiyn", -1), "balances[0].tyiyn"),
        (_set("balances.0.tyiyn", 0), "balances[0].tyiyn"),
        (_set("balances.0.tyiyn", "100"), "balances[0].tyiyn"),
        (_set("balances.0.tyiyn", 2**64), "balances[0].tyiyn"),
        (_set("balances.2.tyiyn", 2**64 - 2**63), "tyiyn: the total of all balances exceeds"),
        (_duplicate("balances", "address"), "balances[1].address: duplicate account"),
        (_set("chain_id", ""), "chain_id"),
        (_set("chain_id", "x" * 65), "chain_id"),
        (_set("genesis_time", "2026-02-30T00:00:00Z"), "genesis_time"),
        (_set("genesis_time", "2026-01-01 00:00:00"), "genesis_time"),
        (_set("banks.0.name", ""), "banks[0].name"),
        (_set("banks.0.name", "line\nbreak"), "banks[0].name"),
        (_set("extra", 1), "extra: unknown field"),
        (_set("validators.0.moniker", "x"), "validators[0].moniker: unknown field"),
        (_delete("validators.0.power"), "validators[0].power: missing required field"),
        (_delete("chain_id"), "chain_id: missing required field"),
        (_set("banks", {}), "banks: expected an array"),
        (_set("balances.0", [1, 2]), "balances[0]: expected an object"),
        (_delete("board"), "board: missing required field"),
        (_set("board.threshold", 0), "board.threshold"),
        (_set("board.threshold", 4), "board.threshold"),
        (_set("board.threshold", "2"), "board.threshold"),
        (_set("board.members", []), "board.members"),
        (_duplicate("board.members", "address"), "board.members[1]"),
        (_set("board.members.0.address", _typo(encode_address(BOARD_KEYS[0]))), "board.members[0].address"),
        (_set("board.quorum", 2), "board.quorum: unknown field"),
        (_delete("tiers"), "tiers: missing required field"),
        (_set("tiers", []), "tiers: tier 0"),
        (_set("tiers.0.id", 1), "tiers[1].id: tier 1 is defined twice"),
        (_set("tiers.1.id", 255), "tiers[1]"),
        (_set("tiers.1.max_balance", -1), "tiers[1]"),
        (_set("tiers.1.max_payment", 2**64), "tiers[1]"),
        (_set("tiers.1.name", ""), "tiers[1]"),
        (_delete("tiers.0.max_daily_out"), "tiers[0].max_daily_out: missing required field"),
        (_set("wallets.0.tier", 7), "wallets[0].tier"),
        (_set("wallets.0.tier", "1"), "wallets[0].tier"),
        (_set("wallets.0.address", "som1nonsense"), "wallets[0].address"),
        (_duplicate("wallets", "address"), "wallets[1].address: duplicate wallet"),
    ],
)
def test_errors_name_the_field(edit, field):
    doc = document()
    edit(doc)
    assert field in error_for(doc)


@pytest.mark.parametrize(
    "text",
    ["", "[]", "{", '{"chain_id": "a", "chain_id": "b"}', '{"x": NaN}'],
)
def test_malformed_json_is_a_genesis_error(text):
    with pytest.raises(GenesisError):
        Genesis.from_json(text)


def test_constructor_checks_balance_order_and_duplicates():
    with pytest.raises(GenesisError, match="sorted"):
        make_genesis(balances=((KEYS[2], 1), (KEYS[1], 1)))
    with pytest.raises(GenesisError, match="duplicate"):
        make_genesis(balances=((KEYS[1], 1), (KEYS[1], 1)))


names = st.text(
    st.characters(codec="utf-8", categories=("L", "N", "P"), include_characters=" "), min_size=1, max_size=20
).filter(str.strip)


@given(
    validators=st.integers(min_value=1, max_value=6),
    powers=st.lists(st.integers(min_value=1, max_value=2**40), min_size=6, max_size=6),
    balances=st.dictionaries(st.sampled_from(KEYS), st.integers(min_value=1, max_value=2**60), max_size=8),
    bank_names=st.lists(names, max_size=3, unique=True),
    board=st.lists(st.sampled_from(KEYS + BOARD_KEYS), min_size=1, max_size=5, unique=True),
    threshold=st.integers(1, 5),
)
def test_random_valid_genesis_round_trips(validators, powers, balances, bank_names, board, threshold):
    genesis = Genesis(
        chain_id="som-prop",
        genesis_time="2030-12-31T23:59:59Z",
        issuer=KEYS[10],
        banks=tuple(Bank(name, KEYS[i]) for i, name in enumerate(bank_names)),
        validators=tuple(
            GenesisValidator(f"v{i}", KEYS[i], powers[i], f"10.0.0.{i + 1}:26656", f"node{i}.bank.kg:8080")
            for i in range(validators)
        ),
        balances=tuple(sorted(balances.items())),
        board=GenesisBoard(min(threshold, len(board)), tuple(BoardMember(f"m{i}", key) for i, key in enumerate(board))),
        tiers=TIERS,
    )
    again = Genesis.from_json(genesis.to_json())
    assert again == genesis and again.hash() == genesis.hash()
