"""Generating a new network: keys, genesis and one config per validator, written to a directory.

Layout written under DIR (which must be empty or absent)::

    genesis.json
    keys/issuer.json  keys/bank<i>.json  keys/validator<k>.json  keys/board<j>.json  keys/observer<k>.json
    validator<k>/config.toml        (data_dir = validator<k>/data)
    observer<k>/config.toml         (node.role = "observer"; only with observers)

The National Bank is the issuer; by default the other N-1 validators are run
by commercial banks, each of which receives an initial balance in genesis so
the network can move money at once.  Validator k listens for peers on
base_port + 2(k-1) and for clients on base_port + 2(k-1) + 1; observers, registered in
the genesis, take the ports after the validators'.  Everything is
computed and validated in memory before the first file is written, so a bad
option leaves no half-made directory behind.  ``somnode init``, the local
testnet, the benchmark and the tests all make their networks here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from node.app.config import (
    ApiSection,
    Config,
    Endpoint,
    NodeSection,
    P2PSection,
    parse_endpoint,
    write_config,
)
from node.core.amount import MAX_TYIYN, format_som, parse_som
from node.core.genesis import (
    MAX_BOARD_MEMBERS,
    MAX_OBSERVERS,
    Bank,
    BoardMember,
    Genesis,
    GenesisBoard,
    GenesisObserver,
    GenesisValidator,
    current_genesis_time,
)
from node.core.keys import KeyPair, write_key_file
from node.core.tiers import Tier

DEFAULT_CHAIN_ID = "som-localnet"
DEFAULT_BASE_PORT = 26656
DEFAULT_BANK_BALANCE = "1000000.00"
MAX_LOCAL_VALIDATORS = 100
MAX_LOCAL_BANKS = 1000
DEFAULT_BOARD_MEMBERS = 3
DEFAULT_BOARD_THRESHOLD = 2
# Each validator's voting power.  One block's set changes must move less than a third of the
# power (node/ledger/governance.py), so with powers of 1 a network of three or fewer could
# never change its set; with 100, even a lone validator can admit one of power 33.
VALIDATOR_POWER = 100
# The wallet tiers a new network starts with, in som (docs/banks.md): a wallet no bank has
# registered is anonymous; banks register their customers' wallets after KYC.
DEFAULT_TIERS = (
    Tier(0, "anonymous", parse_som("15000"), parse_som("5000"), parse_som("15000")),
    Tier(1, "basic KYC", parse_som("150000"), parse_som("50000"), parse_som("150000")),
    Tier(2, "full KYC", parse_som("1500000"), parse_som("1000000"), parse_som("3000000")),
)
# The tier of the further accounts a caller funds at genesis (a benchmark's senders).
FUNDED_ACCOUNT_TIER = 2


class NetworkSpecError(ValueError):
    """An option for a new network is invalid; the message names the option."""


@dataclass(frozen=True, slots=True)
class LocalNetwork:
    """Where ``create_network`` put things."""

    directory: Path
    genesis: Genesis
    genesis_file: Path
    issuer_key_file: Path
    bank_key_files: tuple[Path, ...]
    validator_key_files: tuple[Path, ...]
    config_files: tuple[Path, ...]
    board_key_files: tuple[Path, ...]
    observer_config_files: tuple[Path, ...] = ()


def create_network(
    directory: Path,
    *,
    validators: int,
    banks: int,
    chain_id: str = DEFAULT_CHAIN_ID,
    base_port: int = DEFAULT_BASE_PORT,
    host: str = "127.0.0.1",
    bank_balance: int = parse_som(DEFAULT_BANK_BALANCE),
    genesis_time: str | None = None,
    ports: Sequence[tuple[int, int]] | None = None,
    accounts: Sequence[tuple[bytes, int]] = (),
    board: int = DEFAULT_BOARD_MEMBERS,
    board_threshold: int = DEFAULT_BOARD_THRESHOLD,
    observers: int = 0,
) -> LocalNetwork:
    """Generate and write a whole network; raise NetworkSpecError before writing if an option is bad.

    ``ports`` gives each validator's (p2p, api) ports explicitly, for callers
    such as tests that hold free ports which need not be contiguous; without
    it validator k gets ``base_port + 2(k-1)`` and the next port.  ``accounts``
    are further (public key, tyiyn) holdings at genesis, e.g. a benchmark's senders, in tier
    ``FUNDED_ACCOUNT_TIER``.
    The governance board has ``board`` members, any ``board_threshold`` of whom act together.
    ``observers`` follow the validators without voting (registered in the genesis); with ``ports``,
    their (p2p, api) pairs come after the validators'.
    """
    if ports is None:
        ports = [(base_port + 2 * index, base_port + 2 * index + 1) for index in range(validators + observers)]
    if not 0 <= observers <= MAX_OBSERVERS:
        raise NetworkSpecError(f"--observers: expected 0..{MAX_OBSERVERS}, got {observers}")
    _check_options(directory, validators, banks, ports, host, bank_balance, observers)
    if not 1 <= board_threshold <= board <= MAX_BOARD_MEMBERS:
        raise NetworkSpecError(f"--board: expected 1 <= threshold <= members <= {MAX_BOARD_MEMBERS}, "
                               f"got {board_threshold} of {board}")
    board_keys = [KeyPair.generate() for _ in range(board)]
    issuer = KeyPair.generate()
    bank_keys = [KeyPair.generate() for _ in range(banks)]
    validator_keys = [KeyPair.generate() for _ in range(validators)]
    observer_keys = [KeyPair.generate() for _ in range(observers)]
    endpoints = [(Endpoint(host, p2p), Endpoint(host, api)) for p2p, api in ports]
    endpoints, observer_endpoints = endpoints[:validators], endpoints[validators:]
    genesis = Genesis(
        chain_id=chain_id,
        genesis_time=genesis_time or current_genesis_time(),
        issuer=issuer.public_key,
        banks=tuple(Bank(f"bank{i + 1}", key.public_key) for i, key in enumerate(bank_keys)),
        validators=tuple(
            GenesisValidator(f"validator{k + 1}", key.public_key, VALIDATOR_POWER, str(p2p), str(api))
            for k, (key, (p2p, api)) in enumerate(zip(validator_keys, endpoints))
        ),
        balances=tuple(sorted(
            [(key.public_key, bank_balance) for key in bank_keys if bank_balance] + list(accounts))),
        board=GenesisBoard(board_threshold, tuple(
            BoardMember(f"board{i + 1}", key.public_key) for i, key in enumerate(board_keys))),
        tiers=DEFAULT_TIERS,
        wallets=tuple(sorted((key, FUNDED_ACCOUNT_TIER) for key, _ in accounts)),
        observers=tuple(GenesisObserver(f"observer{k + 1}", key.public_key) for k, key in enumerate(observer_keys)),
    )

    keys_dir = directory / "keys"
    keys_dir.mkdir(parents=True)
    genesis_file = directory / "genesis.json"
    with open(genesis_file, "x", encoding="utf-8") as out:
        out.write(genesis.to_json())
    issuer_key_file = _write_key(keys_dir / "issuer.json", issuer)
    bank_key_files = tuple(_write_key(keys_dir / f"bank{i + 1}.json", key) for i, key in enumerate(bank_keys))
    board_key_files = tuple(_write_key(keys_dir / f"board{i + 1}.json", key) for i, key in enumerate(board_keys))
    validator_key_files = tuple(
        _write_key(keys_dir / f"validator{k + 1}.json", key) for k, key in enumerate(validator_keys)
    )
    config_files = [_write_node_config(directory / f"validator{k + 1}", key_file, genesis_file, p2p, api)
                    for k, (key_file, (p2p, api)) in enumerate(zip(validator_key_files, endpoints))]
    # An observer dials the genesis validators (their p2p_address) and never votes.
    observer_config_files = [
        _write_node_config(directory / f"observer{k + 1}", _write_key(keys_dir / f"observer{k + 1}.json", key),
                           genesis_file, p2p, api, role="observer")
        for k, (key, (p2p, api)) in enumerate(zip(observer_keys, observer_endpoints))]
    return LocalNetwork(
        directory, genesis, genesis_file, issuer_key_file, bank_key_files, validator_key_files, tuple(config_files),
        board_key_files, tuple(observer_config_files),
    )


def _write_node_config(node_dir: Path, key_file: Path, genesis_file: Path, p2p: Endpoint, api: Endpoint,
                       role: str = "validator") -> Path:
    node_dir.mkdir()
    config = Config(
        node=NodeSection(
            name=node_dir.name,
            data_dir=(node_dir / "data").resolve(),
            key_file=key_file.resolve(),
            genesis_file=genesis_file.resolve(),
            role=role,
        ),
        p2p=P2PSection(listen=p2p),
        api=ApiSection(listen=api),
    )
    config_file = node_dir / "config.toml"
    write_config(config_file, config)
    return config_file


def _check_options(
    directory: Path, validators: int, banks: int, ports: Sequence[tuple[int, int]], host: str, balance: int,
    observers: int = 0,
) -> None:
    if not 1 <= validators <= MAX_LOCAL_VALIDATORS:
        raise NetworkSpecError(f"--validators: expected 1..{MAX_LOCAL_VALIDATORS}, got {validators}")
    if not 0 <= banks <= MAX_LOCAL_BANKS:
        raise NetworkSpecError(f"--banks: expected 0..{MAX_LOCAL_BANKS}, got {banks}")
    if len(ports) != validators + observers:
        raise NetworkSpecError(f"ports: expected {validators + observers} (p2p, api) pairs, got {len(ports)}")
    flat = [port for pair in ports for port in pair]
    if not all(1 <= port <= 65535 for port in flat):
        raise NetworkSpecError(f"--base-port: ports {min(flat)}..{max(flat)} do not fit in 1..65535")
    if len(set(flat)) != len(flat):
        raise NetworkSpecError("ports: every validator and observer needs two ports of its own")
    try:
        parse_endpoint(f"{host}:1" if ":" not in host else f"[{host}]:1")
    except ValueError as exc:
        raise NetworkSpecError(f"--host: {exc}") from None
    if banks and balance * banks > MAX_TYIYN:
        raise NetworkSpecError(
            f"--bank-balance: {banks} banks of {format_som(balance)} som exceed the 2^64-1 tyiyn supply")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise NetworkSpecError(f"--dir: {directory} is not an empty directory; refusing to overwrite a network")


def _write_key(path: Path, key: KeyPair) -> Path:
    write_key_file(path, key)
    return path
