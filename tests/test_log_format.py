"""One log-event format, loggers named one way: checked on the source, so a new log call cannot drift.

Every logger is ``logging.getLogger(__name__)`` (the log line's ``logger=``
field then names the module), and every message starts with an event name
``area.event`` followed only by ``key=value`` fields, which is what
docs/operators.md promises a log shipper.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*ROOT.glob("node/**/*.py"), *ROOT.glob("consensus/**/*.py")])
LEVELS = {"debug", "info", "warning", "error", "critical", "exception"}
# An event name, then fields: a key and a value that is a %-placeholder or a word without spaces.
MESSAGE = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*( [a-z][a-z0-9_]*=(%[-0-9.]*[sdfr]|[^ %=]+)+)*")


def _calls(path: Path) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Call)]


def _log_calls() -> list[tuple[str, int, str]]:
    found = []
    for path in SOURCES:
        for call in _calls(path):
            func = call.func
            if (isinstance(func, ast.Attribute) and func.attr in LEVELS and isinstance(func.value, ast.Name)
                    and func.value.id == "log" and call.args):
                first = call.args[0]
                text = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
                found.append((str(path.relative_to(ROOT)), call.lineno, text))
    return found


def test_every_logger_is_named_after_its_module():
    for path in SOURCES:
        if path.name == "logs.py" and path.parent.name == "app":
            continue  # configures logging itself, third-party loggers included
        for call in _calls(path):
            func = call.func
            if isinstance(func, ast.Attribute) and func.attr == "getLogger" and call.args:
                argument = call.args[0]
                assert isinstance(argument, ast.Name) and argument.id == "__name__", \
                    f"{path.relative_to(ROOT)}:{call.lineno}: getLogger(__name__), not {ast.unparse(argument)}"


@pytest.mark.parametrize(("where", "line", "message"), _log_calls(), ids=lambda v: str(v))
def test_every_log_message_is_an_event_with_key_value_fields(where, line, message):
    assert message is not None, f"{where}:{line}: the message is a literal, so it can be checked"
    assert MESSAGE.fullmatch(message), f"{where}:{line}: {message!r} is not 'area.event key=value ...'"
