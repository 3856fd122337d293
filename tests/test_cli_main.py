"""The ``somnode`` entry point: help, command discovery and error reporting."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from node import cli

ROOT = Path(__file__).resolve().parent.parent


def test_help_in_a_subprocess_lists_the_commands():
    result = subprocess.run(
        [sys.executable, "-m", "node", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "usage: somnode" in result.stdout
    for command in ("keygen", "init"):
        assert command in result.stdout


def test_subprocess_user_error_has_no_traceback(tmp_path):
    out = tmp_path / "k.json"
    out.write_text("already here")
    result = subprocess.run(
        [sys.executable, "-m", "node", "keygen", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("somnode keygen: error:")
    assert "Traceback" not in result.stderr
    assert out.read_text() == "already here"


def test_help_in_process_returns_zero(capsys):
    assert cli.main(["--help"]) == 0
    assert "keygen" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [[], ["no-such-command"], ["init", "--validators", "x", "--dir", "d"], ["keygen", "--bogus"]],
)
def test_usage_errors_exit_2_with_one_line(argv, capsys):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("somnode: error:")


def _leaves(parser: argparse.ArgumentParser, path: str = "") -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command a user can run: a parser without subcommands of its own."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        return [(path, parser)]
    return [leaf for group in groups for name, sub in group.choices.items()
            for leaf in _leaves(sub, f"{path} {name}".strip())]


def test_every_command_module_registers_a_handler():
    leaves = dict(_leaves(cli.build_parser()))
    assert {"keygen", "init", "gov build add-bank", "gov sign", "gov submit"} <= set(leaves)
    for name, subparser in leaves.items():
        assert callable(subparser.get_default("handler")), name


def test_user_errors_from_handlers_become_exit_2(monkeypatch, capsys):
    from node.app.config import ConfigError

    def failing(_args):
        raise ConfigError("api.listen: expected host:port, got 'abc'")

    parser = cli.build_parser()
    original = parser.parse_args

    def parse(argv):
        args = original(argv)
        args.handler = failing
        return args

    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(parser, "parse_args", parse)
    assert cli.main(["keygen", "--out", "unused"]) == 2
    assert capsys.readouterr().err.strip() == "somnode keygen: error: api.listen: expected host:port, got 'abc'"
