"""A validator's configuration file (TOML).

The operations team of a bank edits this file by hand, so every mistake must be
reported with the dotted name of the field it concerns ("api.listen: ..."), and
anything the loader does not know is refused: a misspelt option that is
silently ignored is a setting the operator believes is in force but is not.

Relative paths are resolved against the directory of the config file, so a
validator directory can be moved or copied as a whole.  ``render_config`` writes
the same format back (paths relative to the file again); only the handful of
flat sections below exist, so a small writer is enough and no TOML-writing
dependency is needed.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from node.core.address import AddressError, decode_address, encode_address
from node.core.block import DEFAULT_MAX_TIME_AHEAD_MS, MAX_BLOCK_BYTES, MAX_BLOCK_TXS
from node.core.fields import Endpoint, describe, parse_endpoint
from node.core.genesis import MAX_OBSERVERS
from node.core.tx import MAX_TX_BYTES

LOG_LEVELS = ("debug", "info", "warning", "error")
ROLES = ("validator", "observer")
_MAX_TIMEOUT_MS = 600_000


class ConfigError(ValueError):
    """The configuration is invalid; the message starts with the field's name."""


@dataclass(frozen=True, slots=True)
class NodeSection:
    name: str
    data_dir: Path
    # The validator's key file; required with the file backend, absent with the others (see
    # _BACKEND_FIELDS), so the parser checks it rather than a default.
    key_file: Path | None
    genesis_file: Path
    log_level: str = "info"
    # The key this validator rotates to (docs/operators.md): it signs with whichever of the
    # two the validator set of a height holds.
    next_key_file: Path | None = None
    # "observer": the node follows the chain from the validators and serves the API, and never signs a
    # proposal or a vote (docs/operators.md, "Observer nodes"); its key must be a registered observer's.
    role: str = "validator"


@dataclass(frozen=True, slots=True)
class Peer:
    """A validator this node dials besides the genesis ones, written ``som1…@host:port``."""

    public_key: bytes
    endpoint: Endpoint

    def __str__(self) -> str:
        return f"{encode_address(self.public_key)}@{self.endpoint}"


@dataclass(frozen=True, slots=True)
class P2PSection:
    listen: Endpoint
    # Validators that joined after the genesis, which names only the first network's addresses.
    peers: tuple[Peer, ...] = ()
    # Observer links a validator serves at once; further observers are refused (too_many_observers).
    max_observers: int = 8


@dataclass(frozen=True, slots=True)
class ApiSection:
    listen: Endpoint
    max_body_bytes: int = 1024 * 1024


@dataclass(frozen=True, slots=True)
class MempoolSection:
    max_txs: int = 50_000
    max_bytes: int = 32 * 1024 * 1024


# The fewest blocks a pruning node keeps: a validator back from a short outage catches up from them.
MIN_RETAIN_BLOCKS = 100


@dataclass(frozen=True, slots=True)
class StorageSection:
    # The last blocks kept with their certificates, receipts and transaction index; older ones are
    # deleted in the background (node/ledger/pruning.py).  0 keeps every block (an archive node).
    retain_blocks: int = 0
    # Every this many heights the node writes a snapshot of its state for peers joining by state sync
    # (node/statesync/), keeping the newest snapshot_keep.  0 writes none.
    snapshot_interval: int = 1000
    snapshot_keep: int = 2


@dataclass(frozen=True, slots=True)
class StateSyncSection:
    """A node started with an empty ledger joins from a snapshot, trusting the block the operator names
    (docs/operators.md, "Joining by state sync").  Without a trusted hash it replays from the genesis."""

    trust_height: int = 0
    trust_hash: str | None = None  # the block's hash at trust_height, 64 hex digits


@dataclass(frozen=True, slots=True)
class ConsensusSection:
    timeout_propose_ms: int = 1000
    timeout_prevote_ms: int = 500
    timeout_precommit_ms: int = 500
    timeout_delta_ms: int = 250
    max_block_txs: int = 5000
    max_block_bytes: int = 2 * 1024 * 1024
    # How long a proposer with an empty mempool waits for transactions before
    # proposing an empty block; keep it well below timeout_propose_ms.
    empty_block_wait_ms: int = 500
    # With nothing to commit, how often the network commits an empty block to show it is live
    # (node/host/heartbeat.py).  0 commits one whenever empty_block_wait_ms runs out.
    empty_block_interval_ms: int = 30_000
    # As proposer, how long after the previous commit to hold back a block that is
    # not full: under load, blocks then carry more transfers and the per-block costs
    # (fsync'd writes, consensus steps) are shared by more of them.  Keep it well
    # below timeout_propose_ms.  0 proposes as soon as anything is pending.
    block_interval_ms: int = 200
    # How far ahead of this validator's clock a proposal's time may be before it prevotes nil:
    # block time drives the daily limits (node/host/validity.py).
    max_time_ahead_ms: int = DEFAULT_MAX_TIME_AHEAD_MS


SIGNER_BACKENDS = ("file", "pkcs11", "remote")


@dataclass(frozen=True, slots=True)
class KeyPlace:
    """Which backend holds a key, and for ``pkcs11`` the token key pair, found by its label, with the user
    PIN from a file or a variable: the same fields in a validator's [signer] and a signer's [keys]."""

    backend: str = "file"
    pkcs11_module: Path | None = None
    pkcs11_token: str | None = None
    pkcs11_key: str | None = None
    pkcs11_next_key: str | None = None
    pkcs11_pin_file: Path | None = None
    pkcs11_pin_env: str | None = None


@dataclass(frozen=True, slots=True)
class SignerSection(KeyPlace):
    """Where the validator's keys live and how it reaches them (node/signing/keyring.py)."""

    # remote: a ``somnode signer`` process holding the keys, reached over an authenticated link.
    remote_address: Endpoint | None = None
    remote_key: bytes | None = None
    remote_next_key: bytes | None = None
    remote_link_key_file: Path | None = None
    remote_timeout_ms: int = 1000


@dataclass(frozen=True, slots=True)
class Config:
    """One validator's settings; paths are absolute once loaded."""

    node: NodeSection
    p2p: P2PSection
    api: ApiSection
    mempool: MempoolSection = field(default_factory=MempoolSection)
    consensus: ConsensusSection = field(default_factory=ConsensusSection)
    storage: StorageSection = field(default_factory=StorageSection)
    state_sync: StateSyncSection = field(default_factory=StateSyncSection)
    signer: SignerSection = field(default_factory=SignerSection)


# Inclusive bounds of every integer option, checked on load.
_INT_BOUNDS: dict[str, tuple[int, int]] = {
    # One transaction in its bulkiest encoding (JSON hex) plus the envelope.
    "api.max_body_bytes": (2 * MAX_TX_BYTES + 64, 64 * 1024 * 1024),
    "mempool.max_txs": (1, 10_000_000),
    "mempool.max_bytes": (MAX_TX_BYTES, 8 * 1024 * 1024 * 1024),
    "consensus.timeout_propose_ms": (1, _MAX_TIMEOUT_MS),
    "consensus.timeout_prevote_ms": (1, _MAX_TIMEOUT_MS),
    "consensus.timeout_precommit_ms": (1, _MAX_TIMEOUT_MS),
    "consensus.timeout_delta_ms": (0, _MAX_TIMEOUT_MS),
    "consensus.max_block_txs": (1, MAX_BLOCK_TXS),
    "consensus.max_block_bytes": (MAX_TX_BYTES, MAX_BLOCK_BYTES),
    "consensus.empty_block_wait_ms": (0, _MAX_TIMEOUT_MS),
    "consensus.block_interval_ms": (0, _MAX_TIMEOUT_MS),
    "consensus.empty_block_interval_ms": (0, 24 * 3600 * 1000),
    "consensus.max_time_ahead_ms": (100, 60_000),
    "signer.remote_timeout_ms": (10, 60_000),
    "storage.retain_blocks": (0, 2**62),
    "storage.snapshot_interval": (0, 2**62),
    "storage.snapshot_keep": (1, 16),
    "state_sync.trust_height": (0, 2**62),
    "p2p.max_observers": (0, MAX_OBSERVERS),
}
_PATH_FIELDS = frozenset({"node.data_dir", "node.key_file", "node.genesis_file", "node.next_key_file",
                          "signer.pkcs11_module", "signer.pkcs11_pin_file", "signer.remote_link_key_file",
                          # the signer process's config (node/signing/config.py)
                          "keys.key_file", "keys.next_key_file", "keys.pkcs11_module", "keys.pkcs11_pin_file",
                          "service.state_file"})
_ENDPOINT_FIELDS = frozenset({"p2p.listen", "api.listen", "signer.remote_address", "service.listen"})
_BACKEND_KEY_FIELDS = frozenset({"node.key_file"})
_ADDRESS_FIELDS = frozenset({"signer.remote_key", "signer.remote_next_key", "service.validator"})
_LABEL_FIELDS = frozenset({"signer.pkcs11_token", "signer.pkcs11_key", "signer.pkcs11_next_key",
                           "signer.pkcs11_pin_env", "keys.pkcs11_token", "keys.pkcs11_key", "keys.pkcs11_next_key",
                           "keys.pkcs11_pin_env"})
# Which [signer] fields each backend needs, and may have; any other is an error, never ignored.
_BACKEND_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "file": (frozenset({"node.key_file"}), frozenset({"node.next_key_file"})),
    "pkcs11": (frozenset({"signer.pkcs11_module", "signer.pkcs11_token", "signer.pkcs11_key"}),
               frozenset({"signer.pkcs11_next_key", "signer.pkcs11_pin_file", "signer.pkcs11_pin_env"})),
    "remote": (frozenset({"signer.remote_address", "signer.remote_key", "signer.remote_link_key_file"}),
               frozenset({"signer.remote_next_key", "signer.remote_timeout_ms"})),
}
_SECTIONS: dict[str, type] = {
    "node": NodeSection,
    "p2p": P2PSection,
    "api": ApiSection,
    "mempool": MempoolSection,
    "consensus": ConsensusSection,
    "storage": StorageSection,
    "state_sync": StateSyncSection,
    "signer": SignerSection,
}


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and check a config file; raise ConfigError naming the bad field."""
    path = Path(path)
    return parse_config(read_config_text(path), base_dir=path.resolve().parent, source=str(path))


def read_config_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is unreadable: {exc}") from None


def parse_config(text: str, base_dir: Path, source: str = "<config>") -> Config:
    """Parse config text; relative paths resolve against ``base_dir``."""
    document = parse_document(text, source)
    sections = parse_sections(document, _SECTIONS, base_dir)
    _check_backend(document)
    storage = sections["storage"]
    if storage.retain_blocks and storage.snapshot_interval > storage.retain_blocks // 2:
        # A peer joining by state sync needs the blocks from a snapshot it is offered up to the trusted
        # block: with snapshots further apart than half the blocks kept, the newest is often pruned past.
        raise ConfigError(f"storage.snapshot_interval: a node keeping {storage.retain_blocks} blocks snapshots at "
                          f"most every {storage.retain_blocks // 2} heights (half of storage.retain_blocks), or "
                          f"never (0), so that peers can join from its snapshots; got {storage.snapshot_interval}")
    state_sync = sections["state_sync"]
    if (state_sync.trust_hash is None) != (state_sync.trust_height == 0):
        raise ConfigError("state_sync.trust_hash: give both state_sync.trust_height and state_sync.trust_hash "
                          "(a block's height and its hash), or neither")
    return Config(**sections)


def parse_document(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None


def parse_sections(document: dict[str, Any], known: dict[str, type], base_dir: Path) -> dict[str, Any]:
    """Each known table of a config document (also the signer's, node/signing/config.py) parsed."""
    unknown = sorted(set(document) - set(known))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section (known: {', '.join(known)})")
    sections: dict[str, Any] = {}
    for name, cls in known.items():
        table = document.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{name}: expected a [{name}] section")
        sections[name] = parse_section(name, cls, table, base_dir)
    return sections


def _check_backend(document: dict[str, Any]) -> None:
    """The key fields present are exactly those the chosen signer backend reads."""
    backend = document.get("signer", {}).get("backend", "file")
    given = {f"{section}.{name}" for section in ("node", "signer") for name in document.get(section, {})}
    needed, allowed = _BACKEND_FIELDS[backend]
    for missing in sorted(needed - given):
        raise ConfigError(f"{missing}: missing required field (signer.backend is {backend!r})")
    others = set().union(*(n | a for n, a in _BACKEND_FIELDS.values())) - needed - allowed
    for stray in sorted(given & others):
        raise ConfigError(f"{stray}: not used with signer.backend = {backend!r}; remove it")
    if backend == "pkcs11":
        check_pin_source("signer", document["signer"])


def check_pin_source(section: str, table: dict[str, Any]) -> None:
    """A token's PIN comes from exactly one of a file and a variable, never from the config itself."""
    if ("pkcs11_pin_file" in table) == ("pkcs11_pin_env" in table):
        raise ConfigError(f"{section}.pkcs11_pin_file: give the token's PIN in exactly one of "
                          f"{section}.pkcs11_pin_file and {section}.pkcs11_pin_env (never in the config itself)")


def parse_section(section: str, cls: type, table: dict, base_dir: Path) -> object:
    """One table of a config file (also the signer's, node/signing/config.py) into ``cls``."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"{section}.{unknown[0]}: unknown field (known: {', '.join(known)})")
    values: dict[str, object] = {}
    for name, spec in known.items():
        dotted = f"{section}.{name}"
        if name not in table:
            if dotted in _BACKEND_KEY_FIELDS:
                values[name] = None  # _check_backend says whether the backend needs it
            elif spec.default is MISSING and spec.default_factory is MISSING:
                raise ConfigError(f"{dotted}: missing required field")
            continue
        values[name] = _parse_value(dotted, table[name], base_dir)
    return cls(**values)


def _parse_value(dotted: str, value: object, base_dir: Path) -> object:
    if dotted in _INT_BOUNDS:
        low, high = _INT_BOUNDS[dotted]
        if type(value) is not int:
            raise ConfigError(f"{dotted}: expected an integer, got {describe(value, mapping='a table')}")
        if not low <= value <= high:
            raise ConfigError(f"{dotted}: must be between {low} and {high}, got {value}")
        if dotted == "storage.retain_blocks" and 0 < value < MIN_RETAIN_BLOCKS:
            raise ConfigError(f"{dotted}: 0 keeps every block, otherwise it must be at least {MIN_RETAIN_BLOCKS}, "
                              f"got {value}")
        return value
    if dotted == "p2p.peers":
        if not isinstance(value, list):
            raise ConfigError(f"{dotted}: expected an array of \"som1…@host:port\", got "
                              f"{describe(value, mapping='a table')}")
        return tuple(_parse_peer(f"{dotted}[{index}]", item) for index, item in enumerate(value))
    if not isinstance(value, str):
        raise ConfigError(f"{dotted}: expected a string, got {describe(value, mapping='a table')}")
    if dotted in _ENDPOINT_FIELDS:
        try:
            return parse_endpoint(value)
        except ValueError as exc:
            raise ConfigError(f"{dotted}: {exc}") from None
    if dotted in _PATH_FIELDS:
        if not value or "\x00" in value:
            raise ConfigError(f"{dotted}: expected a file system path, got {value!r}")
        return (base_dir / Path(value).expanduser()).resolve()
    if dotted in _ADDRESS_FIELDS:
        try:
            return decode_address(value)
        except AddressError as exc:
            raise ConfigError(f"{dotted}: {exc}") from None
    if dotted in _LABEL_FIELDS:
        if not value.strip() or not value.isprintable():
            raise ConfigError(f"{dotted}: expected a non-empty printable label, got {value!r}")
        return value
    if dotted == "state_sync.trust_hash":
        if len(value) != 64 or not all(c in "0123456789abcdef" for c in value):
            raise ConfigError(f"{dotted}: expected a block hash of 64 lowercase hex digits, got {value!r}")
        return value
    if dotted in ("signer.backend", "keys.backend"):
        if value not in SIGNER_BACKENDS:
            raise ConfigError(f"{dotted}: expected one of {', '.join(SIGNER_BACKENDS)}, got {value!r}")
        return value
    if dotted in ("node.log_level", "service.log_level"):
        if value not in LOG_LEVELS:
            raise ConfigError(f"{dotted}: expected one of {', '.join(LOG_LEVELS)}, got {value!r}")
        return value
    if dotted == "node.role":
        if value not in ROLES:
            raise ConfigError(f"{dotted}: expected one of {', '.join(ROLES)}, got {value!r}")
        return value
    if dotted in ("node.name", "service.name", "service.chain_id"):
        if not value.strip() or not value.isprintable():
            raise ConfigError(f"{dotted}: expected a non-empty printable name, got {value!r}")
        return value
    raise AssertionError(f"no parser for config field {dotted}")


def _parse_peer(where: str, text: object) -> Peer:
    if not isinstance(text, str) or text.count("@") != 1:
        raise ConfigError(f"{where}: expected \"som1…@host:port\", got {text!r}")
    address, endpoint = text.split("@")
    try:
        return Peer(decode_address(address), parse_endpoint(endpoint))
    except (AddressError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def render_config(config: Config, base_dir: Path) -> str:
    """The TOML text of ``config``; paths are written relative to ``base_dir``."""
    lines = ["# somnode validator configuration; every field is described in configs/README.md", ""]
    for section in _SECTIONS:
        values = getattr(config, section)
        if section == "signer" and values == SignerSection():
            continue  # the file backend's keys are in [node]
        lines.append(f"[{section}]")
        for spec in fields(values):
            value = getattr(values, spec.name)
            if value is None or (section == "signer" and value == getattr(SignerSection(), spec.name)):
                continue
            if isinstance(value, bytes):
                value = encode_address(value)
            if isinstance(value, Path):
                value = os.path.relpath(value, base_dir.resolve())
            if isinstance(value, Endpoint):
                value = str(value)
            if isinstance(value, tuple):
                lines.append(f"{spec.name} = [{', '.join(_toml_value(str(item)) for item in value)}]")
                continue
            lines.append(f"{spec.name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: object) -> str:
    if type(value) is int:
        return str(value)
    assert isinstance(value, str), f"config values are ints or strings, not {type(value).__name__}"
    return '"' + "".join(_toml_char(c) for c in value) + '"'


def _toml_char(char: str) -> str:
    # TOML basic strings: backslash and quote are escaped, control characters
    # (U+0000..U+001F and U+007F) must be written as a \u escape of four hex digits.
    if char in '"\\':
        return "\\" + char
    if ord(char) < 0x20 or ord(char) == 0x7F:
        return f"\\u{ord(char):04X}"
    return char


def write_config(path: str | os.PathLike[str], config: Config) -> None:
    """Write ``config`` to a new file at ``path``; refuse to overwrite."""
    path = Path(path)
    with open(path, "x", encoding="utf-8") as out:
        out.write(render_config(config, path.resolve().parent))
