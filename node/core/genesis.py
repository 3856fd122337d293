"""The genesis of a somnode chain: who issues, who banks, who validates, who governs.

Every validator must start from byte-identical genesis state, so the genesis
has a hash over a canonical encoding (specified in docs/protocol.md):

    SHA-256( b"somnode-genesis-v1\\x00" || msgpack([
        2, chain_id, genesis_time, issuer,
        [[bank name, bank key], ...],
        [[validator name, key, power, p2p_address, api_address], ...],
        [[key, tyiyn], ...],
        [board threshold, [[member name, member key], ...]],
        [[tier id, name, max_balance, max_payment, max_daily_out], ...],
        [[key, tier], ...],
        [[observer name, observer key], ...],     only when there are observers
    ]) )

The validators' addresses are where the first network meets; validators
added later by governance are reached through the operators' configs.
Observers (nodes that follow the chain and serve the API without voting)
are optional: a genesis without any encodes exactly as before, so the
chains made before observers existed keep their hash.

The JSON file is what operators read and exchange: keys appear as ``som1…``
addresses (checksummed, so a pasted address with a typo is caught) and money as
integer tyiyn.  Loading refuses anything doubtful and names the field, because
a validator that starts from a subtly different genesis forks itself off the
network at its first block.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgpack

from node.core.address import AddressError, decode_address, encode_address
from node.core.amount import MAX_TYIYN
from node.core.fields import describe, parse_endpoint
from node.core.tiers import INSTITUTIONAL, UNREGISTERED_TIER, Tier

GENESIS_VERSION = 3
GENESIS_DOMAIN = b"somnode-genesis-v1\x00"
PUBLIC_KEY_SIZE = 32
# Voting powers are summed and compared as 2/3 fractions; keeping the total
# below 2^62 leaves room for 3 * total without leaving the signed 64-bit range.
MAX_TOTAL_POWER = 2**62
MAX_VALIDATORS = 1000
MAX_BANKS = 10_000
MAX_BALANCES = 1_000_000
MAX_NAME_CHARS = 100
MAX_BOARD_MEMBERS = 32
# Registered observers at most, in the genesis and by governance: each may hold a link to every validator.
MAX_OBSERVERS = 64
_CHAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_GENESIS_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


class GenesisError(ValueError):
    """The genesis is invalid; the message starts with the offending field."""


@dataclass(frozen=True, slots=True)
class Bank:
    name: str
    public_key: bytes


@dataclass(frozen=True, slots=True)
class BoardMember:
    name: str
    public_key: bytes


@dataclass(frozen=True, slots=True)
class GenesisBoard:
    """The governance board: any ``threshold`` of the members approve an action together."""

    threshold: int
    members: tuple[BoardMember, ...]


@dataclass(frozen=True, slots=True)
class GenesisObserver:
    """A node that may link to validators to follow the chain, and never votes."""

    name: str
    public_key: bytes


@dataclass(frozen=True, slots=True)
class GenesisValidator:
    name: str
    public_key: bytes
    power: int
    p2p_address: str
    api_address: str


@dataclass(frozen=True, slots=True)
class Genesis:
    """The validated genesis; constructing one checks every invariant."""

    chain_id: str
    genesis_time: str
    issuer: bytes
    banks: tuple[Bank, ...]
    validators: tuple[GenesisValidator, ...]
    balances: tuple[tuple[bytes, int], ...]
    board: GenesisBoard
    tiers: tuple[Tier, ...]  # tier 0 among them: where every unregistered account is
    wallets: tuple[tuple[bytes, int], ...] = ()  # (key, tier) of accounts in another tier from the start, by key
    observers: tuple[GenesisObserver, ...] = ()

    def __post_init__(self) -> None:
        _check(self)

    def hash(self) -> bytes:
        """SHA-256 of the domain tag and the canonical msgpack encoding."""
        body = [
            GENESIS_VERSION,
            self.chain_id,
            self.genesis_time,
            self.issuer,
            [[bank.name, bank.public_key] for bank in self.banks],
            [[v.name, v.public_key, v.power, v.p2p_address, v.api_address] for v in self.validators],
            [[key, amount] for key, amount in self.balances],
            [self.board.threshold, [[m.name, m.public_key] for m in self.board.members]],
            [[t.id, t.name, t.max_balance, t.max_payment, t.max_daily_out] for t in self.tiers],
            [[key, tier] for key, tier in self.wallets],
        ]
        if self.observers:  # absent, not empty, without observers: older genesis files keep their hash
            body.append([[o.name, o.public_key] for o in self.observers])
        return hashlib.sha256(GENESIS_DOMAIN + msgpack.packb(body, use_bin_type=True)).digest()

    @property
    def total_power(self) -> int:
        return sum(v.power for v in self.validators)

    @property
    def genesis_time_ms(self) -> int:
        """The genesis time as Unix milliseconds, the unit of block timestamps."""
        moment = datetime.strptime(self.genesis_time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        return int(moment.timestamp()) * 1000

    def to_json(self) -> str:
        document = {
            "chain_id": self.chain_id,
            "genesis_time": self.genesis_time,
            "issuer": encode_address(self.issuer),
            "banks": [{"name": b.name, "address": encode_address(b.public_key)} for b in self.banks],
            "validators": [
                {
                    "name": v.name,
                    "address": encode_address(v.public_key),
                    "power": v.power,
                    "p2p_address": v.p2p_address,
                    "api_address": v.api_address,
                }
                for v in self.validators
            ],
            "balances": [{"address": encode_address(key), "tyiyn": amount} for key, amount in self.balances],
            "board": {
                "threshold": self.board.threshold,
                "members": [{"name": m.name, "address": encode_address(m.public_key)} for m in self.board.members],
            },
            "tiers": [{"id": t.id, "name": t.name, "max_balance": t.max_balance, "max_payment": t.max_payment,
                       "max_daily_out": t.max_daily_out} for t in self.tiers],
            "wallets": [{"address": encode_address(key), "tier": tier} for key, tier in self.wallets],
        }
        if self.observers:
            document["observers"] = [{"name": o.name, "address": encode_address(o.public_key)}
                                     for o in self.observers]
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Genesis:
        """Parse genesis JSON; balances may appear in any order and are sorted by key."""
        try:
            document = json.loads(text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
        except (json.JSONDecodeError, _RefusedJson) as exc:
            raise GenesisError(f"genesis is not valid JSON: {exc}") from None
        fields = _Fields(document, "", ("chain_id", "genesis_time", "issuer", "banks", "validators", "balances",
                                        "board", "tiers", "wallets"), optional=("observers",))
        tiers = tuple(_tier(item) for item in fields.items(
            "tiers", ("id", "name", "max_balance", "max_payment", "max_daily_out")))
        wallets = [(item.address("address"), item.integer("tier")) for item in fields.items("wallets",
                                                                                            ("address", "tier"))]
        board = fields.object("board", ("threshold", "members"))
        members = tuple(BoardMember(item.text("name"), item.address("address"))
                        for item in board.items("members", ("name", "address")))
        banks = tuple(
            Bank(item.text("name"), item.address("address"))
            for item in fields.items("banks", ("name", "address"))
        )
        validators = tuple(
            GenesisValidator(
                item.text("name"), item.address("address"), item.integer("power"),
                item.text("p2p_address"), item.text("api_address"),
            )
            for item in fields.items("validators", ("name", "address", "power", "p2p_address", "api_address"))
        )
        balances = [
            (item.address("address"), item.integer("tyiyn"))
            for item in fields.items("balances", ("address", "tyiyn"))
        ]
        observers = tuple(GenesisObserver(item.text("name"), item.address("address"))
                          for item in fields.items("observers", ("name", "address"), optional=True))
        first_index: dict[bytes, int] = {}
        for index, (key, _) in enumerate(balances):
            if key in first_index:
                raise GenesisError(
                    f"balances[{index}].address: duplicate account {encode_address(key)} "
                    f"(also balances[{first_index[key]}])"
                )
            first_index[key] = index
        return cls(
            chain_id=fields.text("chain_id"),
            genesis_time=fields.text("genesis_time"),
            issuer=fields.address("issuer"),
            banks=banks,
            validators=validators,
            balances=tuple(sorted(balances)),
            board=GenesisBoard(board.integer("threshold"), members),
            tiers=tiers,
            wallets=tuple(sorted(wallets)),
            observers=observers,
        )


def _tier(item: _Fields) -> Tier:
    fields = (item.integer("id"), item.text("name"), item.integer("max_balance"), item.integer("max_payment"),
              item.integer("max_daily_out"))
    try:
        return Tier(*fields)
    except ValueError as exc:
        raise GenesisError(f"{item.where}: {exc}") from None


def load_genesis(path: str | os.PathLike[str]) -> Genesis:
    """Read and validate a genesis file; raise GenesisError naming the field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GenesisError(f"genesis file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GenesisError(f"genesis file {path} is unreadable: {exc}") from None
    return Genesis.from_json(text)


def current_genesis_time() -> str:
    """Now, in the genesis time format (UTC, whole seconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _RefusedJson(ValueError):
    pass


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # Python's json keeps the last of two equal keys; a genesis where a field
    # appears twice is ambiguous, so it is refused instead.
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _RefusedJson(f"{key!r} appears twice in one object")
        result[key] = value
    return result


def _reject_constant(name: str) -> object:
    raise _RefusedJson(f"{name} is not a JSON number")


class _Fields:
    """A JSON object being read, remembering its path for error messages."""

    def __init__(self, document: object, path: str, names: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
        if not isinstance(document, dict):
            raise GenesisError(f"{path or 'genesis'}: expected an object, got {describe(document)}")
        unknown = sorted(set(document) - set(names) - set(optional))
        if unknown:
            raise GenesisError(f"{self._join(path, unknown[0])}: unknown field")
        missing = [name for name in names if name not in document]
        if missing:
            raise GenesisError(f"{self._join(path, missing[0])}: missing required field")
        self._document = document
        self._path = path

    @property
    def where(self) -> str:
        return self._path

    @staticmethod
    def _join(path: str, name: str) -> str:
        return f"{path}.{name}" if path else name

    def _get(self, name: str) -> tuple[str, object]:
        return self._join(self._path, name), self._document[name]

    def text(self, name: str) -> str:
        where, value = self._get(name)
        if not isinstance(value, str):
            raise GenesisError(f"{where}: expected a string, got {describe(value)}")
        return value

    def integer(self, name: str) -> int:
        where, value = self._get(name)
        if type(value) is not int:
            raise GenesisError(f"{where}: expected an integer, got {describe(value)}")
        return value

    def address(self, name: str) -> bytes:
        where, value = self._get(name)
        if not isinstance(value, str):
            raise GenesisError(f"{where}: expected a som1… address, got {describe(value)}")
        try:
            return decode_address(value)
        except AddressError as exc:
            raise GenesisError(f"{where}: {exc}") from None

    def object(self, name: str, names: tuple[str, ...]) -> _Fields:
        where, value = self._get(name)
        return _Fields(value, where, names)

    def items(self, name: str, names: tuple[str, ...], optional: bool = False) -> list[_Fields]:
        """The objects of the array ``name``; an optional field that is absent reads as no objects."""
        if optional and name not in self._document:
            return []
        where, value = self._get(name)
        if not isinstance(value, list):
            raise GenesisError(f"{where}: expected an array, got {describe(value)}")
        return [_Fields(item, f"{where}[{index}]", names) for index, item in enumerate(value)]


def _check(genesis: Genesis) -> None:
    if type(genesis.chain_id) is not str or not _CHAIN_ID.fullmatch(genesis.chain_id):
        raise GenesisError(
            f"chain_id: expected 1..64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit, "
            f"got {genesis.chain_id!r}"
        )
    _check_time(genesis.genesis_time)
    _check_key("issuer", genesis.issuer)
    _check_banks(genesis)
    _check_validators(genesis.validators)
    _check_balances(genesis.balances)
    _check_board(genesis.board)
    _check_tiers(genesis)
    _check_observers(genesis)


def _check_time(value: object) -> None:
    problem = f"genesis_time: expected UTC time as YYYY-MM-DDTHH:MM:SSZ, got {value!r}"
    if type(value) is not str or not _GENESIS_TIME.fullmatch(value):
        raise GenesisError(problem)
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise GenesisError(problem) from None


def _check_key(where: str, key: object) -> None:
    if type(key) is not bytes or len(key) != PUBLIC_KEY_SIZE:
        raise GenesisError(f"{where}: expected a 32-byte public key")


def _check_name(where: str, name: object) -> None:
    if type(name) is not str or not name.strip() or not name.isprintable() or len(name) > MAX_NAME_CHARS:
        raise GenesisError(f"{where}: expected a printable name of 1..{MAX_NAME_CHARS} characters, got {name!r}")


def _check_banks(genesis: Genesis) -> None:
    if type(genesis.banks) is not tuple or len(genesis.banks) > MAX_BANKS:
        raise GenesisError(f"banks: expected a tuple of at most {MAX_BANKS} banks")
    names: set[str] = set()
    keys = {genesis.issuer}
    for index, bank in enumerate(genesis.banks):
        where = f"banks[{index}]"
        if not isinstance(bank, Bank):
            raise GenesisError(f"{where}: expected a Bank")
        _check_name(f"{where}.name", bank.name)
        _check_key(f"{where}.address", bank.public_key)
        if bank.name in names:
            raise GenesisError(f"{where}.name: duplicate bank name {bank.name!r}")
        if bank.public_key in keys:
            raise GenesisError(
                f"{where}.address: {encode_address(bank.public_key)} is already the issuer or another bank"
            )
        names.add(bank.name)
        keys.add(bank.public_key)


def _check_validators(validators: tuple[GenesisValidator, ...]) -> None:
    if type(validators) is not tuple or not 1 <= len(validators) <= MAX_VALIDATORS:
        raise GenesisError(f"validators: expected 1..{MAX_VALIDATORS} validators")
    seen: dict[str, set[object]] = {"name": set(), "address": set(), "p2p_address": set(), "api_address": set()}
    total = 0
    for index, validator in enumerate(validators):
        where = f"validators[{index}]"
        if not isinstance(validator, GenesisValidator):
            raise GenesisError(f"{where}: expected a GenesisValidator")
        _check_name(f"{where}.name", validator.name)
        _check_key(f"{where}.address", validator.public_key)
        if type(validator.power) is not int or not 1 <= validator.power <= MAX_TOTAL_POWER:
            raise GenesisError(f"{where}.power: expected an integer 1..{MAX_TOTAL_POWER}, got {validator.power!r}")
        for name in ("p2p_address", "api_address"):
            try:
                parse_endpoint(getattr(validator, name))
            except ValueError as exc:
                raise GenesisError(f"{where}.{name}: {exc}") from None
        values = {
            "name": validator.name,
            "address": validator.public_key,
            "p2p_address": validator.p2p_address,
            "api_address": validator.api_address,
        }
        for name, value in values.items():
            if value in seen[name]:
                shown = encode_address(value) if isinstance(value, bytes) else repr(value)
                raise GenesisError(f"{where}.{name}: duplicate validator {name} {shown}")
            seen[name].add(value)
        total += validator.power
        if total > MAX_TOTAL_POWER:
            raise GenesisError(f"{where}.power: total voting power exceeds {MAX_TOTAL_POWER}")


def _check_balances(balances: tuple[tuple[bytes, int], ...]) -> None:
    if type(balances) is not tuple or len(balances) > MAX_BALANCES:
        raise GenesisError(f"balances: expected a tuple of at most {MAX_BALANCES} entries")
    total = 0
    previous: bytes | None = None
    for index, entry in enumerate(balances):
        where = f"balances[{index}]"
        if type(entry) is not tuple or len(entry) != 2:
            raise GenesisError(f"{where}: expected a (public key, tyiyn) pair")
        key, amount = entry
        _check_key(f"{where}.address", key)
        if type(amount) is not int or not 1 <= amount <= MAX_TYIYN:
            raise GenesisError(f"{where}.tyiyn: expected an integer 1..{MAX_TYIYN} (2^64-1), got {amount!r}")
        if previous is not None and key <= previous:
            problem = "duplicate account" if key == previous else "balances must be sorted by public key"
            raise GenesisError(f"{where}.address: {problem} ({encode_address(key)})")
        previous = key
        total += amount
        if total > MAX_TYIYN:
            raise GenesisError(f"{where}.tyiyn: the total of all balances exceeds 2^64-1 tyiyn")


def _check_board(board: GenesisBoard) -> None:
    if not isinstance(board, GenesisBoard) or type(board.members) is not tuple \
            or not 1 <= len(board.members) <= MAX_BOARD_MEMBERS:
        raise GenesisError(f"board.members: expected 1..{MAX_BOARD_MEMBERS} members")
    names: set[str] = set()
    keys: set[bytes] = set()
    for index, member in enumerate(board.members):
        where = f"board.members[{index}]"
        if not isinstance(member, BoardMember):
            raise GenesisError(f"{where}: expected a BoardMember")
        _check_name(f"{where}.name", member.name)
        _check_key(f"{where}.address", member.public_key)
        if member.name in names or member.public_key in keys:
            raise GenesisError(f"{where}: duplicate board member {member.name!r} / {encode_address(member.public_key)}")
        names.add(member.name)
        keys.add(member.public_key)
    if type(board.threshold) is not int or not 1 <= board.threshold <= len(board.members):
        raise GenesisError(f"board.threshold: expected an integer 1..{len(board.members)}, got {board.threshold!r}")


def _check_tiers(genesis: Genesis) -> None:
    ids: set[int] = set()
    for index, tier in enumerate(genesis.tiers):
        if not isinstance(tier, Tier):
            raise GenesisError(f"tiers[{index}]: expected a Tier")
        if tier.id in ids:
            raise GenesisError(f"tiers[{index}].id: tier {tier.id} is defined twice")
        ids.add(tier.id)
    if UNREGISTERED_TIER not in ids:
        raise GenesisError(f"tiers: tier {UNREGISTERED_TIER}, where every unregistered account is, must be defined")
    keys: set[bytes] = set()
    for index, (key, wallet_tier) in enumerate(genesis.wallets):
        where = f"wallets[{index}]"
        _check_key(f"{where}.address", key)
        if key in keys:
            raise GenesisError(f"{where}.address: duplicate wallet {encode_address(key)}")
        keys.add(key)
        if type(wallet_tier) is not int or (wallet_tier not in ids and wallet_tier != INSTITUTIONAL):
            raise GenesisError(f"{where}.tier: expected a tier the genesis defines or {INSTITUTIONAL} "
                               f"(institutional), got {wallet_tier!r}")
    if list(genesis.wallets) != sorted(genesis.wallets):
        raise GenesisError("wallets: expected sorted by key")


def _check_observers(genesis: Genesis) -> None:
    if type(genesis.observers) is not tuple or len(genesis.observers) > MAX_OBSERVERS:
        raise GenesisError(f"observers: expected at most {MAX_OBSERVERS} observers")
    validators = {v.public_key for v in genesis.validators}
    names: set[str] = set()
    keys: set[bytes] = set()
    for index, observer in enumerate(genesis.observers):
        where = f"observers[{index}]"
        if not isinstance(observer, GenesisObserver):
            raise GenesisError(f"{where}: expected a GenesisObserver")
        _check_name(f"{where}.name", observer.name)
        _check_key(f"{where}.address", observer.public_key)
        if observer.name in names or observer.public_key in keys:
            raise GenesisError(f"{where}: duplicate observer {observer.name!r} / {encode_address(observer.public_key)}")
        if observer.public_key in validators:
            raise GenesisError(f"{where}.address: {encode_address(observer.public_key)} is a validator; "
                               f"a key is a validator or an observer, not both")
        names.add(observer.name)
        keys.add(observer.public_key)
