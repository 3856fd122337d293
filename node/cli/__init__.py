"""The ``somnode`` command line.

Each verb group lives in its own module ``node/cli/<name>.py`` that defines
``register(subparsers)``: it adds its parser and sets ``handler`` (a function
taking the parsed arguments and returning the exit code) with
``parser.set_defaults(handler=...)``.  The modules are found by name, so a new
command is a new file and never an edit to a shared dispatcher.

A user's mistake (bad option, bad config, existing key file...) is reported as
one line on stderr with exit code 2 and never as a traceback: the operator
needs to know what to fix, not where in the code it was noticed.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from node.app.config import ConfigError
from node.core.address import AddressError
from node.core.amount import AmountError
from node.core.genesis import GenesisError
from node.core.keys import KeyFileError
from node.tools.network import NetworkSpecError

PROG = "somnode"
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A mistake the user can fix; shown as one line without a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# Errors that mean "your input is wrong" wherever they are raised from.
USER_ERRORS = (CliError, ConfigError, GenesisError, KeyFileError, AddressError, AmountError, NetworkSpecError)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CliError(f"{message} (see '{self.prog} --help')")


def command_modules() -> list[ModuleType]:
    """Every module of this package that defines ``register``, in name order."""
    names = sorted(info.name for info in pkgutil.iter_modules(__path__))
    modules = [importlib.import_module(f"{__name__}.{name}") for name in names]
    return [module for module in modules if callable(getattr(module, "register", None))]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Validator node and tools for the digital som, the Kyrgyz Republic's CBDC.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, title="commands")
    for module in command_modules():
        module.register(subparsers)
    return parser


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``somnode`` command and return its exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except CliError as exc:
        print(f"{PROG}: error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except SystemExit as exc:  # --help and --version exit through argparse
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    try:
        return args.handler(args)
    except USER_ERRORS as exc:
        print(f"{PROG} {args.command}: error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, CliError) else EXIT_USAGE
    except OSError as exc:
        print(f"{PROG} {args.command}: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED

