"""A light client over a node's HTTP API: it follows the headers from the genesis and proves state and
transactions against them (docs/protocol.md §17).

What it trusts is the genesis file alone: the chain id, the genesis hash and the
validator set of height 1.  From there, one height at a time, it takes a block's
exact header bytes and commit certificate, checks that the header is the next
one of this chain and that more than two thirds of that height's power
precommitted its hash, and takes the next height's set from the header's
``next_validators_hash`` (fetching the set only when the hash changes, and
accepting it only if it hashes to the header's value).  Everything else the
node serves (account and order records, transactions and their results) is
then believed only through a proof that leads to one of these headers.

The node is asked over one keep-alive HTTP connection, in order, so a chain of
a few hundred heights is followed in seconds; nothing here prints, the
``somnode verify`` command does.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from consensus.certificate import CertificateError, CommitCertificate, verify_certificate
from consensus.messages import MessageType, Vote
from consensus.validators import Validator, ValidatorSet
from node.core.actions import ActionKind, Scope
from node.core.address import AddressError, decode_address, encode_address
from node.core.block import BlockDecodeError, Header, decode_header
from node.core.genesis import Genesis
from node.core.validator_set import validators_hash
from node.lightclient.documents import Ed25519
from node.lightclient.stateproof import (
    FROZEN_INCOMING,
    FROZEN_OUTGOING,
    ProvenAccount,
    ProvenOrder,
    ProvenRecord,
    StateProofError,
    account_key,
    decode_account,
    decode_order,
    order_key,
    verify_state_document,
)
from node.lightclient.txproof import ProvenTx, TxProofError, verify_tx_proof

DEFAULT_TIMEOUT_S = 10.0
# The largest document the client reads: a block document of the largest certificate is far smaller.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
HASH_SIZE = 32

Powers = tuple[tuple[bytes, int], ...]


class VerificationFailed(Exception):
    """The node served something its proofs or headers do not bear out; the message names the check."""


class NodeUnavailable(Exception):
    """The node could not be asked, or answered with an HTTP error or with something that is not JSON."""


class DocumentSource(Protocol):
    """Where the client's documents come from: a node's API (``NodeApi``), or anything answering the same paths."""

    def get(self, path: str) -> Any:
        """The JSON document at ``path`` (``/v1/...``); raise NodeUnavailable when there is none."""


class NodeApi:
    """GET requests for JSON documents over one persistent connection (reopened once if the node closed it)."""

    def __init__(self, base_url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if "://" not in base_url:
            base_url = "http://" + base_url
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"a node address is http://HOST:PORT or https://HOST:PORT, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._prefix = parts.path.rstrip("/")
        self._host, self._port, self._https = parts.hostname, parts.port, parts.scheme == "https"
        self._timeout_s = timeout_s
        self._connection: http.client.HTTPConnection | None = None

    def get(self, path: str) -> Any:
        for attempt in (0, 1):
            connection = self._connect()
            try:
                connection.request("GET", self._prefix + path, headers={"Accept": "application/json"})
                response = connection.getresponse()
                body = response.read(MAX_RESPONSE_BYTES + 1)
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                if attempt:  # a fresh connection failed too: the node, not an idle timeout
                    raise NodeUnavailable(f"GET {self.base_url}{path}: {exc}") from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise NodeUnavailable(f"GET {self.base_url}{path}: cannot reach the node: {exc}") from None
        if len(body) > MAX_RESPONSE_BYTES:
            self.close()
            raise NodeUnavailable(f"GET {self.base_url}{path}: the answer is larger than {MAX_RESPONSE_BYTES} bytes")
        try:
            document = json.loads(body)
        except ValueError:
            raise NodeUnavailable(f"GET {self.base_url}{path}: HTTP {response.status}, not a JSON answer") from None
        if response.status != 200:
            error = document.get("error") if isinstance(document, dict) else None
            said = f"{error.get('code')}: {error.get('message')}" if isinstance(error, dict) else "no error document"
            raise NodeUnavailable(f"GET {self.base_url}{path}: HTTP {response.status} ({said})")
        return document

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> NodeApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._connection = kind(self._host, self._port, timeout=self._timeout_s)
        return self._connection


@dataclass(frozen=True, slots=True)
class SetChange:
    """The validator set the client took at ``height`` from header ``height − 1``'s next_validators_hash."""

    height: int
    before: Powers
    after: Powers
    hash: bytes


@dataclass(frozen=True, slots=True)
class AccountState:
    """An account proven at ``height`` (None: proven absent)."""

    address: str
    height: int
    account: ProvenAccount | None


@dataclass(frozen=True, slots=True)
class OrderState:
    """An account's proven legal orders at ``height``; ``later`` are listed orders after ``height``, which the
    state of ``height`` cannot hold yet."""

    address: str
    height: int
    orders: tuple[ProvenOrder, ...]
    later: tuple[tuple[int, int], ...]


class LightClient:
    """Headers followed from the genesis, growing as the client asks about later heights."""

    def __init__(self, api: DocumentSource, genesis: Genesis) -> None:
        self.api = api
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.genesis_hash = genesis.hash()
        first: Powers = tuple(sorted((v.public_key, v.power) for v in genesis.validators))
        self.headers: dict[int, Header] = {}
        self.hashes: dict[int, bytes] = {0: self.genesis_hash}
        self.changes: list[SetChange] = []
        self._sets: list[tuple[int, Powers, ValidatorSet]] = [(1, first, _validator_set(first))]

    @property
    def height(self) -> int:
        """The last height whose header this client verified (0: none yet)."""
        return len(self.headers)

    def check_genesis(self) -> None:
        """The node serves this chain: its genesis hash is the file's."""
        served = _field(self.api.get("/v1/genesis"), "hash", str, "GET /v1/genesis")
        if served != self.genesis_hash.hex():
            raise VerificationFailed(f"genesis: the node's genesis hash {served} is not {self.genesis_hash.hex()}, "
                                     f"the hash of the genesis file (another chain)")

    def latest_height(self) -> int:
        return _field(self.api.get("/v1/status"), "height", int, "GET /v1/status")

    def validators_at(self, height: int) -> ValidatorSet:
        assert 1 <= height <= self.height + 1, "a set is known up to one height past the last verified header"
        return [validators for start, _, validators in self._sets if start <= height][-1]

    def follow_to(self, target: int) -> None:
        """Verify every header up to ``target`` (docs/protocol.md §17.2); raise VerificationFailed at the first
        that fails a check."""
        for height in range(self.height + 1, target + 1):
            self._follow(height, self.api.get(f"/v1/blocks/{height}"))

    def _follow(self, height: int, document: object) -> None:
        where = f"block {height}"
        raw = _hex_field(document, "header", where)
        # 1. The header decodes and is the next one of this chain.
        try:
            header = decode_header(raw)
        except BlockDecodeError as exc:
            raise VerificationFailed(f"{where}: header: does not decode: {exc}") from None
        if header.chain_id != self.chain_id:
            raise VerificationFailed(f"{where}: header: chain {header.chain_id!r}, not {self.chain_id!r}")
        if header.height != height:
            raise VerificationFailed(f"{where}: header: height {header.height}, expected {height}")
        if header.previous_block_hash != self.hashes[height - 1]:
            parent = "the genesis hash" if height == 1 else f"the hash of the verified header {height - 1}"
            raise VerificationFailed(f"{where}: header: previous_block_hash is not {parent}")
        if height > 1 and header.time_ms < self.headers[height - 1].time_ms:
            raise VerificationFailed(f"{where}: header: time_ms is before its parent's")
        # 2. More than two thirds of this height's power precommitted the header's hash.
        block_hash = hashlib.sha256(raw).digest()
        certificate = _certificate(document, height, where)
        try:
            verify_certificate(certificate, self.validators_at(height), self.chain_id, Ed25519(), height=height,
                               value_id=block_hash)
        except CertificateError as exc:
            raise VerificationFailed(f"{where}: certificate: {exc}") from None
        # 3. The header names the next height's set; a new hash means a set the node must show us.
        current = [powers for start, powers, _ in self._sets if start <= height][-1]
        if header.next_validators_hash != validators_hash(current):
            powers = self._served_set(height + 1)
            try:
                served_hash = validators_hash(powers)
            except (OverflowError, ValueError):  # a power msgpack cannot hold: not the set any header names
                served_hash = b""
            if served_hash != header.next_validators_hash:
                raise VerificationFailed(f"block {height + 1}: validator set: the set served by GET /v1/validators "
                                         f"does not hash to next_validators_hash of the verified header {height}")
            self._sets.append((height + 1, powers, _validator_set(powers)))
            self.changes.append(SetChange(height + 1, current, powers, header.next_validators_hash))
        self.headers[height] = header
        self.hashes[height] = block_hash

    def _served_set(self, height: int) -> Powers:
        where = f"GET /v1/validators?height={height}"
        entries = _field(self.api.get(f"/v1/validators?height={height}"), "validators", list, where)
        powers = []
        for entry in entries:
            address = _field(entry, "address", str, where)
            try:
                powers.append((decode_address(address), _field(entry, "power", int, where)))
            except AddressError as exc:
                raise VerificationFailed(f"{where}: {exc}") from None
        return tuple(sorted(powers))

    # ---- state

    def prove_account(self, address: str, height: int) -> AccountState:
        """The account record of ``address`` after block ``height``, or its absence, proven (§16.3)."""
        public_key = decode_address(address)
        where = f"account {address}"
        document = self.api.get(f"/v1/accounts/{address}/proof?height={height}")
        record = self._record(document, account_key(public_key), height, where)
        try:
            account = None if record.value is None else decode_account(record.value)
        except StateProofError as exc:
            raise VerificationFailed(f"{where}: {exc}") from None
        served = _mapping(document, where).get("account")
        fields = ("balance", "nonce", "tier", "flags", "day", "spent")
        if account is None and served is not None or account is not None and not (
                isinstance(served, Mapping)
                and tuple(served.get(name) for name in fields) == tuple(getattr(account, name) for name in fields)):
            raise VerificationFailed(f"{where}: account: the fields served beside the proof are not the proven "
                                     f"record's")
        return AccountState(address, height, account)

    def prove_orders(self, address: str, height: int, account: ProvenAccount | None) -> OrderState:
        """Each legal order the node lists for ``address`` (up to ``height``), proven record by record, and
        checked to account for the proven freeze flags."""
        public_key = decode_address(address)
        where = f"orders of {address}"
        listed = _field(self.api.get(f"/v1/accounts/{address}/orders"), "orders", list, where)
        proven: list[ProvenOrder] = []
        later: list[tuple[int, int]] = []
        for entry in listed:
            at, index = _field(entry, "height", int, where), _field(entry, "index", int, where)
            if not (0 <= at < 1 << 64 and 0 <= index < 1 << 32):
                raise VerificationFailed(f"{where}: an order at height {at} index {index}: no such key can exist")
            if at > height:
                later.append((at, index))
                continue
            what = f"order of {address} at height {at} index {index}"
            key = order_key(public_key, at, index)
            record = self._record(self.api.get(f"/v1/state/proof?key={key.hex()}&height={height}"), key, height,
                                  what)
            if record.value is None:
                raise VerificationFailed(f"{what}: value: the node lists the order but the state of height "
                                         f"{height} proves it absent")
            try:
                order = decode_order(key, record.value)
            except StateProofError as exc:
                raise VerificationFailed(f"{what}: {exc}") from None
            _same_order(entry, order, what)
            proven.append(order)
        if len({(order.height, order.index) for order in proven}) != len(proven):
            raise VerificationFailed(f"{where}: the node lists an order twice")
        proven.sort(key=lambda order: (order.height, order.index))  # the order the chain applied them in
        flags = 0
        for order in proven:
            if order.kind == ActionKind.FREEZE:
                flags |= order.detail
            elif order.kind == ActionKind.UNFREEZE:
                flags &= ~order.detail
        held = 0 if account is None else account.flags & (FROZEN_OUTGOING | FROZEN_INCOMING)
        if flags != held:
            raise VerificationFailed(f"{where}: the listed orders leave freeze flags {flags}, but the proven account "
                                     f"has {held}: the node's list is incomplete or wrong")
        return OrderState(address, height, tuple(proven), tuple(later))

    def _record(self, document: object, key: bytes, height: int, where: str) -> ProvenRecord:
        mapping = _mapping(document, where)
        if mapping.get("height") != height:
            raise VerificationFailed(f"{where}: height: the document is for height {mapping.get('height')!r}, "
                                     f"not the {height} asked for")
        try:
            return verify_state_document(mapping, key, self.headers)
        except StateProofError as exc:
            raise VerificationFailed(f"{where}: state proof: {exc}") from None

    # ---- transactions

    def prove_tx(self, tx_hash: bytes) -> ProvenTx:
        """A committed transaction and its result, proven by the headers of its block and the next (§12.6),
        which must be the headers this client followed."""
        where = f"tx {tx_hash.hex()}"
        document = _mapping(self.api.get(f"/v1/txs/{tx_hash.hex()}/proof"), where)
        height = document.get("height")
        if type(height) is not int or height < 1:
            raise VerificationFailed(f"{where}: height: must be a positive integer")
        self.follow_to(height + 1)
        try:
            proven = verify_tx_proof(document, self.chain_id, self.validators_at(height),
                                     self.validators_at(height + 1))
        except TxProofError as exc:
            raise VerificationFailed(f"{where}: transaction proof: {exc}") from None
        if proven.tx_hash != tx_hash:
            raise VerificationFailed(f"{where}: tx: the proof is of transaction {proven.tx_hash.hex()}")
        for field, at in (("header", height), ("results_header", height + 1)):
            if hashlib.sha256(_hex_field(document, field, where)).digest() != self.hashes[at]:
                raise VerificationFailed(f"{where}: {field}: not the header {at} this client verified")
        return proven


def _same_order(entry: object, order: ProvenOrder, where: str) -> None:
    """The node's listing of an order says what its proven record says."""
    names: dict[int, str] = {ActionKind.FREEZE: "freeze", ActionKind.UNFREEZE: "unfreeze", ActionKind.SEIZE: "seize"}
    scopes: dict[int, str] = {Scope.OUTGOING: "outgoing", Scope.INCOMING: "incoming", Scope.BOTH: "both"}
    expected: dict[str, object] = {"order": names.get(order.kind)}
    if order.kind == ActionKind.SEIZE:
        expected.update(amount=order.detail, destination=_address_or_hex(order.destination))
    else:
        expected["scope"] = scopes.get(order.detail)
    expected["reference"] = {"authority": order.authority, "number": order.number, "date": order.date,
                             "document_sha256": order.document_sha256.hex()}
    served = _mapping(entry, where)
    for name, value in expected.items():
        if served.get(name) != value:
            raise VerificationFailed(f"{where}: {name}: the node lists {served.get(name)!r}, the proven record "
                                     f"says {value!r}")


def _address_or_hex(key: bytes) -> str:
    return encode_address(key) if len(key) == 32 else key.hex()


def _validator_set(powers: Powers) -> ValidatorSet:
    return ValidatorSet([Validator(key, power) for key, power in powers])


def _certificate(document: object, height: int, where: str) -> CommitCertificate:
    """The block document's ``commit`` as the certificate of ``height`` it stands for."""
    commit = _mapping(_mapping(document, where).get("commit"), f"{where}: commit")
    round_ = _field(commit, "round", int, f"{where}: commit")
    value_id = _hex_field(commit, "value_id", f"{where}: commit")
    precommits = _field(commit, "precommits", list, f"{where}: commit")
    votes = []
    for precommit in precommits:
        try:
            validator = decode_address(_field(precommit, "validator", str, f"{where}: commit"))
        except AddressError as exc:
            raise VerificationFailed(f"{where}: certificate: {exc}") from None
        signature = _hex_field(precommit, "signature", f"{where}: commit")
        votes.append(Vote(MessageType.PRECOMMIT, height, round_, value_id, validator, signature))
    return CommitCertificate(height, round_, value_id, tuple(votes))


def _mapping(document: object, where: str) -> Mapping[str, Any]:
    if not isinstance(document, Mapping):
        raise VerificationFailed(f"{where}: the document is not a JSON object")
    return document


def _field(document: object, name: str, kind: type, where: str) -> Any:
    value = _mapping(document, where).get(name)
    if type(value) is not kind:
        raise VerificationFailed(f"{where}: {name}: missing or not a {kind.__name__}")
    return value


def _hex_field(document: object, name: str, where: str) -> bytes:
    try:
        return bytes.fromhex(_field(document, name, str, where))
    except ValueError:
        raise VerificationFailed(f"{where}: {name}: not hex") from None
