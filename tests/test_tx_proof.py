"""GET /v1/txs/{hash}/proof as the node builds it (node/api/node_backend.py) and as a light client
checks it (node/lightclient/txproof.py): every single-field tamper is caught."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from consensus.certificate import CommitCertificate
from consensus.messages import MessageType, Vote
from consensus.validators import Validator, ValidatorSet
from node.api.backend import TxProofPending
from node.api.node_backend import NodeBackend
from node.core.block import block_hash
from node.core.certificate import decode_certificate, encode_certificate
from node.core.genesis import Bank, BoardMember, Genesis, GenesisBoard, GenesisValidator
from node.core.keys import KeyPair
from node.core.tiers import INSTITUTIONAL, Tier
from node.core.tx import Transaction, TxKind
from node.host.proposer import block_on
from node.host.tip import read_tip
from node.ledger import GenesisState, LedgerStore
from node.ledger.receipts import BYTE_OF, ReceiptCode
from node.lightclient.txproof import TxProofError, verify_tx_proof

CHAIN = "som-proof-test"
ISSUER, BANK, ALICE, BOARD = (KeyPair.from_seed(bytes([n]) * 32) for n in (0x31, 0x32, 0x33, 0x34))
VALIDATORS = [KeyPair.from_seed(bytes([0x40 + i]) * 32) for i in range(4)]
VALIDATOR_SET = ValidatorSet([Validator(v.public_key, 1) for v in VALIDATORS])
GENESIS = Genesis(
    chain_id=CHAIN, genesis_time="2026-01-01T00:00:00Z", issuer=ISSUER.public_key,
    banks=(Bank("bank", BANK.public_key),),
    validators=tuple(GenesisValidator(f"v{i}", v.public_key, 1, f"127.0.0.1:{1000 + i}", f"127.0.0.1:{2000 + i}")
                     for i, v in enumerate(VALIDATORS)),
    balances=((BANK.public_key, 1_000_000),),
    board=GenesisBoard(1, (BoardMember("chair", BOARD.public_key),)),
    tiers=(Tier(0, "anonymous", 10**12, 10**12, 10**12),),
    wallets=tuple(sorted([(BANK.public_key, INSTITUTIONAL)])),
)


def commit(store: LedgerStore, txs: list) -> bytes:
    """Build, execute and durably apply the next block with a certificate of three of the four validators."""
    tip = read_tip(store)
    raw = block_on(tip, CHAIN, VALIDATORS[0].public_key, tip.time_ms + 1, [stx.raw for stx in txs]).encode()
    vid, height = block_hash(raw), tip.height + 1
    votes = tuple(Vote(MessageType.PRECOMMIT, height, 0, vid, v.public_key,
                       v.sign(Vote(MessageType.PRECOMMIT, height, 0, vid, v.public_key, bytes(64))
                              .signing_bytes(CHAIN))) for v in VALIDATORS[:3])
    store.apply(store.prepare(txs, tip.time_ms + 1), raw, encode_certificate(CommitCertificate(height, 0, vid, votes)))
    return raw


@pytest.fixture
def chain(tmp_path):
    with LedgerStore.open(tmp_path / "ledger", GenesisState.from_genesis(GENESIS)) as store:
        backend = NodeBackend(genesis=GENESIS, node_id="v0", store=store, mempool=None,
                              network=SimpleNamespace(broadcast=lambda batch: None), engine_view=lambda: None,
                              decode_certificate=decode_certificate, registry=CollectorRegistry())
        txs = [Transaction(TxKind.TRANSFER, BANK.public_key, nonce, 100 + nonce, ALICE.public_key).sign(BANK, CHAIN)
               for nonce in range(3)]
        txs.append(Transaction(TxKind.TRANSFER, ALICE.public_key, 0, 10**9, BANK.public_key).sign(ALICE, CHAIN))
        commit(store, txs)
        yield store, backend, txs


def test_a_result_is_provable_from_the_next_height_on(chain):
    store, backend, txs = chain
    assert backend.tx_proof(b"\x00" * 32) is None
    with pytest.raises(TxProofPending, match="block 2"):
        backend.tx_proof(txs[1].hash)
    commit(store, [])
    for index, stx in enumerate(txs):
        proven = verify_tx_proof(backend.tx_proof(stx.hash), CHAIN, VALIDATOR_SET, VALIDATOR_SET)
        assert (proven.height, proven.index, proven.tx, proven.tx_hash) == (1, index, stx.raw, stx.hash)
    assert proven.code == BYTE_OF[ReceiptCode.INSUFFICIENT_FUNDS] and proven.waterfall is None


def _flipped(text: str, at: int) -> str:
    data = bytearray(bytes.fromhex(text))
    data[at % len(data)] ^= 0x01
    return data.hex()


def tampered(document: dict) -> list[tuple[str, dict]]:
    """Each way to change one field of ``document``: numbers moved, a bit flipped at the start, middle
    and end of each hex field and of each path element, path elements dropped, added or swapped."""
    cases: list[tuple[str, dict]] = []
    for field, value in document.items():
        if isinstance(value, int):
            cases += [(f"{field}+1", {**document, field: value + 1})]
            if value:
                cases += [(f"{field}-1", {**document, field: value - 1})]
        elif isinstance(value, str):
            length = len(value) // 2
            cases += [(f"{field}@{at}", {**document, field: _flipped(value, at)}) for at in (0, length // 2, -1)]
            cases += [(f"{field} cut", {**document, field: value[:-2]}),
                      (f"{field} not hex", {**document, field: "zz"})]
        else:
            for i in range(len(value)):
                cases += [(f"{field}[{i}]", {**document, field: [*value[:i], _flipped(value[i], i), *value[i + 1:]]}),
                          (f"{field} without [{i}]", {**document, field: value[:i] + value[i + 1:]})]
            cases += [(f"{field} longer", {**document, field: [*value, "00" * 32]})]
            if len(value) > 1:
                cases += [(f"{field} swapped", {**document, field: [value[1], value[0], *value[2:]]})]
    return cases


def test_every_single_field_tamper_fails(chain):
    store, backend, txs = chain
    commit(store, [])
    document = backend.tx_proof(txs[1].hash)
    verify_tx_proof(document, CHAIN, VALIDATOR_SET, VALIDATOR_SET)
    cases = tampered(document)
    assert len(cases) > 40
    for name, changed in cases:
        with pytest.raises(TxProofError):
            verify_tx_proof(changed, CHAIN, VALIDATOR_SET, VALIDATOR_SET)
            pytest.fail(f"a proof with {name} changed verified")


def test_the_wrong_chain_or_validator_sets_fail(chain):
    store, backend, txs = chain
    commit(store, [])
    document = backend.tx_proof(txs[0].hash)
    others = ValidatorSet([Validator(KeyPair.from_seed(bytes([0x50 + i]) * 32).public_key, 1) for i in range(4)])
    heavier = ValidatorSet([Validator(v.public_key, 1 + (i == 3) * 5) for i, v in enumerate(VALIDATORS)])
    for chain_id, at_h, at_next, why in [("som-other", VALIDATOR_SET, VALIDATOR_SET, "chain"),
                                         (CHAIN, others, VALIDATOR_SET, "not a validator"),
                                         (CHAIN, VALIDATOR_SET, others, "next_validators_hash"),
                                         (CHAIN, heavier, VALIDATOR_SET, "insufficient power")]:
        with pytest.raises(TxProofError, match=why):
            verify_tx_proof(document, chain_id, at_h, at_next)
