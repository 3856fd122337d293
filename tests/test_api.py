"""Client API tests against a fake ApiBackend over a real Mempool (aiohttp TestServer on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import msgpack
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from node.api import (
    BlockFeed,
    BlockView,
    CommitCertificateView,
    PrecommitView,
    SubscriberLagged,
    TooManySubscribers,
    TxProofPending,
    TxState,
    TxStatus,
    TxView,
    make_api_app,
)
from node.app.metrics import NodeMetrics, VerifierCollector
from node.core.block import Header
from node.core.keys import KeyPair, verify_signature
from node.core.tx import SignedTransaction, Transaction, TxKind
from node.ledger.state import GenesisState
from node.mempool.pool import Mempool
from node.mempool.results import AdmitResult
from node.verifier.scheduler import BatchVerifier

CHAIN = "som-api-test"
ISSUER = KeyPair.from_seed(b"\x01" * 32)
ALICE = KeyPair.from_seed(b"\x02" * 32)
BOB = KeyPair.from_seed(b"\x03" * 32)
VALIDATORS = [KeyPair.from_seed(bytes([0x10 + i]) * 32) for i in range(4)]
GENESIS_TEXT = '{\n  "chain_id": "som-api-test"\n}\n'  # the fake serves any text: the real one is node_backend's


def make_block(height: int, tx_hashes: tuple[bytes, ...] = ()) -> BlockView:
    header = Header(CHAIN, height, 1_700_000_000_000 + height * 1000, VALIDATORS[height % 4].public_key,
                    hashlib.sha256(b"block %d" % (height - 1)).digest(),
                    hashlib.sha256(b"app %d" % (height - 1)).digest(),
                    hashlib.sha256(b"results %d" % (height - 1)).digest(), hashlib.sha256(b"set").digest(),
                    hashlib.sha256(b"txs %d" % height).digest(), len(tx_hashes))
    block_hash = header.hash()
    return BlockView(
        header=header,
        block_hash=block_hash,
        app_hash=hashlib.sha256(b"app %d" % height).digest(),
        results_hash=hashlib.sha256(b"results %d" % height).digest(),
        tx_hashes=tx_hashes,
        commit=CommitCertificateView(
            round=0,
            value_id=block_hash,
            precommits=tuple(PrecommitView(v.public_key, v.sign(block_hash)) for v in VALIDATORS[:3]),
        ),
    )


UNREGISTERED_RULES: dict[str, Any] = {
    "tier": 0, "tier_name": "anonymous", "limits": None, "frozen": {"outgoing": False, "incoming": False},
    "registering_bank": None, "registered_by_board": False, "linked_account": None,
}


class FakeBackend:
    """Implements ApiBackend the way the runtime will: mempool admission, a block feed, committed lookups."""

    chain_id = CHAIN
    node_id = "validator-0"

    def __init__(self, verifier: BatchVerifier, *, max_txs: int = 1000, feed_queue: int = 8) -> None:
        self.metrics_registry = CollectorRegistry()
        self.metrics = NodeMetrics(self.metrics_registry)
        self.balances: dict[bytes, tuple[int, int]] = {ALICE.public_key: (10_000, 0)}
        self.mempool = Mempool(
            chain_id=CHAIN, verifier=verifier, account=self.standing,
            governance=GenesisState(CHAIN, bytes(32), ISSUER.public_key, frozenset(), ()).governance,
            max_txs=max_txs, max_bytes=1_000_000,
        )
        self.blocks: dict[int, BlockView] = {}
        self.block_raws: dict[int, list[bytes]] = {}
        self.committed: dict[bytes, tuple[int, int, str]] = {}
        self.earliest = 1  # the lowest height whose block is kept
        self.feed = BlockFeed(queue_size=feed_queue)
        self.fail_with: Exception | None = None
        self.rules: dict[bytes, dict[str, Any]] = {}
        self.order_docs: dict[bytes, list[dict[str, Any]]] = {}

    async def submit(self, raws: list[bytes]) -> list[AdmitResult]:
        if self.fail_with is not None:
            raise self.fail_with
        results = await self.mempool.add_batch(raws)
        self.metrics.set_mempool(len(self.mempool), self.mempool.size_bytes)
        return results

    def tx_status(self, tx_hash: bytes) -> TxStatus:
        if tx_hash in self.committed:
            height, index, result = self.committed[tx_hash]
            return TxStatus(TxState.COMMITTED, height, index, result)
        if tx_hash in self.mempool:
            return TxStatus(TxState.PENDING)
        return TxStatus(TxState.UNKNOWN)

    def account(self, public_key: bytes) -> tuple[int, int]:
        return self.balances.get(public_key, (0, 0))

    def standing(self, public_key: bytes) -> tuple[int, int, int, int]:
        return (*self.account(public_key), 0, 0)

    def account_rules(self, public_key: bytes) -> dict[str, Any]:
        return self.rules.get(public_key, UNREGISTERED_RULES)

    def orders(self, public_key: bytes) -> list[dict[str, Any]]:
        return self.order_docs.get(public_key, [])

    def pending_nonce(self, public_key: bytes) -> int:
        return self.mempool.pending_nonce(public_key)

    def block(self, height: int) -> BlockView | None:
        return self.blocks.get(height)

    def block_txs(self, height: int) -> list[bytes] | None:
        return self.block_raws.get(height)

    def latest_height(self) -> int:
        return max(self.blocks, default=0)

    def earliest_height(self) -> int:
        return self.earliest

    def tx_proof(self, tx_hash: bytes) -> dict[str, Any] | None:
        if tx_hash not in self.committed:
            return None
        height, index, _ = self.committed[tx_hash]
        if height == self.latest_height():
            raise TxProofPending(height)
        return {"height": height, "index": index}

    def genesis(self) -> tuple[str, bytes]:
        return GENESIS_TEXT, hashlib.sha256(GENESIS_TEXT.encode()).digest()

    def status(self) -> dict[str, Any]:
        latest = self.blocks.get(self.latest_height())
        return {
            "chain_id": self.chain_id,
            "node_id": self.node_id,
            "height": self.latest_height(),
            "app_hash": latest.app_hash.hex() if latest else None,
            "validators": [v.address for v in VALIDATORS],
            "peers": 3,
            "mempool_size": len(self.mempool),
            "round": 0,
        }

    def subscribe(self) -> AsyncIterator[BlockView]:
        return self.feed.subscribe()

    def commit(self, block: BlockView, raws: tuple[bytes, ...] = ()) -> None:
        self.blocks[block.height] = block
        self.block_raws[block.height] = list(raws)
        for index, tx_hash in enumerate(block.tx_hashes):
            self.committed[tx_hash] = (block.height, index, "ok")
        self.metrics.observe_commit(block.height, len(block.tx_hashes), 1.0)
        self.feed.publish(block)

    async def wait_for_subscribers(self, count: int) -> None:
        async with asyncio.timeout(10):  # a hang guard, not a timing assertion
            while len(self.feed) < count:
                await asyncio.sleep(0.01)


MAX_BODY = 32 * 1024
MAX_TXS = 10


def transfer(nonce: int, amount: int = 10, key: KeyPair = ALICE) -> SignedTransaction:
    return Transaction(TxKind.TRANSFER, key.public_key, nonce, amount, BOB.public_key).sign(key, CHAIN)


@pytest.fixture
def backend(batch_verifier: BatchVerifier) -> FakeBackend:
    return FakeBackend(batch_verifier)


@pytest.fixture
async def client(backend: FakeBackend) -> AsyncIterator[TestClient]:
    app = make_api_app(backend, max_body_bytes=MAX_BODY, max_txs_per_request=MAX_TXS, metrics=backend.metrics)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield client


async def expect_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    return body


# ---- POST /v1/txs

async def test_submit_json_list_and_single(client: TestClient, backend: FakeBackend) -> None:
    a, b = transfer(0), transfer(1)
    response = await client.post("/v1/txs", json={"txs": [a.raw.hex(), b.raw.hex()]})
    assert response.status == 200
    assert await response.json() == {"results": [
        {"hash": a.hash.hex(), "accepted": True, "code": "accepted"},
        {"hash": b.hash.hex(), "accepted": True, "code": "accepted"},
    ]}
    response = await client.post("/v1/txs", json={"tx": a.raw.hex().upper()})
    assert (await response.json())["results"] == [{"hash": a.hash.hex(), "accepted": True, "code": "duplicate"}]
    assert len(backend.mempool) == 2


async def test_submit_reports_each_rejection(client: TestClient) -> None:
    good, gap = transfer(0), transfer(5)
    response = await client.post("/v1/txs", json={"txs": [good.raw.hex(), "c1", gap.raw.hex()]})
    assert response.status == 200
    results = (await response.json())["results"]
    assert [r["accepted"] for r in results] == [True, False, False]
    assert [r["code"] for r in results] == ["accepted", "malformed", "nonce_gap"]
    assert "hash" not in results[1] and results[2]["hash"] == gap.hash.hex()
    assert results[1]["message"] and results[2]["message"]


async def test_submit_msgpack_in_and_out(client: TestClient) -> None:
    a, b = transfer(0), transfer(1)
    response = await client.post(
        "/v1/txs", data=msgpack.packb([a.raw, b.raw]),
        headers={"Content-Type": "application/msgpack", "Accept": "application/msgpack"},
    )
    assert response.status == 200 and response.content_type == "application/msgpack"
    body = msgpack.unpackb(await response.read())
    assert [r["hash"] for r in body["results"]] == [a.hash.hex(), b.hash.hex()]
    # JSON in, msgpack out
    response = await client.post("/v1/txs", json={"tx": a.raw.hex()}, headers={"Accept": "application/msgpack"})
    assert msgpack.unpackb(await response.read())["results"][0]["code"] == "duplicate"


async def test_mempool_full_is_503_with_retry_after(batch_verifier: BatchVerifier) -> None:
    backend = FakeBackend(batch_verifier, max_txs=1)
    app = make_api_app(backend, max_body_bytes=MAX_BODY)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        assert (await client.post("/v1/txs", json={"tx": transfer(0).raw.hex()})).status == 200
        # One of two refused for space: a normal per-transaction answer.
        response = await client.post("/v1/txs", json={"txs": [transfer(1).raw.hex(), "00"]})
        assert response.status == 200
        assert [r["code"] for r in (await response.json())["results"]] == ["mempool_full", "malformed"]
        # All refused for space: 503.
        response = await client.post("/v1/txs", json={"tx": transfer(1).raw.hex()})
        await expect_error(response, 503, "mempool_full")
        assert int(response.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(("body", "content_type", "code"), [
    (b"{not json", "application/json", "bad_json"),
    (b"\xff\xfe\x00", "application/json", "bad_json"),
    (b"[" * 5000 + b"]" * 5000, "application/json", "bad_json"),
    (b"[]", "application/json", "bad_request"),
    (b'{"txs": "00"}', "application/json", "bad_request"),
    (b'{"txs": [1]}', "application/json", "bad_request"),
    (b'{"txs": []}', "application/json", "bad_request"),
    (b'{"tx": "00", "txs": ["00"]}', "application/json", "bad_request"),
    (b'{"other": 1}', "application/json", "bad_request"),
    (b'{"tx": "0g"}', "application/json", "bad_hex"),
    (b'{"tx": "abc"}', "application/json", "bad_hex"),
    (b'{"txs": ["00", " 00"]}', "application/json", "bad_hex"),
    (json.dumps({"txs": ["00"] * (MAX_TXS + 1)}).encode(), "application/json", "too_many_txs"),
    (b"\xc1", "application/msgpack", "bad_msgpack"),
    (msgpack.packb([b"a"]) + b"\x00", "application/msgpack", "bad_msgpack"),
    (msgpack.packb({"txs": [b"a"]}), "application/msgpack", "bad_request"),
    (msgpack.packb(["00"]), "application/msgpack", "bad_request"),
    (msgpack.packb([b"a"] * (MAX_TXS + 1)), "application/msgpack", "too_many_txs"),
])
async def test_malformed_submissions(client: TestClient, body: bytes, content_type: str, code: str) -> None:
    await expect_error(await client.post("/v1/txs", data=body, headers={"Content-Type": content_type}), 400, code)


async def test_oversized_body_is_413(client: TestClient) -> None:
    body = json.dumps({"txs": ["00" * 400] * 80}).encode()
    assert len(body) > MAX_BODY
    await expect_error(await client.post("/v1/txs", data=body, headers={"Content-Type": "application/json"}),
                       413, "body_too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit must hold while streaming
        for _ in range(40):
            yield b"0" * 1024

    await expect_error(await client.post("/v1/txs", data=chunks()), 413, "body_too_large")
    assert (await client.get("/healthz")).status == 200


async def test_backend_failure_is_500_internal(client: TestClient, backend: FakeBackend,
                                               caplog: pytest.LogCaptureFixture) -> None:
    backend.fail_with = RuntimeError("disk on fire")
    with caplog.at_level(logging.ERROR, logger="node.api.middleware"):
        response = await client.post("/v1/txs", json={"tx": transfer(0).raw.hex()})
    body = await expect_error(response, 500, "internal")
    assert "disk on fire" not in body["error"]["message"]
    assert any("api.internal_error" in r.getMessage() for r in caplog.records)


# ---- reads

async def test_tx_status(client: TestClient, backend: FakeBackend) -> None:
    pending, done = transfer(0), transfer(1, key=BOB)
    await client.post("/v1/txs", json={"tx": pending.raw.hex()})
    backend.commit(make_block(1, (done.hash,)))
    assert await (await client.get(f"/v1/txs/{pending.hash.hex()}")).json() == {
        "hash": pending.hash.hex(), "status": "pending"}
    assert await (await client.get(f"/v1/txs/{done.hash.hex()}")).json() == {
        "hash": done.hash.hex(), "status": "committed", "height": 1, "index": 0, "result": "ok"}
    unknown = bytes(32).hex()
    assert await (await client.get(f"/v1/txs/{unknown}")).json() == {"hash": unknown, "status": "unknown"}
    await expect_error(await client.get("/v1/txs/zz"), 400, "bad_hex")
    await expect_error(await client.get("/v1/txs/abcd"), 400, "bad_hex")


@pytest.mark.parametrize(("view", "shown"), [
    (TxView("transfer", ALICE.public_key, 4, 1250, BOB.public_key, "rent for December"),
     {"kind": "transfer", "sender": ALICE.address, "recipient": BOB.address, "amount": 1250, "amount_som": "12.50",
      "nonce": 4, "memo": "rent for December"}),
    (TxView("redeem", ALICE.public_key, 0, 2**64 - 1, None, ""),
     {"kind": "redeem", "sender": ALICE.address, "recipient": None, "amount": 2**64 - 1,
      "amount_som": "184467440737095516.15", "nonce": 0, "memo": ""}),
])
async def test_a_transaction_the_node_holds_comes_with_its_fields(client: TestClient, backend: FakeBackend,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  view: TxView, shown: dict[str, Any]) -> None:
    tx_hash = "ab" * 32
    monkeypatch.setattr(backend, "tx_status", lambda _: TxStatus(TxState.COMMITTED, 3, 1, "ok", view))
    assert await (await client.get(f"/v1/txs/{tx_hash}")).json() == {
        "hash": tx_hash, "status": "committed", "height": 3, "index": 1, "result": "ok", "tx": shown}
    monkeypatch.setattr(backend, "tx_status", lambda _: TxStatus(TxState.PENDING, tx=view))
    assert await (await client.get(f"/v1/txs/{tx_hash}")).json() == {"hash": tx_hash, "status": "pending", "tx": shown}


def test_an_unknown_transaction_has_no_fields() -> None:
    with pytest.raises(ValueError):
        TxStatus(TxState.UNKNOWN, tx=TxView("transfer", ALICE.public_key, 0, 1, BOB.public_key, ""))


async def test_the_explorer_is_served_at_the_root_from_this_origin_only(client: TestClient) -> None:
    page = await client.get("/")
    assert page.status == 200 and page.content_type == "text/html"
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy and "script-src 'self'" in policy
    html = await page.text()
    for name, content_type in (("app.js", "text/javascript"), ("style.css", "text/css"),
                               ("favicon.svg", "image/svg+xml")):
        assert f"/explorer/{name}" in html
        asset = await client.get(f"/explorer/{name}")
        assert asset.status == 200 and asset.content_type == content_type
        assert asset.headers["Content-Security-Policy"] == policy
    await expect_error(await client.get("/explorer/missing.js"), 404, "not_found")
    await expect_error(await client.get("/explorer/..%2F__init__.py"), 404, "not_found")


async def test_account(client: TestClient) -> None:
    await client.post("/v1/txs", json={"tx": transfer(0).raw.hex()})
    response = await client.get(f"/v1/accounts/{ALICE.address}")
    assert await response.json() == {
        "address": ALICE.address, "balance": 10_000, "balance_som": "100.00", "nonce": 0, "pending_nonce": 1,
        **UNREGISTERED_RULES}
    response = await client.get(f"/v1/accounts/{BOB.address}", headers={"Accept": "application/msgpack"})
    assert msgpack.unpackb(await response.read())["balance"] == 0
    typo = ALICE.address[:-1] + ("a" if ALICE.address[-1] != "a" else "b")
    await expect_error(await client.get(f"/v1/accounts/{typo}"), 400, "bad_address")
    await expect_error(await client.get("/v1/accounts/nonsense"), 400, "bad_address")


async def test_account_orders(client: TestClient, backend: FakeBackend) -> None:
    order = {"height": 7, "index": 0, "action": "freeze", "scope": "both", "authority": "Pervomaisky court",
             "number": "2-123/2026", "date": "2026-11-30", "document_sha256": "ab" * 32}
    backend.order_docs[ALICE.public_key] = [order]
    assert await (await client.get(f"/v1/accounts/{ALICE.address}/orders")).json() == {
        "address": ALICE.address, "orders": [order]}
    assert await (await client.get(f"/v1/accounts/{BOB.address}/orders")).json() == {
        "address": BOB.address, "orders": []}
    await expect_error(await client.get("/v1/accounts/nonsense/orders"), 400, "bad_address")


async def test_blocks(client: TestClient, backend: FakeBackend) -> None:
    await expect_error(await client.get("/v1/blocks/latest"), 404, "block_not_found")
    tx = transfer(0)
    backend.commit(make_block(1))
    backend.commit(make_block(2, (tx.hash,)), (tx.raw,))
    body = await (await client.get("/v1/blocks/2")).json()
    expected = make_block(2, (tx.hash,))
    assert body["height"] == 2 and body["tx_count"] == 1 and body["txs"] == [tx.hash.hex()]
    assert body["hash"] == expected.block_hash.hex()
    assert body["proposer"] == VALIDATORS[2].address
    header = expected.header
    assert body["chain_id"] == CHAIN and body["header"] == header.encode().hex()
    assert hashlib.sha256(bytes.fromhex(body["header"])).hexdigest() == body["hash"]
    assert body["previous_block_hash"] == header.previous_block_hash.hex()
    assert body["previous_app_hash"] == header.previous_app_hash.hex()
    assert body["previous_results_hash"] == header.previous_results_hash.hex()
    assert body["next_validators_hash"] == header.next_validators_hash.hex()
    assert body["tx_root"] == header.tx_root.hex()
    assert body["app_hash"] == expected.app_hash.hex() and body["results_hash"] == expected.results_hash.hex()
    assert body["commit"]["value_id"] == expected.block_hash.hex() and body["commit"]["round"] == 0
    assert [p["validator"] for p in body["commit"]["precommits"]] == [v.address for v in VALIDATORS[:3]]
    for precommit, validator in zip(body["commit"]["precommits"], VALIDATORS):
        assert verify_signature(validator.public_key, expected.block_hash, bytes.fromhex(precommit["signature"]))
    assert await (await client.get("/v1/blocks/latest")).json() == body
    await expect_error(await client.get("/v1/blocks/3"), 404, "block_not_found")
    for bad in ("0", "-1", "1.5", "x", "9" * 30):
        await expect_error(await client.get(f"/v1/blocks/{bad}"), 400, "bad_request")
        await expect_error(await client.get(f"/v1/blocks/{bad}/txs"), 400, "bad_request")
    assert await (await client.get("/v1/blocks/2/txs")).json() == {"height": 2, "txs": [tx.raw.hex()]}
    assert await (await client.get("/v1/blocks/1/txs")).json() == {"height": 1, "txs": []}
    await expect_error(await client.get("/v1/blocks/3/txs"), 404, "block_not_found")


async def test_a_pruned_block_is_said_to_be_pruned(client: TestClient, backend: FakeBackend) -> None:
    for height in (1, 2, 3):
        backend.commit(make_block(height))
    del backend.blocks[1], backend.block_raws[1]
    backend.earliest = 2
    for path in ("/v1/blocks/1", "/v1/blocks/1/txs"):
        body = await expect_error(await client.get(path), 410, "block_pruned")
        assert "keeps blocks from height 2" in body["error"]["message"]
    await expect_error(await client.get("/v1/blocks/4"), 404, "block_not_found")
    assert (await (await client.get("/v1/blocks/2")).json())["height"] == 2


async def test_tx_proof_answers_by_where_the_transaction_is(client: TestClient, backend: FakeBackend) -> None:
    tx = transfer(0)
    await expect_error(await client.get(f"/v1/txs/{tx.hash.hex()}/proof"), 404, "tx_not_committed")
    backend.commit(make_block(1, (tx.hash,)), (tx.raw,))
    body = await expect_error(await client.get(f"/v1/txs/{tx.hash.hex()}/proof"), 409, "result_not_yet_provable")
    assert "block 2" in body["error"]["message"]
    backend.commit(make_block(2))
    assert await (await client.get(f"/v1/txs/{tx.hash.hex()}/proof")).json() == {"height": 1, "index": 0}
    await expect_error(await client.get("/v1/txs/zz/proof"), 400, "bad_hex")


async def test_genesis_is_served_as_the_file_with_its_hash(client: TestClient) -> None:
    body = await (await client.get("/v1/genesis")).json()
    assert body == {"genesis": GENESIS_TEXT, "hash": hashlib.sha256(GENESIS_TEXT.encode()).hexdigest()}


async def test_status_and_health(client: TestClient, backend: FakeBackend) -> None:
    backend.commit(make_block(1))
    status = await (await client.get("/v1/status")).json()
    assert status["chain_id"] == CHAIN and status["height"] == 1 and len(status["validators"]) == 4
    assert await (await client.get("/healthz")).json() == {"status": "ok"}


async def test_routing_errors(client: TestClient) -> None:
    await expect_error(await client.get("/v2/status"), 404, "not_found")
    await expect_error(await client.get("/v1/txs"), 405, "method_not_allowed")
    response = await client.delete("/v1/status")
    await expect_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]
    await expect_error(await client.get("/v1/events"), 400, "bad_request")  # not a websocket upgrade


async def test_metrics_text(client: TestClient, backend: FakeBackend) -> None:
    await client.post("/v1/txs", json={"tx": transfer(0).raw.hex()})
    await client.get("/v1/txs/zz")
    await client.get("/nowhere")
    backend.commit(make_block(1, (transfer(0).hash,)))
    response = await client.get("/metrics")
    assert response.status == 200 and response.content_type == "text/plain"
    text = await response.text()
    assert 'somnode_api_requests_total{route="/v1/txs",status="200"} 1.0' in text
    assert 'somnode_api_requests_total{route="/v1/txs/{hash}",status="400"} 1.0' in text
    assert 'somnode_api_requests_total{route="unmatched",status="404"} 1.0' in text
    assert "somnode_height 1.0" in text
    assert "somnode_committed_transactions_total 1.0" in text
    assert "somnode_mempool_transactions 1.0" in text


def test_metrics_live_on_the_node_registry_only() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    NodeMetrics(first).set_peers(3)
    NodeMetrics(second).set_peers(5)  # a second node in the same process: no clash
    assert first.get_sample_value("somnode_peers") == 3 and second.get_sample_value("somnode_peers") == 5
    with pytest.raises(ValueError):
        NodeMetrics(first)  # the same names twice on one registry is a wiring mistake, and loud
    metrics = NodeMetrics(CollectorRegistry())
    metrics.observe_commit(9, 300, None)
    registry = metrics.registry
    assert registry.get_sample_value("somnode_block_interval_seconds_count") == 0
    assert registry.get_sample_value("somnode_height") == 9


def test_verifier_counters_are_exported_at_scrape_time() -> None:
    registry = CollectorRegistry()
    with BatchVerifier(threads=1, max_wait_ms=0) as verifier:
        registry.register(VerifierCollector(lambda: verifier.stats))
        key = KeyPair.generate()
        item = (key.public_key, b"m", key.sign(b"m"))
        assert verifier.verify_many([item, item]) == [True, True]
        assert verifier.verify_many([item]) == [True]
        stats = verifier.stats
    assert registry.get_sample_value("somnode_verify_verified_total") == stats.verified >= 1
    assert registry.get_sample_value("somnode_verify_cache_hits_total") == stats.cache_hits >= 1
    assert registry.get_sample_value("somnode_verify_batch_size_count") == stats.batches >= 1
    assert registry.get_sample_value("somnode_verify_batch_size_bucket", {"le": "+Inf"}) == stats.batches


# ---- events

async def test_events_stream_committed_blocks(client: TestClient, backend: FakeBackend) -> None:
    async with client.ws_connect("/v1/events") as ws:
        await backend.wait_for_subscribers(1)
        backend.commit(make_block(1))
        backend.commit(make_block(2, (transfer(0).hash,)))
        first, second = await ws.receive_json(timeout=10), await ws.receive_json(timeout=10)
        assert first["type"] == "block" and first["block"]["height"] == 1
        assert second["block"]["height"] == 2 and second["block"]["tx_count"] == 1
    await backend.wait_for_subscribers(0)  # the subscription ends with the connection


async def test_events_decline_compression(client: TestClient, backend: FakeBackend) -> None:
    """permessage-deflate would cost the validator CPU per subscriber and block; the server declines it."""
    async with client.ws_connect("/v1/events", compress=15) as ws:
        assert ws.compress == 0
        await backend.wait_for_subscribers(1)
        backend.commit(make_block(1))
        assert (await ws.receive_json(timeout=10))["block"]["height"] == 1


async def test_events_lagging_subscriber_is_closed(client: TestClient, backend: FakeBackend) -> None:
    async def lagged() -> AsyncIterator[BlockView]:
        yield make_block(1)
        raise SubscriberLagged("behind")

    backend.subscribe = lagged  # type: ignore[method-assign]
    async with client.ws_connect("/v1/events") as ws:
        assert (await ws.receive_json(timeout=10))["block"]["height"] == 1
        message = await ws.receive(timeout=10)
        assert message.type is WSMsgType.CLOSE and message.data == 1008


async def test_events_refused_when_the_feed_is_full(client: TestClient, backend: FakeBackend) -> None:
    async def crowded() -> AsyncIterator[BlockView]:
        raise TooManySubscribers("256 subscribers already")
        yield  # an async generator, like BlockFeed.subscribe

    backend.subscribe = crowded  # type: ignore[method-assign]
    async with client.ws_connect("/v1/events") as ws:
        message = await ws.receive(timeout=10)
        assert message.type is WSMsgType.CLOSE and message.data == 1013


async def test_events_fault_is_logged_and_closes_with_1011(client: TestClient, backend: FakeBackend,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> AsyncIterator[BlockView]:
        yield "not a block"  # type: ignore[misc]

    backend.subscribe = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="node.api.events"):
        async with client.ws_connect("/v1/events") as ws:
            message = await ws.receive(timeout=10)
            assert message.type is WSMsgType.CLOSE and message.data == 1011
    assert any("event_stream_failed" in r.getMessage() for r in caplog.records)


async def test_events_closed_at_shutdown(backend: FakeBackend) -> None:
    app = make_api_app(backend, max_body_bytes=MAX_BODY)
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        ws = await client.ws_connect("/v1/events")
        await backend.wait_for_subscribers(1)
        await client.server.close()
        message = await ws.receive(timeout=10)
        assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
        assert ws.close_code == 1001 or message.data == 1001
    finally:
        await client.close()


async def test_feed_cuts_off_a_lagging_subscriber() -> None:
    feed = BlockFeed(queue_size=2, max_subscribers=2)
    slow, fast = feed.subscribe(), feed.subscribe()
    fast_task = asyncio.ensure_future(anext(fast))
    slow_task = asyncio.ensure_future(anext(slow))
    await asyncio.sleep(0)
    feed.publish(make_block(1))
    assert (await fast_task).height == 1 and (await slow_task).height == 1
    for height in (2, 3, 4):  # slow reads nothing: its queue holds 2, the third overflows it
        feed.publish(make_block(height))
        assert (await anext(fast)).height == height
    with pytest.raises(SubscriberLagged):
        await anext(slow)
    assert len(feed) == 1
    extra, one_more = feed.subscribe(), feed.subscribe()
    extra_task = asyncio.ensure_future(anext(extra))
    await asyncio.sleep(0)
    with pytest.raises(TooManySubscribers):
        await anext(one_more)
    feed.close()
    with pytest.raises(StopAsyncIteration):
        await extra_task
    with pytest.raises(StopAsyncIteration):
        await anext(fast)
    await fast.aclose()


# ---- randomised: garbage never gets a 5xx and never takes the server down

_EXAMPLES = int(os.environ.get("SOMNODE_API_EXAMPLES", "1000" if os.environ.get("SOMNODE_LONG") == "1" else "60"))
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["tx", "txs", "x"]), inner, max_size=3),
    max_leaves=12,
)
_msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=64) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12,
)
_bodies = st.one_of(
    st.binary(max_size=2048).map(lambda b: ("application/json", b)),
    st.binary(max_size=2048).map(lambda b: ("application/msgpack", b)),
    _json_values.map(lambda v: ("application/json", json.dumps(v).encode())),
    _msgpack_values.map(lambda v: ("application/msgpack", msgpack.packb(v))),
    st.lists(st.binary(max_size=600), min_size=1, max_size=12).map(
        lambda txs: ("application/json", json.dumps({"txs": [t.hex() for t in txs]}).encode())),
    st.lists(st.binary(max_size=600), min_size=1, max_size=12).map(
        lambda txs: ("application/msgpack", msgpack.packb(txs))),
    st.binary(min_size=MAX_BODY + 1, max_size=MAX_BODY + 100).map(lambda b: ("text/plain", b)),
)


async def _post_garbage(batch_verifier: BatchVerifier, bodies: list[tuple[str, bytes]]) -> None:
    backend = FakeBackend(batch_verifier)
    app = make_api_app(backend, max_body_bytes=MAX_BODY, max_txs_per_request=MAX_TXS)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        for content_type, body in bodies:
            response = await client.post("/v1/txs", data=body, headers={"Content-Type": content_type})
            assert response.status < 500, await response.text()
            assert response.content_type == "application/json"
            document = await response.json()
            if response.status == 200:  # well formed; random bytes are never a validly signed transaction
                assert document["results"] and not any(r["accepted"] for r in document["results"])
            else:
                assert 400 <= response.status < 500 and document["error"]["code"]
            assert (await client.get("/healthz")).status == 200
        assert len(backend.mempool) == 0


@settings(max_examples=_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies=st.lists(_bodies, min_size=1, max_size=6))
def test_garbage_bodies_get_4xx_and_the_server_keeps_answering(batch_verifier: BatchVerifier,
                                                               bodies: list[tuple[str, bytes]]) -> None:
    asyncio.run(_post_garbage(batch_verifier, bodies))


_path_text = st.text(st.characters(codec="utf-8", exclude_characters="/?#%"), max_size=80)


async def _get_garbage(batch_verifier: BatchVerifier, segments: list[tuple[str, str]]) -> None:
    backend = FakeBackend(batch_verifier)
    backend.commit(make_block(1))
    app = make_api_app(backend, max_body_bytes=MAX_BODY)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        for prefix, segment in segments:
            response = await client.get(prefix + quote(segment, safe=""))
            assert response.status in (200, 400, 404), await response.text()
            document = await response.json()
            assert response.status == 200 or document["error"]["code"]


@settings(max_examples=_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(segments=st.lists(st.tuples(st.sampled_from(["/v1/txs/", "/v1/accounts/", "/v1/blocks/"]), _path_text),
                         min_size=1, max_size=6))
def test_garbage_path_parameters_never_get_a_5xx(batch_verifier: BatchVerifier,
                                                 segments: list[tuple[str, str]]) -> None:
    asyncio.run(_get_garbage(batch_verifier, segments))
