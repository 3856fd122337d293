"""Middlewares: every failure becomes the JSON error shape, and every answer is counted.

Client mistakes never surface as a 500 and never take the node down: handler
errors are ``ApiError``s, aiohttp's own HTTP errors (404, 405, 413, ...) are
re-shaped, and anything unexpected is logged with its traceback and answered
with a 500 ``internal`` that reveals nothing about the node's insides.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from node.api.errors import ApiError, ErrorCode, code_for_status, error_response
from node.app.metrics import NodeMetrics

log = logging.getLogger(__name__)

UNMATCHED_ROUTE = "unmatched"
# Headers that must survive the re-shaping of an aiohttp HTTP error.
_KEPT_HEADERS = ("Allow", "Retry-After")


def route_label(request: web.Request) -> str:
    """The route's path template: a bounded label, unlike the raw path a client chose."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {name: exc.headers[name] for name in _KEPT_HEADERS if name in exc.headers}
        return error_response(exc.status, code_for_status(exc.status), _describe(request, exc), headers)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("api.internal_error method=%s route=%s", request.method, route_label(request))
        return error_response(500, ErrorCode.INTERNAL, "internal error; the node logged the details")


def _describe(request: web.Request, exc: web.HTTPException) -> str:
    if exc.status == 404:
        return f"no endpoint at {request.path}"
    if exc.status == 405:
        return f"{request.method} is not allowed on {request.path}; allowed: {exc.headers.get('Allow', 'none')}"
    return exc.text or exc.reason


def metrics_middleware(metrics: NodeMetrics) -> Middleware:
    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            metrics.observe_api_request(route_label(request), status)

    return count
