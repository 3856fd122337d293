"""docs/operators.md against the code it describes.

An operator acts on what the guide says: a config field that does not exist
stops the node, a metric that was renamed leaves an alert silent, a log event
that is not listed is never looked for.  So every config field, command,
option, metric, log event and handshake refusal reason the guide names must
exist, and every one the code has must be in the guide.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import fields
from pathlib import Path
from typing import get_type_hints

import pytest
from prometheus_client import CollectorRegistry

from node import cli
from node.app.config import Config, parse_config
from node.app.metrics import NetworkCollector, NodeMetrics, VerifierCollector
from node.p2p.handshake import Refusal
from node.p2p.stats import NetworkStats
from node.verifier.scheduler import BatchVerifier

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "operators.md").read_text(encoding="utf-8")
CONFIG_SECTIONS = tuple(f.name for f in fields(Config))
LOG_CALL = re.compile(r"\blog\.(?:debug|info|warning|error|exception|critical)\(\s*\"([^\"]+)\"")


def _section(heading: str) -> str:
    """The text under the first heading that starts with ``heading``, up to the next heading of its level."""
    match = re.search(rf"^(#+) {re.escape(heading)}.*$", DOC, re.MULTILINE)
    assert match is not None, f"docs/operators.md has no heading {heading!r}"
    level = len(match[1])
    end = re.compile(rf"^#{{1,{level}}} ", re.MULTILINE).search(DOC, match.end())
    return DOC[match.end():end.start() if end else len(DOC)]


def _first_cells(text: str, header: str) -> list[str]:
    """Backticked names in the first column of the table whose header row starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    names = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        names.extend(re.findall(r"`([^`]+)`", line.split("|")[1]))
    assert names, f"the table {header!r} is empty"
    return names


def _code_texts() -> list[str]:
    """Inline code spans and the lines of fenced code blocks."""
    fenced = re.findall(r"^```[a-z]*\n(.*?)^```", DOC, re.MULTILINE | re.DOTALL)
    prose = re.sub(r"^```[a-z]*\n.*?^```", "", DOC, flags=re.MULTILINE | re.DOTALL)
    inline = re.findall(r"`([^`\n]+)`", prose)
    return inline + [line for block in fenced for line in block.splitlines()]


# ---- config fields

def _config_fields() -> set[str]:
    sections = get_type_hints(Config)  # the annotations are strings under postponed evaluation
    return {f"{name}.{spec.name}" for name, section in sections.items() for spec in fields(section)}


def test_the_config_table_lists_exactly_the_config_fields():
    documented = _first_cells(_section("3. Config file"), "| field |")
    assert len(documented) == len(set(documented)), "a field is listed twice"
    assert set(documented) == _config_fields()


def test_every_dotted_config_name_in_the_guide_is_a_field_or_a_log_event():
    events = set(_documented_events())
    pattern = re.compile(rf"(?:{'|'.join(CONFIG_SECTIONS)})\.[a-z_]+")
    named = {span for span in _code_texts() for span in [span.strip()] if pattern.fullmatch(span)}
    assert named, "the guide names no config field in code spans"
    assert named - events <= _config_fields()


def test_the_example_configs_load_and_name_every_field(tmp_path):
    """The complete example of §3 (key files) and those of the other signer backends (§13): each loads,
    and together they write every field."""
    blocks = [block for block in re.findall(r"^```toml\n(.*?)^```", DOC, re.MULTILINE | re.DOTALL)
              if block.startswith("[node]")]
    assert len(blocks) >= 3, "the guide has no complete example config for each signer backend"
    written = set()
    for text in blocks:
        config = parse_config(text, base_dir=tmp_path, source="docs/operators.md")
        assert config.node.data_dir == (tmp_path / "data").resolve()
        section = None
        for line in text.splitlines():
            if header := re.fullmatch(r"\[(\w+)\]", line):
                section = header[1]
            elif assignment := re.match(r"(\w+) = ", line):
                written.add(f"{section}.{assignment[1]}")
    assert written == _config_fields()


# ---- commands and options

def _subcommands(capsys) -> set[str]:
    assert cli.main(["--help"]) == 0
    help_text = capsys.readouterr().out
    listing = help_text.split("commands:", 1)[1]
    return set(re.findall(r"^    (\w[\w-]*) ", listing, re.MULTILINE))


def _leaf(words: list[str]) -> tuple[str, argparse.ArgumentParser]:
    """The command a line runs (``gov build add-bank``) and its parser: subcommands are followed
    as long as the words name them."""
    parser: argparse.ArgumentParser = cli.build_parser()
    path = []
    for word in words:
        groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not groups or word not in groups[0].choices:
            break
        parser = groups[0].choices[word]
        path.append(word)
    return " ".join(path), parser


def _options(command: str) -> set[str]:
    _, parser = _leaf(command.split())
    return {option for action in parser._actions for option in action.option_strings}


def _mentions() -> list[tuple[str, list[str]]]:
    """(command, options written after it) for every code span or line that starts ``somnode COMMAND``."""
    found = []
    for text in _code_texts():
        if match := re.match(r"\s*(?:\S*/)?somnode (\w[\w-]*)([^`#]*)", text):
            words = [match[1], *match[2].split()]
            command, _ = _leaf(words)
            options = [token.split("=", 1)[0] for token in words if token.startswith("--")]
            found.append((command or match[1], options))
    return found


def test_every_command_in_the_guide_exists(capsys):
    commands = _subcommands(capsys)
    mentioned = {command.split()[0] for command, _ in _mentions()}
    assert {"keygen", "run", "testnet", "init", "status", "address"} <= mentioned
    assert mentioned <= commands, f"not a somnode command: {sorted(mentioned - commands)}"


def test_every_option_in_the_guide_exists(capsys):
    checked = 0
    for command, options in _mentions():
        known = _options(command)
        assert set(options) <= known, f"somnode {command} has no {sorted(set(options) - known)}"
        checked += len(options)
    assert checked > 0


# ---- metrics

def _exposed_metrics() -> set[str]:
    registry = CollectorRegistry()
    NodeMetrics(registry)
    verifier = BatchVerifier(threads=1)
    try:
        registry.register(VerifierCollector(lambda: verifier.stats))
        registry.register(NetworkCollector(lambda: NetworkStats()))
        families = list(registry.collect())
    finally:
        verifier.close()
    return {family.name + ("_total" if family.type == "counter" else "") for family in families}


def test_the_metrics_table_lists_exactly_the_exposed_metrics():
    documented = set()
    for cell in _first_cells(_section("`/metrics`"), "| metric |"):
        documented.add(cell.split("{", 1)[0])
    assert documented == _exposed_metrics()


def test_every_metric_named_anywhere_in_the_guide_is_exposed():
    named = {name for text in _code_texts() for name in re.findall(r"\bsomnode_[a-z0-9_]+", text)}
    assert named and named <= _exposed_metrics()


# ---- log events and refusal reasons

def _documented_events() -> list[str]:
    return [name for cell in _first_cells(_section("Log lines"), "| event |") for name in cell.split(", ")]


def _code_events() -> set[str]:
    events = set()
    for path in (ROOT / "node").rglob("*.py"):
        for message in LOG_CALL.findall(path.read_text(encoding="utf-8")):
            events.add(message.split()[0])
    assert len(events) > 10, "the log call pattern no longer matches the code"
    return events


def test_every_documented_log_event_is_logged_by_the_node():
    documented = _documented_events()
    assert len(documented) == len(set(documented)), "an event is listed twice"
    assert set(documented) <= _code_events()


@pytest.mark.parametrize("event", sorted(_code_events()))
def test_every_log_event_of_the_node_is_in_the_guide(event):
    assert re.search(rf"`(?:event=)?{re.escape(event)}[` ]", DOC), f"log event {event!r} is not in docs/operators.md"


def test_the_refusal_table_lists_exactly_the_handshake_refusals():
    documented = [name for cell in _first_cells(_section("Log lines"), "| reason |") for name in cell.split(", ")]
    assert sorted(documented) == sorted(reason.value for reason in Refusal)
