"""``somnode init``: keys, genesis and configs for a new N-validator network.

Layout written under DIR (which must be empty or absent)::

    genesis.json
    keys/issuer.json  keys/bank<i>.json  keys/validator<k>.json
    validator<k>/config.toml        (data_dir = validator<k>/data)

The National Bank is the issuer; by default the other N-1 validators are run
by commercial banks, each of which receives an initial balance in genesis so
the network can move money at once.  Validator k listens for peers on
base_port + 2(k-1) and for clients on base_port + 2(k-1) + 1.  Everything is
computed and validated in memory before the first file is written, so a bad
option leaves no half-made directory behind.

``create_network`` is the same operation as a function, for commands (such as
a local testnet) that need a fresh network without going through argparse.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from node.address import encode_address
from node.amount import MAX_TYIYN, format_som, parse_som
from node.cli import EXIT_OK, CliError
from node.config import ApiSection, Config, Endpoint, NodeSection, P2PSection, parse_endpoint, write_config
from node.genesis import Bank, Genesis, GenesisValidator, current_genesis_time
from node.keys import KeyPair, write_key_file

DEFAULT_CHAIN_ID = "som-localnet"
DEFAULT_BASE_PORT = 26656
DEFAULT_BANK_BALANCE = "1000000.00"
MAX_LOCAL_VALIDATORS = 100
MAX_LOCAL_BANKS = 1000
ISSUER_NAME = "National Bank of the Kyrgyz Republic"


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


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "init",
        help="create keys, genesis and configs for a new network",
        description="Create the keys, genesis.json and one config.toml per validator for a new network.",
    )
    parser.add_argument("--validators", required=True, type=int, metavar="N", help="number of validators")
    parser.add_argument("--dir", required=True, type=Path, metavar="DIR", help="output directory (empty or absent)")
    parser.add_argument("--chain-id", default=DEFAULT_CHAIN_ID, help=f"chain id (default {DEFAULT_CHAIN_ID})")
    parser.add_argument("--banks", type=int, metavar="M", help="number of commercial banks (default N-1)")
    parser.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT, metavar="P",
                        help=f"first port; validator k uses P+2(k-1) and P+2(k-1)+1 (default {DEFAULT_BASE_PORT})")
    parser.add_argument("--host", default="127.0.0.1", help="host every validator listens on (default 127.0.0.1)")
    parser.add_argument("--bank-balance", default=DEFAULT_BANK_BALANCE, metavar="SOM",
                        help=f"som each bank holds at genesis (default {DEFAULT_BANK_BALANCE})")
    parser.add_argument("--genesis-time", metavar="TIME", help="YYYY-MM-DDTHH:MM:SSZ (default now)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    network = create_network(
        args.dir,
        validators=args.validators,
        banks=args.validators - 1 if args.banks is None else args.banks,
        chain_id=args.chain_id,
        base_port=args.base_port,
        host=args.host,
        bank_balance=parse_som(args.bank_balance),
        genesis_time=args.genesis_time or current_genesis_time(),
    )
    _print_summary(network)
    return EXIT_OK


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
) -> LocalNetwork:
    """Generate and write a whole network; raise CliError before writing if an option is bad.

    ``ports`` gives each validator's (p2p, api) ports explicitly, for callers
    such as tests that hold free ports which need not be contiguous; without
    it validator k gets ``base_port + 2(k-1)`` and the next port.  ``accounts``
    are further (public key, tyiyn) holdings at genesis, e.g. a benchmark's senders.
    """
    if ports is None:
        ports = [(base_port + 2 * index, base_port + 2 * index + 1) for index in range(validators)]
    _check_options(directory, validators, banks, ports, host, bank_balance)
    issuer = KeyPair.generate()
    bank_keys = [KeyPair.generate() for _ in range(banks)]
    validator_keys = [KeyPair.generate() for _ in range(validators)]
    endpoints = [(Endpoint(host, p2p), Endpoint(host, api)) for p2p, api in ports]
    genesis = Genesis(
        chain_id=chain_id,
        genesis_time=genesis_time or current_genesis_time(),
        issuer=issuer.public_key,
        banks=tuple(Bank(f"bank{i + 1}", key.public_key) for i, key in enumerate(bank_keys)),
        validators=tuple(
            GenesisValidator(f"validator{k + 1}", key.public_key, 1, str(p2p), str(api))
            for k, (key, (p2p, api)) in enumerate(zip(validator_keys, endpoints))
        ),
        balances=tuple(sorted(
            [(key.public_key, bank_balance) for key in bank_keys if bank_balance] + list(accounts))),
    )

    keys_dir = directory / "keys"
    keys_dir.mkdir(parents=True)
    genesis_file = directory / "genesis.json"
    with open(genesis_file, "x", encoding="utf-8") as out:
        out.write(genesis.to_json())
    issuer_key_file = _write_key(keys_dir / "issuer.json", issuer)
    bank_key_files = tuple(_write_key(keys_dir / f"bank{i + 1}.json", key) for i, key in enumerate(bank_keys))
    validator_key_files = tuple(
        _write_key(keys_dir / f"validator{k + 1}.json", key) for k, key in enumerate(validator_keys)
    )
    config_files = []
    for k, (key_file, (p2p, api)) in enumerate(zip(validator_key_files, endpoints)):
        node_dir = directory / f"validator{k + 1}"
        node_dir.mkdir()
        config = Config(
            node=NodeSection(
                name=f"validator{k + 1}",
                data_dir=(node_dir / "data").resolve(),
                key_file=key_file.resolve(),
                genesis_file=genesis_file.resolve(),
            ),
            p2p=P2PSection(listen=p2p),
            api=ApiSection(listen=api),
        )
        config_file = node_dir / "config.toml"
        write_config(config_file, config)
        config_files.append(config_file)
    return LocalNetwork(
        directory, genesis, genesis_file, issuer_key_file, bank_key_files, validator_key_files, tuple(config_files)
    )


def _check_options(
    directory: Path, validators: int, banks: int, ports: Sequence[tuple[int, int]], host: str, balance: int
) -> None:
    if not 1 <= validators <= MAX_LOCAL_VALIDATORS:
        raise CliError(f"--validators: expected 1..{MAX_LOCAL_VALIDATORS}, got {validators}")
    if not 0 <= banks <= MAX_LOCAL_BANKS:
        raise CliError(f"--banks: expected 0..{MAX_LOCAL_BANKS}, got {banks}")
    if len(ports) != validators:
        raise CliError(f"ports: expected {validators} (p2p, api) pairs, got {len(ports)}")
    flat = [port for pair in ports for port in pair]
    if not all(1 <= port <= 65535 for port in flat):
        raise CliError(f"--base-port: ports {min(flat)}..{max(flat)} do not fit in 1..65535")
    if len(set(flat)) != len(flat):
        raise CliError("ports: every validator needs two ports of its own")
    try:
        parse_endpoint(f"{host}:1" if ":" not in host else f"[{host}]:1")
    except ValueError as exc:
        raise CliError(f"--host: {exc}") from None
    if banks and balance * banks > MAX_TYIYN:
        raise CliError(f"--bank-balance: {banks} banks of {format_som(balance)} som exceed the 2^64-1 tyiyn supply")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise CliError(f"--dir: {directory} is not an empty directory; refusing to overwrite a network")


def _write_key(path: Path, key: KeyPair) -> Path:
    write_key_file(path, key)
    return path


def _print_summary(network: LocalNetwork) -> None:
    genesis = network.genesis
    balances = dict(genesis.balances)
    print(f"chain id      {genesis.chain_id}")
    print(f"genesis hash  {genesis.hash().hex()}")
    print(f"genesis file  {network.genesis_file}")
    print(f"issuer        {encode_address(genesis.issuer)}  key {network.issuer_key_file}")
    for bank, key_file in zip(genesis.banks, network.bank_key_files):
        held = format_som(balances.get(bank.public_key, 0))
        print(f"{bank.name:<13} {encode_address(bank.public_key)}  {held} som  key {key_file}")
    for validator, config_file in zip(genesis.validators, network.config_files):
        print(
            f"{validator.name:<13} {encode_address(validator.public_key)}  "
            f"p2p {validator.p2p_address}  api {validator.api_address}  config {config_file}"
        )
