"""The one error shape every client mistake gets: ``{"error": {"code", "message"}}``.

Codes are stable strings that clients may branch on; messages are for people
and may change.  docs/api.md lists every code.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from aiohttp import web


class ErrorCode(StrEnum):
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    BODY_TOO_LARGE = "body_too_large"
    BAD_JSON = "bad_json"
    BAD_MSGPACK = "bad_msgpack"
    BAD_REQUEST = "bad_request"
    BAD_HEX = "bad_hex"
    BAD_ADDRESS = "bad_address"
    TOO_MANY_TXS = "too_many_txs"
    BLOCK_NOT_FOUND = "block_not_found"
    BLOCK_PRUNED = "block_pruned"
    HEIGHT_NOT_DECIDED = "height_not_decided"
    PROOF_UNAVAILABLE = "proof_unavailable"
    TX_NOT_COMMITTED = "tx_not_committed"
    RESULT_NOT_YET_PROVABLE = "result_not_yet_provable"
    MEMPOOL_FULL = "mempool_full"
    INTERNAL = "internal"


# Codes for the HTTP errors aiohttp raises itself (routing, body size, upgrade).
_CODE_BY_STATUS = {
    400: ErrorCode.BAD_REQUEST,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.BODY_TOO_LARGE,
}


class ApiError(Exception):
    """A request the API refuses, with the status, stable code and message the client gets."""

    def __init__(self, status: int, code: ErrorCode, message: str, headers: Mapping[str, str] | None = None) -> None:
        assert 400 <= status < 600, "an API error is a 4xx or 5xx answer"
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(status: int, code: ErrorCode, message: str,
                   headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def code_for_status(status: int) -> ErrorCode:
    """The stable code for an HTTP error raised by aiohttp rather than by a handler."""
    return _CODE_BY_STATUS.get(status, ErrorCode.BAD_REQUEST if status < 500 else ErrorCode.INTERNAL)
