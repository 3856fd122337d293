"""Hostile client input against a running validator's API.

A real one-validator network (which commits on its own) takes hypothesis-drawn
abuse: malformed, truncated, deeply nested and oversized JSON and msgpack
bodies, wrong shapes and types, bad hex, bad addresses and heights, and
signed-looking transactions that are wrong in exactly one way (bad field,
amount out of range, non-canonical encoding, forged or wrong-chain or
malleated signature, unauthorised issue, self transfer, stale nonce, replay,
nonce gap, insufficient funds).  Every input has one expected answer, built
from docs/api.md, and the test asserts exactly that answer.  Honest transfers
are interleaved and must commit; at the end every refused transaction is
``unknown``, the balances equal a model of the honest transfers, and the
supply is unchanged.  A second network whose only running validator cannot
reach a quorum (so its mempool never drains) is flooded until the per-account
limit and then the pool itself refuse, ending in 503 ``mempool_full`` with
``Retry-After``.

Run with ``-s`` to see how many inputs were tried; ``SOMNODE_LONG=1`` tries
many thousands.  A failure prints hypothesis' reproduction blob.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import string
import struct
from collections import Counter
from dataclasses import dataclass

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.app.config import load_config, render_config
from node.core.address import encode_address
from node.core.amount import MAX_TYIYN
from node.core.keys import KeyPair, read_key_file
from node.core.transactions import decode_tx
from node.core.tx import MAX_TX_BYTES, Transaction, TxDecodeError, TxKind
from node.tools.network import DEFAULT_TIERS
from tests.localnet import Wallet, make_network, node_log, running

LONG = os.environ.get("SOMNODE_LONG") == "1"
EXAMPLES = 20_000 if LONG else 600
HONEST_EVERY = 8  # one honest transfer per this many hostile inputs
ATTACKER_FUNDS = 1_000
# The attacker is unregistered: tier 0 of the test network's genesis bounds each of its payments.
ATTACKER_MAX_PAYMENT = next(tier.max_payment for tier in DEFAULT_TIERS if tier.id == 0)
FLOOD_LIMIT = 1000  # the node's default pending transactions per account
MAX_TXS_PER_REQUEST = 5000
MAX_BODY_BYTES = 1024 * 1024
# The order of the Ed25519 group: S + L is the same signature in a non-canonical form.
ED25519_L = 2**252 + 27742317777372353535851937790883648493
DECODE_CODES = frozenset({"malformed", "too_large", "bad_version", "unknown_kind", "bad_field_count",
                          "bad_field", "bad_amount", "memo_too_long", "bad_signature", "non_canonical"})


# ---- HTTP, one fresh connection per request (the server may close after a refusal)

@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    doc: object


def request(port: int, method: str, path: str, body: bytes | None = None,
            content_type: str = "application/json", chunked: bool = False) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": content_type} if body is not None else {}
        if chunked:
            conn.request(method, path, body=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
                         headers=headers, encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        doc = json.loads(raw) if response.getheader("Content-Type", "").startswith("application/json") else raw
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, doc)
    finally:
        conn.close()


def expect_error(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer
    assert answer.doc["error"]["code"] == code, answer.doc
    assert isinstance(answer.doc["error"]["message"], str)


def submit_json(port: int, raws: list[bytes]) -> Answer:
    return request(port, "POST", "/v1/txs", json.dumps({"txs": [r.hex() for r in raws]}).encode())


def submit_msgpack(port: int, raws: list[bytes], content_type: str = "application/msgpack") -> Answer:
    return request(port, "POST", "/v1/txs", msgpack.packb(raws, use_bin_type=True), content_type)


# ---- forged transactions: each wrong in exactly one way

def pack(fields: list) -> bytes:
    return msgpack.packb(fields, use_bin_type=True)


def signed_fields(key: KeyPair, chain_id: str, kind: TxKind, nonce: int, amount: int,
                  recipient: bytes | None, memo: str = "") -> list:
    tx = Transaction(kind, key.public_key, nonce, amount, recipient, memo)
    return tx.fields() + [key.sign(tx.signing_bytes(chain_id))]


@dataclass(frozen=True, slots=True)
class TxProbe:
    """One raw transaction and the per-transaction code the node must answer."""

    label: str
    raw: bytes
    code: str
    # A replay of a committed transaction carries that transaction's hash: not "unknown" afterwards.
    replay: bool = False

    @property
    def decodes(self) -> bool:
        return self.code not in DECODE_CODES


class Forger:
    """Builds refused transactions for the attacker (funded, never admitted, so its nonce stays 0)."""

    def __init__(self, chain_id: str, attacker: KeyPair, honest: KeyPair, committed_raw: bytes) -> None:
        self.chain_id = chain_id
        self.attacker = attacker
        self.honest = honest
        self.committed_raw = committed_raw  # the honest key's committed nonce-0 transfer
        self.victim = KeyPair.from_seed(b"\x07" * 32).public_key

    def draw(self, data: st.DataObject) -> TxProbe:
        label = data.draw(st.sampled_from(sorted(self._BUILDERS)), label="tx kind")
        return self._BUILDERS[label](self, data)

    # Valid apart from the one flaw each builder adds: an affordable transfer at the attacker's next nonce.
    def _base(self, data: st.DataObject) -> list:
        amount = data.draw(st.integers(1, ATTACKER_FUNDS), label="amount")
        memo = data.draw(st.text(max_size=20), label="memo")
        return signed_fields(self.attacker, self.chain_id, TxKind.TRANSFER, 0, amount, self.victim, memo)

    def garbage(self, data):
        raw = data.draw(st.binary(max_size=MAX_TX_BYTES), label="garbage")
        try:
            decode_tx(raw)
        except TxDecodeError as exc:
            return TxProbe("garbage", raw, exc.code)
        return self.too_large(data)  # random bytes that decode as a transaction: practically never

    def too_large(self, data):
        garbage = data.draw(st.binary(min_size=MAX_TX_BYTES + 1, max_size=MAX_TX_BYTES + 200))
        return TxProbe("too_large", garbage, "too_large")

    def bad_version(self, data):
        fields = self._base(data)
        fields[0] = data.draw(st.one_of(st.integers(-2**63, 2**64 - 1).filter(lambda v: v != 1),
                                        st.just(True), st.text(max_size=3)), label="version")
        return TxProbe("bad_version", pack(fields), "bad_version")

    def unknown_kind(self, data):
        fields = self._base(data)
        fields[1] = data.draw(st.one_of(st.integers(-2**63, 2**64 - 1).filter(lambda v: v not in set(TxKind)),
                                        st.text(max_size=3), st.none()), label="kind")
        return TxProbe("unknown_kind", pack(fields), "unknown_kind")

    def bad_field_count(self, data):
        fields = self._base(data)
        if data.draw(st.booleans(), label="drop"):
            del fields[data.draw(st.integers(2, 6), label="dropped")]
        else:
            fields.insert(data.draw(st.integers(2, 7), label="at"), data.draw(st.integers(0, 9), label="extra"))
        return TxProbe("bad_field_count", pack(fields), "bad_field_count")

    def bad_field(self, data):
        fields = self._base(data)
        index = data.draw(st.sampled_from([2, 3, 4, 6]), label="field")  # sender, nonce, recipient, memo
        bad = {
            2: st.one_of(st.binary(max_size=40).filter(lambda b: len(b) != 32), st.text(max_size=8), st.none()),
            3: st.one_of(st.integers(-2**63, -1), st.floats(allow_nan=False), st.text(max_size=8), st.none()),
            4: st.one_of(st.binary(max_size=40).filter(lambda b: len(b) != 32), st.integers(0, 9), st.none()),
            6: st.one_of(st.binary(max_size=8), st.integers(0, 9), st.none()),
        }[index]
        fields[index] = data.draw(bad, label="bad value")
        return TxProbe("bad_field", pack(fields), "bad_field")

    def bad_amount(self, data):
        fields = self._base(data)
        fields[5] = data.draw(st.one_of(st.just(0), st.integers(-2**63, -1), st.floats(allow_nan=False),
                                        st.just(True), st.text(max_size=8), st.none()), label="amount")
        return TxProbe("bad_amount", pack(fields), "bad_amount")

    def memo_too_long(self, data):
        fields = self._base(data)
        fields[6] = "m" * data.draw(st.integers(257, 300), label="memo length")
        return TxProbe("memo_too_long", pack(fields), "memo_too_long")

    def bad_signature(self, data):
        fields = self._base(data)
        fields[7] = data.draw(st.one_of(st.binary(max_size=80).filter(lambda b: len(b) != 64),
                                        st.text(max_size=8), st.none()), label="signature")
        return TxProbe("bad_signature", pack(fields), "bad_signature")

    def non_canonical(self, data):
        fields = self._base(data)
        parts = [msgpack.packb(f, use_bin_type=True) for f in fields]
        how = data.draw(st.sampled_from(["array16", "wide_nonce", "wide_amount"]), label="how")
        if how == "array16":
            head = b"\xdc" + struct.pack(">H", len(fields))
        else:
            head = bytes([0x90 | len(fields)])
            index = 3 if how == "wide_nonce" else 5
            parts[index] = b"\xcf" + struct.pack(">Q", fields[index])
        return TxProbe("non_canonical", head + b"".join(parts), "non_canonical")

    def invalid_signature(self, data):
        fields = self._base(data)
        how = data.draw(st.sampled_from(["flipped", "wrong_chain", "malleated", "other_key"]), label="how")
        tx = Transaction(TxKind.TRANSFER, self.attacker.public_key, 0, fields[5], self.victim, fields[6])
        if how == "flipped":
            bit = data.draw(st.integers(0, 511), label="bit")
            sig = bytearray(fields[7])
            sig[bit // 8] ^= 1 << (bit % 8)
            fields[7] = bytes(sig)
        elif how == "wrong_chain":
            chain = data.draw(st.text(min_size=1, max_size=20).filter(
                lambda c: c != self.chain_id and len(c.encode()) <= 64), label="chain")
            fields[7] = self.attacker.sign(tx.signing_bytes(chain))
        elif how == "malleated":
            s = int.from_bytes(fields[7][32:], "little") + ED25519_L
            fields[7] = fields[7][:32] + s.to_bytes(32, "little")
        else:
            fields[7] = self.honest.sign(tx.signing_bytes(self.chain_id))
        return TxProbe(f"invalid_signature/{how}", pack(fields), "invalid_signature")

    def unauthorised(self, data):
        amount = data.draw(st.integers(1, MAX_TYIYN), label="amount")
        if data.draw(st.booleans(), label="issue"):
            fields = signed_fields(self.attacker, self.chain_id, TxKind.ISSUE, 0, amount, self.victim)
        else:
            fields = signed_fields(self.attacker, self.chain_id, TxKind.REDEEM, 0, amount, None)
        return TxProbe("unauthorised", pack(fields), "unauthorised")

    def self_transfer(self, data):
        amount = data.draw(st.integers(1, ATTACKER_FUNDS), label="amount")
        fields = signed_fields(self.attacker, self.chain_id, TxKind.TRANSFER, 0, amount, self.attacker.public_key)
        return TxProbe("self_transfer", pack(fields), "self_transfer")

    def stale_nonce(self, data):
        if data.draw(st.booleans(), label="replay"):
            return TxProbe("replay", self.committed_raw, "stale_nonce", replay=True)
        amount = data.draw(st.integers(1, 10**6), label="amount")
        fields = signed_fields(self.honest, self.chain_id, TxKind.TRANSFER, 0, amount, self.victim)
        return TxProbe("stale_nonce", pack(fields), "stale_nonce")

    def nonce_gap(self, data):
        nonce = data.draw(st.integers(1, MAX_TYIYN), label="nonce")
        amount = data.draw(st.integers(1, ATTACKER_FUNDS), label="amount")
        fields = signed_fields(self.attacker, self.chain_id, TxKind.TRANSFER, nonce, amount, self.victim)
        return TxProbe("nonce_gap", pack(fields), "nonce_gap")

    def insufficient_funds(self, data):
        amount = data.draw(st.integers(ATTACKER_FUNDS + 1, ATTACKER_MAX_PAYMENT), label="amount")
        fields = signed_fields(self.attacker, self.chain_id, TxKind.TRANSFER, 0, amount, self.victim)
        return TxProbe("insufficient_funds", pack(fields), "insufficient_funds")

    def over_payment_limit(self, data):
        amount = data.draw(st.integers(ATTACKER_MAX_PAYMENT + 1, MAX_TYIYN), label="amount")
        fields = signed_fields(self.attacker, self.chain_id, TxKind.TRANSFER, 0, amount, self.victim)
        return TxProbe("over_payment_limit", pack(fields), "over_payment_limit")

    _BUILDERS = {name: fn for name, fn in locals().items()
                 if callable(fn) and not name.startswith("_") and name != "draw"}


# ---- request-level abuse: each with the one refusal docs/api.md prescribes

def expected_for_json(doc: object) -> tuple[int, str]:
    """docs/api.md's rule for a JSON document that is not a well-formed submission of valid hex."""
    if not isinstance(doc, dict) or len(doc) != 1 or not ({"tx", "txs"} & doc.keys()):
        return 400, "bad_request"
    items = [doc["tx"]] if "tx" in doc else doc["txs"]
    if not isinstance(items, list) or not items:
        return 400, "bad_request"
    for item in items:
        if not isinstance(item, str):
            return 400, "bad_request"
        if len(item) % 2 or any(c not in string.hexdigits for c in item):
            return 400, "bad_hex"
    return (400, "too_many_txs") if len(items) > MAX_TXS_PER_REQUEST else (200, "")


def document_values(integers: st.SearchStrategy[int]) -> st.SearchStrategy[object]:
    return st.recursive(
        st.none() | st.booleans() | integers | st.floats(allow_nan=False) | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
        max_leaves=12)


json_values = document_values(st.integers())
msgpack_values = document_values(st.integers(-2**63, 2**64 - 1))  # what msgpack can encode
shape_docs = st.one_of(
    json_values,
    st.fixed_dictionaries({"txs": json_values}),
    st.fixed_dictionaries({"tx": json_values}),
    st.fixed_dictionaries({"txs": st.lists(json_values, max_size=3)}),
    st.fixed_dictionaries({"tx": st.just("00"), "txs": st.just(["00"])}),
    st.fixed_dictionaries({"txs": st.just(["00"]), "extra": json_values}),
)
bad_hex_text = st.one_of(
    st.text(alphabet="0123456789abcdefABCDEF", min_size=1, max_size=41).filter(lambda t: len(t) % 2 == 1),
    st.text(min_size=1, max_size=20).filter(lambda t: any(c not in "0123456789abcdefABCDEF" for c in t)),
    st.sampled_from(["0x00", " 00", "00 ", "0 0", "00\n", "ab\u0660"]),
)


def draw_request_probe(data: st.DataObject, port: int, sample_tx: bytes, address: str) -> tuple[str, Answer, int, str]:
    """(label, answer, expected status, expected code) for one malformed request."""
    kind = data.draw(st.sampled_from([
        "truncated_json", "not_json", "invalid_utf8", "deep_json", "json_shape", "bad_hex", "empty_txs",
        "too_many_txs", "oversized", "oversized_chunked", "msgpack_garbage", "msgpack_trailing",
        "msgpack_shape", "bad_address", "bad_tx_hash", "bad_height", "future_height", "unknown_path",
        "wrong_method"]), label="request kind")
    if kind == "truncated_json":
        body = json.dumps({"txs": [sample_tx.hex()] * data.draw(st.integers(1, 3))}).encode()
        cut = data.draw(st.integers(0, len(body) - 1), label="cut")
        return kind, request(port, "POST", "/v1/txs", body[:cut]), 400, "bad_json"
    if kind == "not_json":
        body = data.draw(st.binary(max_size=200), label="body")
        try:
            doc = json.loads(body)
        except ValueError:
            return kind, request(port, "POST", "/v1/txs", body), 400, "bad_json"
        status, code = expected_for_json(doc)
        return "json_shape", request(port, "POST", "/v1/txs", body), status, code
    if kind == "invalid_utf8":
        bad = data.draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]))
        body = b'{"tx": "' + bad + b'"}' if data.draw(st.booleans()) else '{"tx": "00"}'.encode("utf-16")
        return kind, request(port, "POST", "/v1/txs", body), 400, "bad_json"
    if kind == "deep_json":
        depth = data.draw(st.integers(10_000, 200_000), label="depth")
        return kind, request(port, "POST", "/v1/txs", b"[" * depth + b"]" * depth), 400, "bad_json"
    if kind == "json_shape":
        doc = data.draw(shape_docs, label="doc")
        status, code = expected_for_json(doc)
        if status == 200:  # a list of valid hex strings: decoded per transaction instead
            return draw_request_probe(data, port, sample_tx, address)
        return kind, request(port, "POST", "/v1/txs", json.dumps(doc).encode()), status, code
    if kind == "bad_hex":
        text = data.draw(bad_hex_text, label="hex")
        doc = {"tx": text} if data.draw(st.booleans()) else {"txs": [sample_tx.hex(), text]}
        return kind, request(port, "POST", "/v1/txs", json.dumps(doc).encode()), 400, "bad_hex"
    if kind == "empty_txs":
        return kind, request(port, "POST", "/v1/txs", b'{"txs": []}'), 400, "bad_request"
    if kind == "too_many_txs":
        count = MAX_TXS_PER_REQUEST + data.draw(st.integers(1, 100), label="over")
        return kind, request(port, "POST", "/v1/txs", json.dumps({"txs": ["00"] * count}).encode()), 400, "too_many_txs"
    if kind in ("oversized", "oversized_chunked"):
        body = b'{"txs": ["' + b"00" * ((MAX_BODY_BYTES + data.draw(st.integers(1, 4096))) // 2) + b'"]}'
        answer = request(port, "POST", "/v1/txs", body, chunked=kind == "oversized_chunked")
        return kind, answer, 413, "body_too_large"
    content_type = data.draw(st.sampled_from(["application/msgpack", "application/x-msgpack",
                                              "application/vnd.msgpack"]), label="content type")
    if kind == "msgpack_garbage":
        body = data.draw(st.binary(max_size=200), label="body")
        try:
            doc = msgpack.unpackb(body, raw=False, strict_map_key=True)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
            return kind, request(port, "POST", "/v1/txs", body, content_type), 400, "bad_msgpack"
        valid_shape = isinstance(doc, list) and doc and all(type(i) is bytes for i in doc)
        if valid_shape:  # an array of bin: decoded per transaction instead
            return draw_request_probe(data, port, sample_tx, address)
        return "msgpack_shape", request(port, "POST", "/v1/txs", body, content_type), 400, "bad_request"
    if kind == "msgpack_trailing":
        body = msgpack.packb([sample_tx]) + data.draw(st.binary(min_size=1, max_size=20), label="trailing")
        return kind, request(port, "POST", "/v1/txs", body, content_type), 400, "bad_msgpack"
    if kind == "msgpack_shape":
        doc = data.draw(st.one_of(msgpack_values.filter(
            lambda v: not (isinstance(v, list) and v and all(type(i) is bytes for i in v))),
            st.lists(st.text(max_size=4), max_size=3), st.just([sample_tx, "text"])), label="doc")
        return kind, request(port, "POST", "/v1/txs", msgpack.packb(doc, use_bin_type=True), content_type), \
            400, "bad_request"
    if kind == "bad_address":
        how = data.draw(st.sampled_from(["char", "upper", "short", "prefix"]), label="how")
        if how == "char":
            at = data.draw(st.integers(4, len(address) - 1), label="at")
            char = data.draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz234567").filter(lambda c: c != address[at]))
            bad = address[:at] + char + address[at + 1:]
        elif how == "upper":
            bad = address.upper()
        elif how == "short":
            bad = address[:data.draw(st.integers(1, len(address) - 1), label="len")]
        else:
            bad = "btc1" + address[4:]
        return kind, request(port, "GET", f"/v1/accounts/{bad}"), 400, "bad_address"
    if kind == "bad_tx_hash":
        text = data.draw(st.one_of(bad_hex_text.filter(lambda t: t.isascii() and t.isalnum()),
                                   st.binary(max_size=40).filter(lambda b: len(b) not in (0, 32)).map(bytes.hex)))
        return kind, request(port, "GET", f"/v1/txs/{text}"), 400, "bad_hex"
    if kind == "bad_height":
        text = data.draw(st.sampled_from(["0", "00", "-1", "1.5", "abc", "1e3", "9" * 21, "%C2%B2"]), label="height")
        return kind, request(port, "GET", f"/v1/blocks/{text}"), 400, "bad_request"
    if kind == "future_height":
        height = data.draw(st.integers(10**9, 10**19), label="height")
        return kind, request(port, "GET", f"/v1/blocks/{height}"), 404, "block_not_found"
    if kind == "unknown_path":
        path = data.draw(st.sampled_from(["/explorer/admin.php", "/v2/txs", "/v1/tx", "/v1/accounts", "/v1/blocks",
                                          "/admin"]))
        return kind, request(port, "GET", path), 404, "not_found"
    method, path = data.draw(st.sampled_from([("GET", "/v1/txs"), ("PUT", "/v1/txs"), ("DELETE", "/v1/status"),
                                              ("POST", "/v1/status"), ("PATCH", "/healthz")]), label="method")
    return kind, request(port, method, path, b"{}" if method != "GET" else None), 405, "method_not_allowed"


# ---- the tests

def account(port: int, address: str) -> dict:
    answer = request(port, "GET", f"/v1/accounts/{address}")
    assert answer.status == 200, answer
    return answer.doc


def wait_committed(net, hashes: list[str], timeout_s: float = 60.0) -> None:
    client = net.client(0)
    for tx_hash in hashes:
        client.wait_committed(tx_hash, timeout_s)


def test_hostile_input_is_refused_exactly_and_honest_transfers_commit(tmp_path):
    network = make_network(tmp_path / "net", validators=1)
    genesis = network.genesis
    chain_id = genesis.chain_id
    honest = Wallet(network.bank_key_files[0], chain_id)
    attacker, flooder = KeyPair.generate(), KeyPair.generate()
    recipients = [KeyPair.generate().public_key for _ in range(3)]
    sink = KeyPair.generate().public_key
    expected = Counter(dict(genesis.balances))
    honest_hashes: list[str] = []
    refused: dict[str, str] = {}  # hash -> code, for decodable refused transactions
    tally: Counter[str] = Counter()

    def pay(wallet: Wallet, to: bytes, amount: int, twice: bool = False) -> None:
        stx = wallet.transfer(to, amount)
        raws = [stx.raw, stx.raw] if twice else [stx.raw]
        answer = submit_json(port, raws)
        assert answer.status == 200, answer
        assert [r["code"] for r in answer.doc["results"]] == (["accepted", "duplicate"] if twice else ["accepted"])
        expected[wallet.key.public_key] -= amount
        expected[to] += amount
        honest_hashes.append(stx.hash.hex())

    with running(network) as net:
        port = int(net.api_urls[0].rsplit(":", 1)[1])
        try:
            # Fund the attacker (a little) and the flooder; the honest key's nonce-0 transfer is the replay bait.
            first = honest.transfer(attacker.public_key, ATTACKER_FUNDS)
            assert submit_json(port, [first.raw]).doc["results"][0]["code"] == "accepted"
            expected[honest.key.public_key] -= ATTACKER_FUNDS
            expected[attacker.public_key] += ATTACKER_FUNDS
            honest_hashes.append(first.hash.hex())
            pay(honest, flooder.public_key, 10 * FLOOD_LIMIT)
            wait_committed(net, honest_hashes)
            first_status = request(port, "GET", f"/v1/txs/{first.hash.hex()}").doc
            assert first_status["status"] == "committed" and first_status["result"] == "ok", first_status
            forger = Forger(chain_id, attacker, honest.key, first.raw)

            # Flood one account: one request of limit + 1 transfers; the last is too_many_pending.
            raws = [Transaction(TxKind.TRANSFER, flooder.public_key, n, 1, sink).sign(flooder, chain_id).raw
                    for n in range(FLOOD_LIMIT + 1)]
            answer = submit_msgpack(port, raws)
            assert answer.status == 200, answer
            codes = [r["code"] for r in answer.doc["results"]]
            assert codes == ["accepted"] * FLOOD_LIMIT + ["too_many_pending"], Counter(codes)
            refused[hashlib.sha256(raws[-1]).hexdigest()] = "too_many_pending"
            honest_hashes += [hashlib.sha256(r).hexdigest() for r in raws[:-1]]
            expected[flooder.public_key] -= FLOOD_LIMIT
            expected[sink] += FLOOD_LIMIT
            tally["flood"] += len(raws)

            address = attacker.address
            sample_tx = pack(signed_fields(attacker, chain_id, TxKind.TRANSFER, 0, 1, recipients[0]))

            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
            @given(data=st.data())
            def hostile(data):
                tally["examples"] += 1
                if data.draw(st.integers(0, HONEST_EVERY - 1), label="honest turn") == 0:
                    pay(honest, recipients[data.draw(st.integers(0, len(recipients) - 1), label="recipient")],
                        data.draw(st.integers(1, 1000), label="honest amount"),
                        twice=data.draw(st.booleans(), label="twice"))
                if data.draw(st.booleans(), label="per-transaction"):
                    count = data.draw(st.integers(1, 4), label="transactions in the request")
                    probes = [forger.draw(data) for _ in range(count)]
                    encoding = data.draw(st.sampled_from(["json", "msgpack"]), label="encoding")
                    raws = [p.raw for p in probes]
                    answer = submit_json(port, raws) if encoding == "json" else submit_msgpack(port, raws)
                    assert answer.status == 200, answer
                    results = answer.doc["results"]
                    assert [r["code"] for r in results] == [p.code for p in probes], (probes, results)
                    for probe, result in zip(probes, results):
                        tally[probe.label] += 1
                        assert result["accepted"] is False and result["message"]
                        tx_hash = hashlib.sha256(probe.raw).hexdigest()
                        assert result.get("hash") == (tx_hash if probe.decodes else None), result
                        if probe.decodes and not probe.replay:
                            refused[tx_hash] = probe.code
                else:
                    label, answer, status, code = draw_request_probe(data, port, sample_tx, address)
                    tally[label] += 1
                    expect_error(answer, status, code)

            hostile()

            # Everything honest commits; nothing refused ever does.
            wait_committed(net, honest_hashes)
            for tx_hash, code in refused.items():
                status = request(port, "GET", f"/v1/txs/{tx_hash}").doc
                assert status["status"] == "unknown", (code, status)
            # Replays left the original where it was.
            assert request(port, "GET", f"/v1/txs/{first.hash.hex()}").doc == first_status
            expected[forger.victim] += 0
            for public_key, balance in expected.items():
                doc = account(port, encode_address(public_key))
                assert doc["balance"] == balance, (doc, balance)
            assert account(port, attacker.address)["nonce"] == 0
            assert net.client(0).status()["supply"] == sum(dict(genesis.balances).values())
            assert request(port, "GET", "/healthz").status == 200
        except BaseException:
            print(f"---- validator1 log tail ----\n{node_log(net, 0)}")
            raise
        finally:
            inputs = sum(v for k, v in tally.items() if k != "examples")
            print(f"hostile-api: inputs={inputs} examples={tally['examples']} honest_committed={len(honest_hashes)} "
                  f"refused_unknown={len(refused)} by_kind={dict(sorted(tally.items()))}")



def test_a_flood_fills_the_account_then_the_pool_then_gets_503_with_retry_after(tmp_path):
    """Validator 1 of 2 runs alone: no quorum, no commits, so the pool only fills and the answers are exact."""
    pool = FLOOD_LIMIT + 100  # what clients may fill: with another validator, half of mempool.max_txs
    network = make_network(tmp_path / "net", validators=2)
    path = network.config_files[0]
    config = load_config(path)
    path.write_text(render_config(dataclasses.replace(
        config, mempool=dataclasses.replace(config.mempool, max_txs=2 * pool)), path.parent))
    chain_id = network.genesis.chain_id
    bank, issuer = read_key_file(network.bank_key_files[0]), read_key_file(network.issuer_key_file)
    holder = KeyPair.generate().public_key

    def txs(key, kind, first, count):
        return [Transaction(kind, key.public_key, n, 1, holder).sign(key, chain_id).raw
                for n in range(first, first + count)]

    with running(network, start=False) as net:
        net.start(0)
        net.wait_ready(indices=[0])
        port = int(net.api_urls[0].rsplit(":", 1)[1])
        try:
            # One account: the per-account limit refuses first, exactly at the limit.
            answer = submit_msgpack(port, txs(bank, TxKind.TRANSFER, 0, FLOOD_LIMIT + 1))
            assert answer.status == 200, answer
            codes = [r["code"] for r in answer.doc["results"]]
            assert codes == ["accepted"] * FLOOD_LIMIT + ["too_many_pending"], Counter(codes)
            # Another account (the issuer, whose issues spend nothing) fills the pool to its limit.
            answer = submit_msgpack(port, txs(issuer, TxKind.ISSUE, 0, pool - FLOOD_LIMIT + 1))
            codes = [r["code"] for r in answer.doc["results"]]
            assert codes == ["accepted"] * (pool - FLOOD_LIMIT) + ["mempool_full"], Counter(codes)
            # A request refused only for lack of space: 503 with Retry-After, in JSON and in msgpack.
            # (One transaction each: behind a refused nonce the next would be a nonce_gap.)
            for answer in (submit_json(port, txs(issuer, TxKind.ISSUE, pool - FLOOD_LIMIT, 1)),
                           submit_msgpack(port, txs(issuer, TxKind.ISSUE, pool - FLOOD_LIMIT, 1))):
                expect_error(answer, 503, "mempool_full")
                assert int(answer.headers["retry-after"]) >= 1
            # Mixed with a refusal of another kind the request is answered per transaction.
            # (A full pool spends no signature checks on what it cannot admit, so the other
            # refusal here is one decided before any: bytes that are not a transaction.)
            answer = submit_json(port, txs(issuer, TxKind.ISSUE, pool - FLOOD_LIMIT, 1) + [b"\x00"])
            assert answer.status == 200, answer
            assert [r["code"] for r in answer.doc["results"]] == ["mempool_full", "malformed"]
            status = net.client(0).status()
            assert status["mempool_size"] == pool and status["height"] == 0, status
            assert request(port, "GET", "/healthz").status == 200
        except BaseException:
            print(f"---- validator1 log tail ----\n{node_log(net, 0)}")
            raise


@pytest.mark.parametrize("body", [
    '{"tx": "00"}'.encode("utf-16"),
    b'{"tx": "\xed\xa0\x80"}',
], ids=["utf16", "utf8_surrogate"])
def test_a_body_that_is_not_utf8_is_bad_json(tmp_path, body):
    network = make_network(tmp_path / "net", validators=1)
    with running(network) as net:
        port = int(net.api_urls[0].rsplit(":", 1)[1])
        expect_error(request(port, "POST", "/v1/txs", body), 400, "bad_json")


def test_refused_transactions_stay_out_of_every_node_of_four(tmp_path):
    """Forged transactions sent to each of four validators while banks pay through their own nodes:
    no node admits (so none gossips) a forgery, all agree on balances and the app hash."""
    network = make_network(tmp_path / "net", validators=4)
    genesis = network.genesis
    banks = [Wallet(path, genesis.chain_id) for path in network.bank_key_files]
    attacker = KeyPair.generate()
    expected = Counter(dict(genesis.balances))
    honest_hashes: list[str] = []
    refused: set[str] = set()
    tally: Counter[str] = Counter()

    with running(network) as net:
        ports = [int(url.rsplit(":", 1)[1]) for url in net.api_urls]

        def pay(index: int, to: bytes, amount: int) -> None:
            wallet = banks[index]
            stx = wallet.transfer(to, amount)
            answer = submit_json(ports[index], [stx.raw])
            assert answer.status == 200 and answer.doc["results"][0]["code"] == "accepted", answer
            expected[wallet.key.public_key] -= amount
            expected[to] += amount
            honest_hashes.append(stx.hash.hex())

        try:
            pay(0, attacker.public_key, ATTACKER_FUNDS)
            # On every node: one still catching up would hold the funding transfer in its
            # pool and rightly answer its replay with "duplicate", not "stale_nonce".
            for i in range(len(ports)):
                for tx_hash in honest_hashes:
                    net.client(i).wait_committed(tx_hash, 60.0)
            first = Transaction(TxKind.TRANSFER, banks[0].key.public_key, 0, ATTACKER_FUNDS,
                                attacker.public_key).sign(banks[0].key, genesis.chain_id)
            forger = Forger(genesis.chain_id, attacker, banks[0].key, first.raw)

            @settings(max_examples=EXAMPLES // 6, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
            @given(data=st.data())
            def hostile(data):
                target = data.draw(st.integers(0, len(ports) - 1), label="node")
                if data.draw(st.integers(0, 3), label="honest turn") == 0:
                    payer = target % len(banks)  # each bank pays through one node, so its nonces stay in order
                    pay(payer, data.draw(st.sampled_from([w.key.public_key for w in banks if w is not banks[payer]]
                                                        + [forger.victim]), label="payee"),
                        data.draw(st.integers(1, 1000), label="amount"))
                probe = forger.draw(data)
                answer = submit_msgpack(ports[target], [probe.raw])
                assert answer.status == 200, answer
                assert answer.doc["results"][0]["code"] == probe.code, (probe, answer.doc)
                tally[probe.label] += 1
                if probe.decodes and not probe.replay:
                    refused.add(hashlib.sha256(probe.raw).hexdigest())

            hostile()

            wait_committed(net, honest_hashes)
            top = min(net.status(i)["height"] for i in range(len(ports)))
            net.wait_height(top)
            assert len({net.client(i).block(top)["app_hash"] for i in range(len(ports))}) == 1
            for port in ports:
                for tx_hash in refused:
                    assert request(port, "GET", f"/v1/txs/{tx_hash}").doc["status"] == "unknown", tx_hash
                for public_key, balance in expected.items():
                    assert account(port, encode_address(public_key))["balance"] == balance
                assert account(port, attacker.address)["nonce"] == 0
        except BaseException:
            for i in range(len(ports)):
                print(f"---- validator{i + 1} log tail ----\n{node_log(net, i)}")
            raise
        finally:
            print(f"hostile-api-4: inputs={sum(tally.values())} honest_committed={len(honest_hashes)} "
                  f"refused_unknown_on_4_nodes={len(refused)}")
