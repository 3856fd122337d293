"""Observers in the genesis and by the board's actions: encoding, hash, ledger rules and state records."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace

import msgpack
import pytest

from node.app.config import load_config
from node.core.actions import AddObserver, RemoveObserver, SetValidator, action_fields, decode_action
from node.core.genesis import GENESIS_DOMAIN, MAX_OBSERVERS, Genesis, GenesisError, GenesisObserver
from node.core.keys import KeyPair
from node.core.tx import TxDecodeCode, TxDecodeError
from node.host.validators import ValidatorSchedule
from node.ledger import LedgerStore
from node.ledger import layout as k
from node.tools.network import create_network
from node.tools.testnet import LocalTestnet
from tests.test_genesis import make_genesis
from tests.test_ledger_governance import BOARD, VALIDATORS, commit, genesis, gov

OBSERVER = KeyPair.from_seed(hashlib.sha256(b"observer").digest()).public_key
OTHER = KeyPair.from_seed(hashlib.sha256(b"other observer").digest()).public_key


# ---- the genesis


def with_observers() -> Genesis:
    return make_genesis(observers=(GenesisObserver("regulator", OBSERVER), GenesisObserver("bank app", OTHER)))


def test_genesis_observers_round_trip_through_json():
    genesis = with_observers()
    again = Genesis.from_json(genesis.to_json())
    assert again == genesis and again.hash() == genesis.hash()
    assert json.loads(genesis.to_json())["observers"][0]["name"] == "regulator"


def test_a_genesis_without_observers_hashes_as_before_and_has_no_observers_field():
    genesis = make_genesis()
    assert "observers" not in json.loads(genesis.to_json())
    document = json.loads(with_observers().to_json())
    del document["observers"]
    assert Genesis.from_json(json.dumps(document)).hash() == genesis.hash()


def test_the_genesis_hash_covers_the_observers_as_the_documented_eleventh_element():
    genesis = with_observers()
    body = _body_of(make_genesis())
    body.append([["regulator", OBSERVER], ["bank app", OTHER]])
    assert genesis.hash() == hashlib.sha256(GENESIS_DOMAIN + msgpack.packb(body, use_bin_type=True)).digest()
    renamed = make_genesis(observers=(GenesisObserver("regulator2", OBSERVER), GenesisObserver("bank app", OTHER)))
    assert renamed.hash() != genesis.hash()
    assert make_genesis(observers=(GenesisObserver("regulator", OBSERVER),)).hash() != genesis.hash()


def _body_of(genesis: Genesis) -> list:
    """The hashed array of a genesis without observers, recovered from its documented encoding."""
    t = genesis
    return [3, t.chain_id, t.genesis_time, t.issuer, [[b.name, b.public_key] for b in t.banks],
            [[v.name, v.public_key, v.power, v.p2p_address, v.api_address] for v in t.validators],
            [[key, amount] for key, amount in t.balances],
            [t.board.threshold, [[m.name, m.public_key] for m in t.board.members]],
            [[x.id, x.name, x.max_balance, x.max_payment, x.max_daily_out] for x in t.tiers],
            [[key, tier] for key, tier in t.wallets]]


def test_body_helper_matches_the_genesis_hash():
    genesis = make_genesis()
    assert genesis.hash() == hashlib.sha256(
        GENESIS_DOMAIN + msgpack.packb(_body_of(genesis), use_bin_type=True)).digest()


@pytest.mark.parametrize(("observers", "field"), [
    ((GenesisObserver("a", OBSERVER), GenesisObserver("b", OBSERVER)), "observers[1]"),
    ((GenesisObserver("a", OBSERVER), GenesisObserver("a", OTHER)), "observers[1]"),
    ((GenesisObserver("", OBSERVER),), "observers[0].name"),
    ((GenesisObserver("a", b"short"),), "observers[0].address"),
])
def test_bad_observers_are_refused_naming_the_field(observers, field):
    with pytest.raises(GenesisError, match=f"^{re.escape(field)}"):
        make_genesis(observers=observers)


def test_a_validator_key_cannot_observe_and_the_count_is_bounded():
    validator = make_genesis().validators[0].public_key
    with pytest.raises(GenesisError, match=r"observers\[0\]\.address: .* is a validator"):
        make_genesis(observers=(GenesisObserver("v", validator),))
    many = tuple(GenesisObserver(f"o{n}", hashlib.sha256(b"%d" % n).digest()) for n in range(MAX_OBSERVERS + 1))
    with pytest.raises(GenesisError, match=f"at most {MAX_OBSERVERS}"):
        make_genesis(observers=many)


def test_an_observer_entry_with_an_unknown_field_is_refused():
    document = json.loads(with_observers().to_json())
    document["observers"][0]["p2p_address"] = "127.0.0.1:1"
    with pytest.raises(GenesisError, match=r"observers\[0\]\.p2p_address: unknown field"):
        Genesis.from_json(json.dumps(document))


# ---- the actions


def test_observer_actions_encode_as_documented_and_decode_back():
    add, remove = AddObserver("Regulator", OBSERVER), RemoveObserver(OBSERVER)
    assert action_fields(add) == [12, "Regulator", OBSERVER]
    assert action_fields(remove) == [13, OBSERVER]
    assert decode_action(action_fields(add)) == add
    assert decode_action(action_fields(remove)) == remove


@pytest.mark.parametrize(("payload", "code"), [
    ([12, "Regulator"], TxDecodeCode.BAD_FIELD_COUNT),
    ([12, " bad name", OBSERVER], TxDecodeCode.BAD_FIELD),
    ([12, "Regulator", b"short"], TxDecodeCode.BAD_FIELD),
    ([13, OBSERVER, OBSERVER], TxDecodeCode.BAD_FIELD_COUNT),
])
def test_malformed_observer_actions_are_refused(payload, code):
    with pytest.raises(TxDecodeError) as info:
        decode_action(payload)
    assert info.value.code is code


# ---- the ledger


@pytest.fixture
def store(tmp_path):
    store = LedgerStore.open(tmp_path / "ledger", genesis())
    try:
        yield store
    finally:
        store.close()


def test_an_observer_is_added_and_removed_in_the_state_tree(store):
    before = store.app_hash
    assert commit(store, gov(0, AddObserver("Regulator", OBSERVER))) == ["ok"]
    assert dict(store.governance.observers) == {OBSERVER: "Regulator"}
    assert store.app_hash != before
    proof_key = k.observer_key(OBSERVER)
    assert proof_key.startswith(b"g"), "a g record: application state, in the app hash"
    assert commit(store, gov(1, RemoveObserver(OBSERVER))) == ["ok"]
    assert store.governance.observers == ()
    assert commit(store, gov(2, RemoveObserver(OBSERVER))) == ["unknown_observer"]
    assert store.governance.sequence == 3


def test_observers_survive_a_reopen(tmp_path):
    store = LedgerStore.open(tmp_path / "ledger", genesis())
    assert commit(store, gov(0, AddObserver("Regulator", OBSERVER))) == ["ok"]
    app_hash = store.app_hash
    store.close()
    store = LedgerStore.open(tmp_path / "ledger", genesis())
    try:
        assert dict(store.governance.observers) == {OBSERVER: "Regulator"}
        assert store.app_hash == app_hash
    finally:
        store.close()


def test_an_observer_is_registered_once_under_one_name(store):
    assert commit(store, gov(0, AddObserver("Regulator", OBSERVER))) == ["ok"]
    assert commit(store, gov(1, AddObserver("Regulator 2", OBSERVER))) == ["observer_exists"]
    assert commit(store, gov(2, AddObserver("Regulator", OTHER))) == ["observer_exists"]
    assert dict(store.governance.observers) == {OBSERVER: "Regulator"}


def test_a_validator_key_does_not_observe_and_an_observer_key_does_not_validate(store):
    assert commit(store, gov(0, AddObserver("Validator", VALIDATORS[0].public_key))) == ["key_in_use"]
    assert commit(store, gov(1, AddObserver("Regulator", OBSERVER))) == ["ok"]
    assert commit(store, gov(2, SetValidator(OBSERVER, 1))) == ["key_in_use"]
    assert OBSERVER not in dict(store.validators_at(store.height + 2)[1])


def test_the_number_of_observers_is_bounded(store):
    keys = [hashlib.sha256(b"observer %d" % n).digest() for n in range(MAX_OBSERVERS + 1)]
    txs = [gov(n, AddObserver(f"Observer {n}", key)) for n, key in enumerate(keys)]
    assert commit(store, *txs) == ["ok"] * MAX_OBSERVERS + ["too_many_observers"]
    assert len(store.governance.observers) == MAX_OBSERVERS
    assert keys[-1] not in dict(store.governance.observers)


def test_the_board_alone_registers_observers(store):
    assert commit(store, gov(0, AddObserver("Regulator", OBSERVER), signers=BOARD[:1])) == ["too_few_signatures"]
    assert store.governance.observers == ()


def test_genesis_observers_are_ledger_state(tmp_path):
    state = replace(genesis(), observers=((OBSERVER, "Regulator"),))
    store = LedgerStore.open(tmp_path / "ledger", state)
    try:
        assert dict(store.governance.observers) == {OBSERVER: "Regulator"}
        plain = LedgerStore.open(tmp_path / "plain", genesis())
        try:
            assert plain.app_hash != store.app_hash
        finally:
            plain.close()
    finally:
        store.close()


def test_a_validator_admits_registered_observers_and_an_observer_only_validators(store):
    schedule = ValidatorSchedule(store)
    validator = VALIDATORS[0].public_key
    assert schedule.admits_with_observers(validator) and not schedule.observes(validator)
    assert not schedule.admits_with_observers(OBSERVER), "an unregistered key is refused"
    assert commit(store, gov(0, AddObserver("Regulator", OBSERVER))) == ["ok"]
    assert schedule.admits_with_observers(OBSERVER) and schedule.observes(OBSERVER)
    assert not schedule.admits(OBSERVER), "an observer's own network admits validators only"
    assert commit(store, gov(1, RemoveObserver(OBSERVER))) == ["ok"]
    assert not schedule.admits_with_observers(OBSERVER)


def test_a_local_network_registers_its_observers_and_writes_their_configs(tmp_path):
    network = create_network(tmp_path / "net", validators=2, banks=1, observers=2, base_port=30000)
    assert [o.name for o in network.genesis.observers] == ["observer1", "observer2"]
    config = load_config(network.observer_config_files[0])
    assert config.node.role == "observer" and config.p2p.listen.port == 30004 and config.api.listen.port == 30005
    assert load_config(network.config_files[0]).node.role == "validator"
    net = LocalTestnet(network.directory)
    assert [net.name(i) for i in range(len(net))] == ["validator1", "validator2", "observer1", "observer2"]
    assert net.observers == [2, 3]
