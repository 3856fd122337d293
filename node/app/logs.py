"""Structured logging: one event per line, ``key=value`` fields.

Modules log an event name followed by fields (``consensus.commit height=7
round=0 ...``); this adds the time, level and source, so a line can be read by
a person and split by a log shipper without a parser of its own.
"""

from __future__ import annotations

import logging
import sys
import time

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class _UtcFormatter(logging.Formatter):
    """``ts`` in UTC ISO 8601 with milliseconds and no spaces, so a plain key=value splitter reads it."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def configure_logging(level: str, node_name: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UtcFormatter(
        f"ts=%(asctime)s level=%(levelname)s node={node_name} logger=%(name)s event=%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS.get(level, logging.INFO))
    # aiohttp's access log would add a line per API request at info level.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
