"""``somnode signer --config FILE``: the remote signer, holding one validator's keys on a machine of its own.

Its high-water mark file is what makes it refuse to sign twice, so it never
starts without one: a new signer creates it with ``--new-state``; a signer
whose file was lost starts with ``--new-state --from-height H``, H above
every height its validator may have signed (the network's height, from any
validator's ``/v1/status``).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import uvloop

from node.app.logs import configure_logging
from node.cli import EXIT_OK, CliError
from node.core.keys import Key, KeyFileError, read_key_file

if TYPE_CHECKING:
    from node.signing.server import SignerService


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "signer", help="run a remote signer for one validator, with a double-sign guard",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, type=Path, metavar="FILE", help="the signer's somnode-signer.toml")
    parser.add_argument("--new-state", action="store_true",
                        help="create the high-water mark file (service.state_file) first; refused if it exists")
    parser.add_argument("--from-height", type=int, default=0, metavar="H",
                        help="with --new-state: refuse to sign at any height up to H")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from node.signing.config import load_signer_config
    from node.signing.guard import HighWaterMark, StateFileError
    from node.signing.keyring import KeyringError, open_token_keys
    from node.signing.server import SignerService

    config = load_signer_config(args.config)
    service, keys = config.service, config.keys
    if args.from_height and not args.new_state:
        raise CliError("--from-height goes with --new-state")
    if not 0 <= args.from_height < 2**64:
        raise CliError("--from-height: a height is 0 .. 2^64-1")
    configure_logging(service.log_level, service.name)
    # The keys first: a key that cannot be had leaves no new state file behind.
    close = _nothing
    signers: Sequence[Key]
    if keys.backend == "file":
        assert keys.key_file is not None, "required by the config loader"
        signers = []
        for name, path in (("keys.key_file", keys.key_file), ("keys.next_key_file", keys.next_key_file)):
            if path is not None:
                try:
                    signers.append(read_key_file(path))
                except KeyFileError as exc:
                    raise CliError(f"{name}: {exc}") from None
    else:
        assert keys.pkcs11_module and keys.pkcs11_token and keys.pkcs11_key, "required by the config loader"
        labels = [label for label in (keys.pkcs11_key, keys.pkcs11_next_key) if label is not None]
        try:
            token, signers = open_token_keys(keys.pkcs11_module, keys.pkcs11_token, labels, keys.pkcs11_pin_file,
                                             keys.pkcs11_pin_env, "keys.pkcs11")
        except KeyringError as exc:
            raise CliError(str(exc)) from None
        close = token.close
    try:
        state = (HighWaterMark.create(service.state_file, service.chain_id, args.from_height) if args.new_state
                 else HighWaterMark.load(service.state_file, service.chain_id))
    except StateFileError as exc:
        close()
        hint = "" if args.new_state else (" (a new signer starts once with --new-state; see somnode signer --help)")
        raise CliError(f"service.state_file: {exc}{hint}") from None
    try:
        uvloop.run(_serve(SignerService(listen=service.listen, chain_id=service.chain_id,
                                        validator=service.validator, keys=signers, state=state)))
    finally:
        close()
    return EXIT_OK


def _nothing() -> None:
    return None


async def _serve(service: SignerService) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await service.start()
    try:
        await stop.wait()
    finally:
        await service.stop()
