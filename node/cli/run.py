"""``somnode run --config FILE``: run one validator until SIGINT or SIGTERM.

Every check that can fail on the operator's files (config, genesis, key, the
key's membership in the genesis, the store's chain) runs before the node
talks to anyone, and fails with one line naming what to fix.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvloop

if TYPE_CHECKING:
    from node.app.assembly import ValidatorNode

from node.app.logs import configure_logging
from node.cli import EXIT_FAILURE, EXIT_OK, CliError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="run one validator from its config file",
        description="Run one validator until SIGINT or SIGTERM.",
    )
    parser.add_argument("--config", required=True, type=Path, metavar="FILE", help="the validator's config.toml")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="write cProfile statistics of the event-loop thread to FILE on exit (for tuning)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so that `somnode --help` and the wallet verbs do not load the whole node.
    from node.app.assembly import StartError, ValidatorNode, load_node_files
    from node.app.tuning import tune_interpreter
    from node.ledger.errors import LedgerError

    try:
        config, genesis, keyring = load_node_files(args.config)
    except StartError as exc:
        raise CliError(str(exc)) from None
    configure_logging(config.node.log_level, config.node.name)
    profiler = cProfile.Profile() if args.profile else None
    try:
        if profiler is not None:
            profiler.enable()
        tune_interpreter()
        uvloop.run(_serve(ValidatorNode(config, genesis, keyring)))
    except (LedgerError, StartError, NodeHalted) as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
    return EXIT_OK


async def _serve(node: ValidatorNode) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    failure: BaseException | None = None
    stopping = asyncio.ensure_future(stop.wait())
    try:
        # Start can take long (a state sync fetches a whole state): a signal meanwhile ends it.
        starting = asyncio.ensure_future(node.start())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            log.info("node.stopping reason=signal_during_start")
            return
        starting.result()
        assert node.halted is not None
        waiting: set[asyncio.Future[Any]] = {stopping, node.halted}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if node.halted.done():
            failure = node.halted.result()
            log.critical("node.stopping reason=halted")
        else:
            log.info("node.stopping reason=signal")
    finally:
        stopping.cancel()
        await node.stop()
    if failure is not None:
        raise NodeHalted(f"the validator stopped: {type(failure).__name__}: {failure}")


class NodeHalted(Exception):
    """The node hit an error it cannot continue after (e.g. a block it cannot write)."""
