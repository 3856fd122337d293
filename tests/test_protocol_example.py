"""docs/protocol.md's worked examples, recomputed from the code.

The values are parsed out of the document's fenced blocks (```hex <name>``` with
``name: value`` lines, long values continued on indented lines), so editing the
code without the document, or the document without the code, fails here.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path

import msgpack
import pytest

from consensus.messages import (
    CONSENSUS_DOMAIN,
    MessageType,
    Proposal,
    Vote,
    signing_bytes,
)
from node.core import rfc6962
from node.core.actions import (
    PROOF_DOMAIN,
    AddObserver,
    Freeze,
    OrderReference,
    RemoveObserver,
    Scope,
    SetValidator,
    action_fields,
    decode_action,
    proof_bytes,
)
from node.core.address import decode_address, encode_address
from node.core.block import block_hash, build_block, decode_block
from node.core.genesis import GENESIS_DOMAIN, Genesis
from node.core.governance import GOVERNANCE_DOMAIN, GovernanceTransaction, decode_unsigned
from node.core.keys import KeyPair, verify_signature
from node.core.registration import Registration
from node.core.results import result_leaf
from node.core.transactions import decode_tx
from node.core.tx import TX_DOMAIN, Transaction, TxDecodeCode, TxKind, signing_prefix
from node.core.validator_set import encode_validators, validators_hash
from node.ledger import GenesisState, LedgerStore

PROTOCOL = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
CHAIN_ID = "som-example"
_FENCE = re.compile(r"^```(\w+) ([\w-]+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def fenced_blocks() -> dict[tuple[str, str], str]:
    blocks: dict[tuple[str, str], str] = {}
    for language, name, body in _FENCE.findall(PROTOCOL.read_text(encoding="utf-8")):
        assert (language, name) not in blocks, f"two ```{language} {name}``` blocks"
        blocks[(language, name)] = body
    return blocks


def named_values(body: str) -> dict[str, str]:
    """``name: value`` lines in order; indented lines continue the previous value."""
    values: dict[str, str] = {}
    name = None
    for line in body.splitlines():
        if line.startswith((" ", "\t")):
            assert name is not None, f"continuation line without a name: {line!r}"
            values[name] += line.strip()
            continue
        name, _, value = line.partition(":")
        assert name and name not in values, f"bad or repeated name in {line!r}"
        values[name] = value.strip()
    return values


BLOCKS = fenced_blocks()


def hex_block(name: str) -> dict[str, bytes | str]:
    values = named_values(BLOCKS[("hex", name)])
    return {key: value if key.endswith("_address") else bytes.fromhex(value) for key, value in values.items()}


def test_document_has_every_example_block():
    assert {("hex", "example-transfer"), ("hex", "example-transfer-fields"), ("hex", "example-consensus"),
            ("json", "example-genesis"), ("hex", "example-genesis"), ("hex", "example-governance"),
            ("hex", "example-governance-fields"), ("hex", "example-rotation-proof"), ("hex", "example-freeze"),
            ("hex", "example-observer"), ("hex", "example-registration"), ("hex", "example-block")} <= set(BLOCKS)


def test_rejection_codes_in_the_document_are_exactly_those_of_the_decoder():
    in_code = {code.value for code in TxDecodeCode}
    section = PROTOCOL.read_text(encoding="utf-8").split("## 7.")[1].split("\n## ")[0]
    in_doc = set(re.findall(r"\| `([a-z_]+)` \|", section))
    assert in_code and in_doc == in_code


class TestTransferExample:
    doc = hex_block("example-transfer")

    def keys(self) -> tuple[KeyPair, KeyPair]:
        assert self.doc["sender_seed"] == b"\x01" * 32 and self.doc["recipient_seed"] == b"\x02" * 32
        return KeyPair.from_seed(self.doc["sender_seed"]), KeyPair.from_seed(self.doc["recipient_seed"])

    def signed(self):
        sender, recipient = self.keys()
        tx = Transaction(TxKind.TRANSFER, sender.public_key, 0, 1250, recipient.public_key, "invoice 42")
        return tx, tx.sign(sender, CHAIN_ID)

    def test_keys_and_addresses(self):
        sender, recipient = self.keys()
        assert self.doc["sender_public_key"] == sender.public_key
        assert self.doc["recipient_public_key"] == recipient.public_key
        assert self.doc["sender_address"] == encode_address(sender.public_key)
        assert self.doc["recipient_address"] == encode_address(recipient.public_key)
        assert decode_address(self.doc["sender_address"]) == sender.public_key

    def test_unsigned_and_signing_bytes(self):
        tx, _ = self.signed()
        assert self.doc["unsigned_bytes"] == tx.unsigned_bytes()
        assert self.doc["signing_bytes"] == tx.signing_bytes(CHAIN_ID)
        assert self.doc["signing_bytes"] == (
            TX_DOMAIN + bytes([len(CHAIN_ID)]) + CHAIN_ID.encode() + self.doc["unsigned_bytes"]
        )

    def test_signature_signed_bytes_and_hash(self):
        _, signed = self.signed()
        assert self.doc["signature"] == signed.signature
        assert self.doc["signed_bytes"] == signed.raw
        assert self.doc["tx_hash"] == signed.hash == hashlib.sha256(signed.raw).digest()
        assert verify_signature(self.doc["sender_public_key"], self.doc["signing_bytes"], self.doc["signature"])

    def test_documented_bytes_decode_to_the_documented_transaction(self):
        decoded = decode_tx(self.doc["signed_bytes"])
        tx, _ = self.signed()
        assert decoded.tx == tx
        assert decoded.unsigned_bytes() == self.doc["unsigned_bytes"]
        assert decoded.signing_bytes(CHAIN_ID) == self.doc["signing_bytes"]

    def test_field_breakdown_concatenates_to_the_signed_bytes(self):
        fields = hex_block("example-transfer-fields")
        assert list(fields) == ["array_header", "version", "kind", "sender", "nonce", "recipient", "amount",
                                "memo", "signature"]
        assert b"".join(fields.values()) == self.doc["signed_bytes"]
        assert len(self.doc["signed_bytes"]) == 152
        assert fields["amount"] == msgpack.packb(1250)
        assert fields["memo"] == msgpack.packb("invoice 42")


class TestConsensusExample:
    doc = hex_block("example-consensus")

    def key(self) -> KeyPair:
        assert self.doc["validator_seed"] == b"\x03" * 32
        key = KeyPair.from_seed(self.doc["validator_seed"])
        assert self.doc["validator_public_key"] == key.public_key
        return key

    @pytest.mark.parametrize(
        ("name", "message"),
        [
            ("proposal", lambda vid: Proposal(7, 2, b"", 1, b"", b"")),
            ("prevote", lambda vid: Vote(MessageType.PREVOTE, 7, 2, vid, b"", b"")),
            ("precommit_nil", lambda vid: Vote(MessageType.PRECOMMIT, 7, 2, None, b"", b"")),
        ],
    )
    def test_signing_bytes_and_signatures(self, name, message):
        key = self.key()
        vid = self.doc["value_id"]
        assert vid == hashlib.sha256(b"").digest()
        expected = message(vid).signing_bytes(CHAIN_ID)
        assert self.doc[f"{name}_signing_bytes"] == expected
        assert expected.startswith(CONSENSUS_DOMAIN + bytes([len(CHAIN_ID)]) + CHAIN_ID.encode())
        assert self.doc[f"{name}_signature"] == key.sign(expected)
        assert verify_signature(key.public_key, expected, self.doc[f"{name}_signature"])

    def test_nil_vote_layout(self):
        raw = signing_bytes(CHAIN_ID, MessageType.PRECOMMIT, 7, 2, None)
        assert raw.endswith(b"\x00" + bytes(32))
        assert len(raw) == len(CONSENSUS_DOMAIN) + 1 + len(CHAIN_ID) + 1 + 8 + 4 + 8 + 33


class TestGenesisExample:
    def test_json_hash_and_encoding(self):
        genesis = Genesis.from_json(BLOCKS[("json", "example-genesis")])
        doc = hex_block("example-genesis")
        body = doc["genesis_encoding"]
        assert doc["genesis_hash"] == genesis.hash() == hashlib.sha256(GENESIS_DOMAIN + body).digest()
        assert genesis.to_json() == BLOCKS[("json", "example-genesis")]
        assert msgpack.unpackb(body) == [
            3, genesis.chain_id, genesis.genesis_time, genesis.issuer,
            [[b.name, b.public_key] for b in genesis.banks],
            [[v.name, v.public_key, v.power, v.p2p_address, v.api_address] for v in genesis.validators],
            [[key, amount] for key, amount in genesis.balances],
            [genesis.board.threshold, [[m.name, m.public_key] for m in genesis.board.members]],
            [[t.id, t.name, t.max_balance, t.max_payment, t.max_daily_out] for t in genesis.tiers],
            [[key, tier] for key, tier in genesis.wallets],
        ]
        assert genesis.wallets == ((KeyPair.from_seed(b"\x08" * 32).public_key, 1),)
        assert genesis.issuer == KeyPair.from_seed(b"\x01" * 32).public_key
        assert [m.public_key for m in genesis.board.members] == [
            KeyPair.from_seed(seed * 32).public_key for seed in (b"\x04", b"\x05")]
        assert genesis.validators[0].public_key == KeyPair.from_seed(b"\x03" * 32).public_key


class TestGovernanceExample:
    doc = hex_block("example-governance")

    def board(self) -> tuple[KeyPair, KeyPair]:
        assert self.doc["board1_seed"] == b"\x04" * 32 and self.doc["board2_seed"] == b"\x05" * 32
        board = KeyPair.from_seed(self.doc["board1_seed"]), KeyPair.from_seed(self.doc["board2_seed"])
        for number, key in enumerate(board, 1):
            assert self.doc[f"board{number}_public_key"] == key.public_key
            assert self.doc[f"board{number}_address"] == encode_address(key.public_key)
        return board

    def transaction(self) -> GovernanceTransaction:
        validator = KeyPair.from_seed(b"\x06" * 32).public_key
        assert self.doc["validator_public_key"] == validator
        assert self.doc["validator_address"] == encode_address(validator)
        return GovernanceTransaction(0, 100, SetValidator(validator, 10))

    def test_unsigned_and_signing_bytes(self):
        tx = self.transaction()
        assert self.doc["unsigned_bytes"] == tx.unsigned_bytes()
        assert decode_unsigned(self.doc["unsigned_bytes"]) == tx
        assert self.doc["signing_bytes"] == tx.signing_bytes(CHAIN_ID) == (
            GOVERNANCE_DOMAIN + bytes([len(CHAIN_ID)]) + CHAIN_ID.encode() + self.doc["unsigned_bytes"])

    def test_approvals_signed_bytes_and_hash(self):
        tx, board = self.transaction(), self.board()
        stx = tx.signed([tx.approve(key, CHAIN_ID) for key in board])
        for number, key in enumerate(board, 1):
            assert self.doc[f"board{number}_signature"] == dict(stx.approvals)[key.public_key]
            assert verify_signature(key.public_key, self.doc["signing_bytes"], self.doc[f"board{number}_signature"])
        assert self.doc["signed_bytes"] == stx.raw
        assert self.doc["tx_hash"] == stx.hash == hashlib.sha256(stx.raw).digest()
        assert decode_tx(self.doc["signed_bytes"]) == stx

    def test_field_breakdown_concatenates_to_the_signed_bytes(self):
        fields = hex_block("example-governance-fields")
        assert list(fields) == ["array_header", "version", "kind", "sequence", "expiry_height", "action",
                                "approvals_header", "approval_1", "approval_2"]
        assert b"".join(fields.values()) == self.doc["signed_bytes"]
        assert len(self.doc["signed_bytes"]) == 245
        assert fields["action"] == msgpack.packb([3, self.doc["validator_public_key"], 10])

    def test_rotation_proof(self):
        proof = hex_block("example-rotation-proof")
        assert proof["new_seed"] == b"\x07" * 32
        new = KeyPair.from_seed(proof["new_seed"])
        assert proof["new_public_key"] == new.public_key
        assert proof["old_public_key"] == self.doc["validator_public_key"]
        expected = proof_bytes(CHAIN_ID, proof["old_public_key"], new.public_key)
        assert proof["proof_bytes"] == expected == (PROOF_DOMAIN + bytes([len(CHAIN_ID)]) + CHAIN_ID.encode()
                                                    + proof["old_public_key"] + new.public_key)
        assert proof["proof"] == new.sign(expected)


class TestFreezeExample:
    doc = hex_block("example-freeze")

    def test_a_legal_order_encodes_as_documented(self):
        board = [KeyPair.from_seed(seed * 32) for seed in (b"\x04", b"\x05")]
        assert self.doc["document_sha256"] == hashlib.sha256(b"order 2-1234/26").digest()
        reference = OrderReference("Pervomaisky District Court of Bishkek", "2-1234/26", "2026-11-30",
                                   self.doc["document_sha256"])
        tx = GovernanceTransaction(1, 200, Freeze(KeyPair.from_seed(b"\x08" * 32).public_key, Scope.BOTH, reference))
        assert self.doc["action"] == msgpack.packb(tx.fields()[4], use_bin_type=True)
        assert self.doc["unsigned_bytes"] == tx.unsigned_bytes()
        assert self.doc["signing_bytes"] == tx.signing_bytes(CHAIN_ID)
        stx = tx.signed([tx.approve(key, CHAIN_ID) for key in board])
        approvals = dict(stx.approvals)
        assert [self.doc["board1_signature"], self.doc["board2_signature"]] == [approvals[k.public_key] for k in board]
        assert self.doc["signed_bytes"] == stx.raw and self.doc["tx_hash"] == stx.hash
        assert decode_tx(stx.raw) == stx


class TestRegistrationExample:
    doc = hex_block("example-registration")

    def test_a_registration_encodes_and_signs_as_documented(self):
        assert self.doc["bank_seed"] == b"\x02" * 32
        bank, wallet = KeyPair.from_seed(self.doc["bank_seed"]), KeyPair.from_seed(b"\x08" * 32)
        assert (self.doc["bank_public_key"], self.doc["wallet_public_key"]) == (bank.public_key, wallet.public_key)
        assert (self.doc["bank_address"], self.doc["wallet_address"]) == (bank.address, wallet.address)
        registration = Registration(bank.public_key, 3, wallet.public_key, 1, bank.public_key)
        assert self.doc["unsigned_bytes"] == registration.unsigned_bytes()
        assert self.doc["signing_bytes"] == TX_DOMAIN + bytes([len(CHAIN_ID)]) + CHAIN_ID.encode() + (
            self.doc["unsigned_bytes"])
        signed = registration.sign(bank, CHAIN_ID)
        assert (self.doc["signature"], self.doc["signed_bytes"], self.doc["tx_hash"]) == (
            signed.signature, signed.raw, signed.hash)
        assert decode_tx(signed.raw) == signed
        assert verify_signature(*signed.verify_item(signing_prefix(CHAIN_ID)))


class TestBlockExample:
    doc = hex_block("example-block")

    def test_block_one_of_the_example_chain_encodes_as_documented(self):
        validator = KeyPair.from_seed(b"\x03" * 32).public_key
        genesis = Genesis.from_json(BLOCKS[("json", "example-genesis")])
        txs = [hex_block("example-transfer")["signed_bytes"], hex_block("example-registration")["signed_bytes"]]
        assert self.doc["chain_id"] == CHAIN_ID.encode() == genesis.chain_id.encode()
        assert self.doc["time_ms"] == genesis.genesis_time_ms.to_bytes(8, "big")
        with tempfile.TemporaryDirectory() as directory, \
                LedgerStore.open(directory, GenesisState.from_genesis(genesis)) as store:
            assert self.doc["previous_app_hash"] == store.app_hash, "the state root of the genesis"
        assert self.doc["validators_encoding"] == encode_validators([(validator, 10)])
        assert self.doc["next_validators_hash"] == validators_hash([(validator, 10)]) == hashlib.sha256(
            self.doc["validators_encoding"]).digest()
        assert [self.doc["tx_leaf_hash_0"], self.doc["tx_leaf_hash_1"]] == [
            hashlib.sha256(b"\x00" + tx).digest() for tx in txs]
        assert self.doc["tx_root"] == rfc6962.root(txs) == hashlib.sha256(
            b"\x01" + self.doc["tx_leaf_hash_0"] + self.doc["tx_leaf_hash_1"]).digest()
        assert rfc6962.audit_path(txs, 0) == [self.doc["tx_leaf_hash_1"]]
        block = build_block(chain_id=CHAIN_ID, height=1, time_ms=genesis.genesis_time_ms, proposer=validator,
                            previous_block_hash=genesis.hash(), previous_app_hash=self.doc["previous_app_hash"],
                            previous_results_hash=hashlib.sha256(b"").digest(),
                            next_validators_hash=self.doc["next_validators_hash"], txs=txs)
        raw = block.encode()
        assert self.doc["header"] == block.header.encode() and len(self.doc["header"]) == 229
        assert raw == self.doc["block_prefix"] + self.doc["header"] + b"\x92" + b"".join(
            b"\xc4" + bytes([len(tx)]) + tx for tx in txs)
        assert self.doc["block_hash"] == block_hash(raw) == hashlib.sha256(self.doc["header"]).digest()
        assert decode_block(raw) == block

    def test_the_result_leaves_and_root_are_as_documented(self):
        transfer = hex_block("example-transfer")
        registration = hex_block("example-registration")
        leaves = [result_leaf(transfer["tx_hash"], 0), result_leaf(registration["tx_hash"], 0)]
        assert [self.doc["result_leaf_0"], self.doc["result_leaf_1"]] == leaves
        assert self.doc["results_root"] == rfc6962.root(leaves)
        linked = KeyPair.from_seed(b"\x02" * 32).public_key
        assert self.doc["waterfall_leaf"] == result_leaf(transfer["tx_hash"], 0, (1_000, 250, linked)) == (
            transfer["tx_hash"] + b"\x00" + (1_000).to_bytes(8, "big") + (250).to_bytes(8, "big") + linked)


def test_the_observer_actions_encode_as_documented():
    doc = hex_block("example-observer")
    observer = KeyPair.from_seed(doc["observer_seed"])
    assert doc["observer_public_key"] == observer.public_key and doc["observer_address"] == observer.address
    add, remove = AddObserver("Financial supervision", observer.public_key), RemoveObserver(observer.public_key)
    assert msgpack.packb(action_fields(add), use_bin_type=True) == doc["add_observer"]
    assert msgpack.packb(action_fields(remove), use_bin_type=True) == doc["remove_observer"]
    assert decode_action(msgpack.unpackb(doc["add_observer"], raw=False)) == add
