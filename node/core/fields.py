"""Checking and describing what people write by hand, for the config and genesis loaders.

A bank's operators edit the config (TOML) and exchange the genesis (JSON);
both loaders name the bad field and say what they found there, in the same
words, and both read network endpoints the same way.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_HOSTNAME_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
# Longer values are named by their kind only: a pasted blob would drown the message.
_SHOWN_CHARS = 40


def describe(value: object, *, mapping: str = "an object") -> str:
    """What ``value`` is, in words (``mapping``: what the format calls a key-value map)."""
    kind = {bool: "a boolean", int: "an integer", float: "a number with a fraction", str: "a string",
            list: "an array", dict: mapping, type(None): "null"}.get(type(value), type(value).__name__)
    shown = repr(value)
    return kind if len(shown) > _SHOWN_CHARS else f"{kind} ({shown})"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A TCP host and port, written ``host:port`` (``[v6]:port`` for IPv6)."""

    host: str
    port: int

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is outside 1..65535")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_endpoint(text: object) -> Endpoint:
    """Parse ``host:port``; raise ValueError saying what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"expected host:port, got {type(text).__name__}")
    bracketed = re.fullmatch(r"\[([^\]]+)\]:([0-9]{1,5})", text)
    plain = re.fullmatch(r"([^:\[\]]+):([0-9]{1,5})", text)
    match = bracketed or plain
    if match is None:
        raise ValueError(f"expected host:port, got {text!r}")
    host, port = match[1], int(match[2])
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in {text!r} is not an IPv6 address") from None
    elif not all(_HOSTNAME_LABEL.fullmatch(label) for label in host.split(".")):
        raise ValueError(f"{host!r} in {text!r} is not a host name or IPv4 address")
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} in {text!r} is outside 1..65535")
    return Endpoint(host, port)
