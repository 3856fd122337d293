"""The benchmark's submitter against a node that pushes back: a 503 (JSON, like every
API error) means wait and resend; any other error stops the run with the answer."""

from __future__ import annotations

import aiohttp
import msgpack
import pytest
from aiohttp import web

from node.core.keys import KeyPair
from node.core.tx import Transaction, TxKind
from node.tools.bench import BenchError, _submit


def transfers(count: int) -> list:
    key, to = KeyPair.generate(), KeyPair.generate().public_key
    return [Transaction(TxKind.TRANSFER, key.public_key, n, 1, to).sign(key, "som-test") for n in range(count)]


async def serve(handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/v1/txs", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


async def test_a_503_is_waited_out_and_the_batch_sent_again():
    answers = []

    async def handler(request: web.Request) -> web.Response:
        raws = msgpack.unpackb(await request.read())
        if not answers:
            answers.append(503)
            return web.json_response({"error": {"code": "mempool_full", "message": "full"}}, status=503,
                                     headers={"Retry-After": "0.1"})
        answers.append(200)
        return web.Response(body=msgpack.packb({"results": [{"accepted": True, "code": "accepted"}
                                                            for _ in raws]}),
                            content_type="application/msgpack")

    runner, url = await serve(handler)
    txs, submit_time, refused, progress = transfers(10), {}, [], [0]
    try:
        async with aiohttp.ClientSession() as session:
            await _submit(session, url, txs, 10, 0.0, submit_time, refused, progress)
    finally:
        await runner.cleanup()
    assert answers == [503, 200]
    assert set(submit_time) == {stx.hash for stx in txs} and not refused and progress == [10]


async def test_any_other_error_stops_the_run_with_the_answer():
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"error": {"code": "internal", "message": "boom"}}, status=500)

    runner, url = await serve(handler)
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(BenchError, match="answered 500.*internal"):
                await _submit(session, url, transfers(3), 3, 0.0, {}, [], [0])
    finally:
        await runner.cleanup()
