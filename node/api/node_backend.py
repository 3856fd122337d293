"""The client API's view of a running validator (implements ``ApiBackend``).

Reads come from the committed store and the mempool; nothing here mutates
ledger state, so the API can never interfere with the consensus task beyond
queueing transactions in the mempool.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry

from consensus.certificate import CommitCertificate
from consensus.messages import Proposal, Vote
from consensus.validators import ValidatorSet
from node.api.backend import (
    BlockView,
    CommitCertificateView,
    GovernanceView,
    PrecommitView,
    ProofUnavailable,
    RegistrationView,
    StateProofView,
    TxProofPending,
    TxState,
    TxStatus,
    TxView,
)
from node.api.codec import tier_doc
from node.api.events import BlockFeed
from node.core.actions import ActionKind, Scope
from node.core.address import encode_address
from node.core.amount import format_som
from node.core.block import Block, block_hash, decode_block, decode_header, split_block
from node.core.genesis import Genesis
from node.core.governance import SignedGovernance
from node.core.registration import SignedRegistration
from node.core.results import result_leaf
from node.core.rfc6962 import audit_path
from node.core.tiers import INSTITUTIONAL, bishkek_day
from node.core.transactions import AnyTransaction, decode_tx
from node.ledger.errors import LedgerCorruptError, LedgerHeightError
from node.ledger.receipts import BYTE_OF, ReceiptCode
from node.ledger.store import Account
from node.mempool.relay import TxGossip
from node.mempool.results import AdmitResult


class NodeBackend:
    def __init__(self, *, genesis: Genesis, node_id: str, store, mempool, network, engine_view,
                 decode_certificate, registry: CollectorRegistry, evidence_view=lambda: (),
                 on_corrupt=lambda exc: None, genesis_text: str | None = None, role: str = "validator") -> None:
        """``genesis_text`` is the genesis file as read (None: the genesis rendered as JSON); ``role`` is
        ``validator`` or ``observer`` (``node.role``)."""
        self.chain_id = genesis.chain_id
        self.role = role
        self._genesis_text = genesis.to_json() if genesis_text is None else genesis_text
        self.node_id = node_id
        self.metrics_registry = registry
        self._genesis = genesis
        self._store = store
        self._mempool = mempool
        self._network = network
        self._engine_view = engine_view
        self._decode_certificate = decode_certificate
        self._evidence_view = evidence_view
        self._on_corrupt = on_corrupt
        self.feed = BlockFeed()
        self.gossip = TxGossip(network.broadcast)
        # Names the genesis gives validators; those added later are known by their address.
        self._names = {v.public_key: v.name for v in genesis.validators}
        self._genesis_order = {v.public_key: index for index, v in enumerate(genesis.validators)}

    async def submit(self, raws: list[bytes]) -> list[AdmitResult]:
        """Admit into the mempool, then gossip what was newly accepted to every validator."""
        results = await self._mempool.add_batch(raws)
        self.gossip.add([raw for raw, result in zip(raws, results) if result.accepted and result.code == "accepted"])
        return results

    def tx_status(self, tx_hash: bytes) -> TxStatus:
        with self._reading():
            location = self._store.tx_location(tx_hash)
            raw_block = None if location is None else self._store.block(location.height)
        if location is None:
            pending = self._mempool.get(tx_hash)
            return TxStatus(TxState.UNKNOWN) if pending is None else TxStatus(TxState.PENDING, tx=tx_view(pending))
        # Blocks are kept with their index entries today; once old blocks can be pruned, a
        # transaction found in the index but not in a block keeps its receipt without its fields.
        tx = None if raw_block is None else tx_view(decode_tx(decode_block(raw_block).txs[location.index]))
        return TxStatus(TxState.COMMITTED, location.height, location.index, location.code, tx, location.waterfall)

    def account(self, public_key: bytes) -> tuple[int, int]:
        with self._reading():
            account = self._store.account(public_key)
        return (0, 0) if account is None else (account.balance, account.nonce)

    def account_rules(self, public_key: bytes) -> dict[str, Any]:
        with self._reading():
            account = self._store.account(public_key) or Account(0, 0)
            registration = self._store.registration(public_key)
        state = self._store.governance
        tiers = {tier.id: tier for tier in state.tiers}
        limited = account.tier != INSTITUTIONAL and public_key not in state.redeemers
        tier = tiers.get(account.tier)
        doc: dict[str, Any] = {
            "tier": account.tier,
            "tier_name": "institutional" if account.tier == INSTITUTIONAL else (tier.name if tier else None),
            "limits": None,
            "frozen": {"outgoing": bool(account.flags & Scope.OUTGOING),
                       "incoming": bool(account.flags & Scope.INCOMING)},
            "registering_bank": encode_address(registration[0]) if registration and registration[0] else None,
            "registered_by_board": registration is not None and not registration[0],
            "linked_account": encode_address(registration[1]) if registration and registration[1] else None,
        }
        if limited and tier is not None:
            # "Today" by this node's clock: the day the next block will most likely count in.
            spent = account.spent if account.day == bishkek_day(int(time.time() * 1000)) else 0
            left = max(0, tier.max_daily_out - spent)
            room = max(0, tier.max_balance - account.balance)
            doc["limits"] = {
                "max_balance": tier.max_balance, "max_payment": tier.max_payment,
                "max_daily_out": tier.max_daily_out, "daily_out_left": left, "daily_out_left_som": format_som(left),
                "balance_room": room, "balance_room_som": format_som(room),
            }
        return doc

    def orders(self, public_key: bytes) -> list[dict[str, Any]]:
        with self._reading():
            entries = self._store.orders(public_key)
        return [order_doc(height, index, fields) for height, index, fields in entries]

    def pending_nonce(self, public_key: bytes) -> int:
        return self._mempool.pending_nonce(public_key)

    def latest_height(self) -> int:
        return self._store.height

    def earliest_height(self) -> int:
        return self._store.earliest_height

    def state_proof(self, key: bytes, height: int | None) -> StateProofView:
        store = self._store
        lowest, highest = store.provable_heights()
        if height is None:
            height = highest - 1  # block highest + 1 is not committed yet: the newest certified state is before it
            if height < lowest:
                raise ProofUnavailable(
                    f"no state this node keeps is certified yet: it keeps height {highest} only (since it started), "
                    f"which block {highest + 1} will certify; ask again after it, or give ?height={highest}")
        if not lowest <= height <= highest:
            raise ProofUnavailable(
                f"height {height} cannot be proven here: this node keeps the state of heights {lowest} to "
                f"{highest} (a state is certified by the next block's header)")
        with self._reading():
            try:
                value, proof, root = store.state_proof(key, height)
            except LedgerHeightError as exc:  # the window moved on since provable_heights() was read
                raise ProofUnavailable(str(exc)) from exc
        return StateProofView(height, key, value, root, proof)

    def block(self, height: int) -> BlockView | None:
        store = self._store
        if not 1 <= height <= store.height:
            return None
        with self._reading():
            raw = store.block(height)
            cert_raw = store.certificate(height)
            if raw is None or cert_raw is None:
                return None
            if height == store.height:
                app_hash, results_hash = store.app_hash, store.results_hash
            else:
                after = decode_header(split_block(store.block(height + 1))[0])
                app_hash, results_hash = after.previous_app_hash, after.previous_results_hash
        return block_view(raw, self._decode_certificate(cert_raw), app_hash, results_hash)

    def tx_proof(self, tx_hash: bytes) -> dict[str, Any] | None:
        store = self._store
        with self._reading():
            location = store.tx_location(tx_hash)
            if location is None:
                return None
            height = location.height
            if height >= store.height:
                raise TxProofPending(height)
            raw, raw_after = store.block(height), store.block(height + 1)
            certificate, certificate_after = store.certificate(height), store.certificate(height + 1)
            receipts = store.receipts(height)
            if None in (raw, raw_after, certificate, certificate_after, receipts):
                return None
            block = decode_block(raw)
            # Only a payment that succeeded can have passed an excess on: the index is read for those alone.
            leaves = [result_leaf(receipt.tx_hash, BYTE_OF[receipt.code],
                                  self._waterfall(receipt.tx_hash, height, receipt.index)
                                  if receipt.code == ReceiptCode.OK else None)
                      for receipt in receipts]
        return tx_proof_doc(location.index, block, raw, certificate, split_block(raw_after)[0], certificate_after,
                            leaves)

    def _waterfall(self, tx_hash: bytes, height: int, index: int) -> tuple[int, int, bytes] | None:
        """The waterfall the index keeps for the transaction at (height, index), if it overflowed."""
        location = self._store.tx_location(tx_hash)
        if location is None or (location.height, location.index) != (height, index):
            return None
        return location.waterfall

    def genesis(self) -> tuple[str, bytes]:
        return self._genesis_text, self._genesis.hash()

    def block_txs(self, height: int) -> list[bytes] | None:
        store = self._store
        # A store restored from a snapshot keeps its tip's block below its earliest height: not served.
        if not store.earliest_height <= height <= store.height:
            return None
        with self._reading():
            raw = store.block(height)
        return None if raw is None else list(decode_block(raw).txs)

    def status(self) -> dict[str, Any]:
        store = self._store
        engine = self._engine_view()
        return {
            "chain_id": self.chain_id,
            "node_id": self.node_id,
            "role": self.role,
            "height": store.height,
            "earliest_height": store.earliest_height,
            "app_hash": store.app_hash.hex(),
            "round": engine.round,
            "consensus_height": engine.height,
            "validators": self._validators_doc(engine.validators),
            "peers": [encode_address(p.public_key) for p in self._network.peers()],
            "mempool_size": len(self._mempool),
            "supply": store.supply().outstanding,
            "supply_som": format_som(store.supply().outstanding),
            "committed_txs": store.committed_txs,
            "evidence": [
                {"validator": encode_address(e.validator), "height": e.first.height, "round": e.first.round,
                 "type": _message_kind(e.first)}
                for e in self._evidence_view()
            ],
        }

    def validators(self, height: int | None) -> dict[str, Any] | None:
        """The validator set of ``height`` (default: the height being decided), or None when not decided yet."""
        store = self._store
        height = store.height + 1 if height is None else height
        if not 1 <= height <= store.height + 2:
            return None
        from_height, powers = store.validators_at(height)
        schedule = store.validator_schedule()
        later = [start for start, _ in schedule if start > from_height]
        total = sum(power for _, power in powers)
        return {
            "height": height,
            "from_height": from_height,
            "next_from_height": later[0] if later else None,
            "total_power": total,
            "quorum": total * 2 // 3 + 1,
            "validators": [{"address": encode_address(key), "power": power, "name": self._names.get(key)}
                           for key, power in powers],
        }

    def governance(self) -> dict[str, Any]:
        """The board, its next sequence, the issuer and the banks, as committed."""
        state = self._store.governance
        return {
            "height": self._store.height,
            "next_sequence": state.sequence,
            "history_size": self._store.governance_history_size,
            "pending_sequence": self._mempool.next_sequence(),
            "board": {"threshold": state.board.threshold,
                      "members": [encode_address(member) for member in state.board.members]},
            "issuer": encode_address(state.issuer),
            "banks": [{"name": name, "address": encode_address(key)} for key, name in state.banks],
            "validators_from_height": state.validators_from,
            "tiers": [tier_doc(tier) for tier in state.tiers],
            "observers": [{"name": name, "address": encode_address(key)} for key, name in state.observers],
        }

    def governance_history(self, after: int, limit: int) -> list[tuple[int, int, int, str, AnyTransaction]]:
        """Applied governance transactions after number ``after``: (number, height, index, result, tx)."""
        with self._reading():
            entries = self._store.governance_history(after, limit)
        history = []
        for number, height, index, code, raw in entries:
            history.append((number, height, index, str(code), decode_tx(raw)))
        return history

    def _validators_doc(self, validators: ValidatorSet) -> list[dict[str, Any]]:
        """The genesis validators in genesis order, then those added since, by address: the order people
        saw first stays put as the set changes."""
        order = self._genesis_order
        ranked = sorted(validators, key=lambda v: (order.get(v.public_key, len(order)), v.public_key))
        return [{"name": self._names.get(v.public_key), "address": encode_address(v.public_key), "power": v.power}
                for v in ranked]

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """A damaged store found by a read stops the node: serving errors for committed data hides the damage."""
        try:
            yield
        except LedgerCorruptError as exc:
            self._on_corrupt(exc)
            raise

    def subscribe(self) -> AsyncIterator[BlockView]:
        return self.feed.subscribe()


def block_view(raw: bytes, certificate: CommitCertificate, app_hash: bytes, results_hash: bytes) -> BlockView:
    """A stored block as the API shows it."""
    block = decode_block(raw)
    # A tx hash is SHA-256 of its signed bytes.
    tx_hashes = tuple(hashlib.sha256(tx).digest() for tx in block.txs)
    return committed_block_view(block, block_hash(raw), certificate, app_hash, results_hash, tx_hashes)


def committed_block_view(block: Block, hash_: bytes, certificate: CommitCertificate, app_hash: bytes,
                         results_hash: bytes, tx_hashes: tuple[bytes, ...]) -> BlockView:
    """A block the node has just committed, from what the commit already computed: decoding
    and hashing a large block again for the event feed showed in profiles."""
    return BlockView(
        header=block.header,
        block_hash=hash_,
        app_hash=app_hash,
        results_hash=results_hash,
        tx_hashes=tx_hashes,
        commit=CommitCertificateView(
            certificate.round, certificate.value_id,
            tuple(PrecommitView(v.validator, v.signature) for v in certificate.precommits),
        ),
    )


def tx_proof_doc(index: int, block: Block, raw: bytes, certificate: bytes, header_after: bytes,
                 certificate_after: bytes, leaves: list[bytes]) -> dict[str, Any]:
    """The proof of the transaction at ``index`` of ``block`` and of its result (docs/protocol.md §12.6)."""
    return {
        "height": block.header.height,
        "index": index,
        "tx": block.txs[index].hex(),
        "tx_path": [node.hex() for node in audit_path(block.txs, index)],
        "header": split_block(raw)[0].hex(),
        "certificate": certificate.hex(),
        "result": leaves[index].hex(),
        "result_path": [node.hex() for node in audit_path(leaves, index)],
        "results_header": header_after.hex(),
        "results_certificate": certificate_after.hex(),
    }


def tx_view(stx: AnyTransaction) -> TxView | GovernanceView | RegistrationView:
    if isinstance(stx, SignedGovernance):
        return GovernanceView(stx.tx.sequence, stx.tx.expiry_height, stx.tx.action, stx.signers)
    if isinstance(stx, SignedRegistration):
        registration = stx.tx
        return RegistrationView(registration.sender, registration.nonce, registration.wallet, registration.tier,
                                registration.linked)
    tx = stx.tx
    return TxView(tx.kind.name.lower(), tx.sender, tx.nonce, tx.amount, tx.recipient, tx.memo)


def _message_kind(message: Proposal | Vote) -> str:
    return "proposal" if isinstance(message, Proposal) else message.type.name.lower()


def order_doc(height: int, index: int, fields: list[Any]) -> dict[str, Any]:
    """One legal order from an account's history (node/ledger/layout.py)."""
    kind, detail, destination, authority, number, date, document = fields
    doc: dict[str, Any] = {"height": height, "index": index,
                           "order": {ActionKind.FREEZE: "freeze", ActionKind.UNFREEZE: "unfreeze",
                                     ActionKind.SEIZE: "seize"}[ActionKind(kind)]}
    if kind == ActionKind.SEIZE:
        doc.update(amount=detail, amount_som=format_som(detail), destination=encode_address(destination))
    else:
        doc["scope"] = {Scope.OUTGOING: "outgoing", Scope.INCOMING: "incoming", Scope.BOTH: "both"}[Scope(detail)]
    doc["reference"] = {"authority": authority, "number": number, "date": date, "document_sha256": document.hex()}
    return doc
