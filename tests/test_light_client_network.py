"""``somnode verify`` against a running network: what it proves, and what a lying node cannot slip past it.

Four validator processes.  A bank pays a customer, the board freezes another
account and adds a fifth validator key (a set change the light client must
follow), and a few heights pass.  Then the real command, trusting only the
genesis file, follows every header, proves the customer's balance, a stranger's
absence, the frozen account with its order, and the payment's inclusion.

Then the same command asks through a proxy in front of one node that alters
what the node says: one hex digit of an account proof's value, of a proof's
entry, of a block's header bytes, or one precommit signature.  Each time it
must exit 1 naming the check that failed.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from node.core.amount import parse_som
from node.core.keys import KeyPair
from tests.localnet import Wallet, board_decides, make_network, node_log, running, wait_for

Forge = Callable[[str, dict], dict]


def verify(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "node", "verify", *map(str, args)], capture_output=True, text=True,
                          timeout=60)


def flip(text: str, at: int) -> str:
    """``text`` with its hex digit at ``at`` changed."""
    return text[:at] + ("1" if text[at] == "0" else "0") + text[at + 1:]


class ForgingProxy:
    """An HTTP proxy on 127.0.0.1 in front of one node's API; ``forge`` rewrites the JSON answers it passes on."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.forge: Forge = lambda path, document: document
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="forging-proxy", daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.Response:
        assert self._session is not None
        async with self._session.get(self.upstream + request.path_qs) as answer:
            body = await answer.read()
            status = answer.status
        if status == 200:
            body = json.dumps(self.forge(request.path, json.loads(body))).encode()
        return web.Response(body=body, status=status, content_type="application/json")


def test_somnode_verify_follows_a_set_change_proves_state_and_catches_forgeries(tmp_path):
    network = make_network(tmp_path / "net", validators=4)
    genesis_file = network.directory / "genesis.json"
    chain_id = network.genesis.chain_id
    customer, stranger, suspect, fifth = (KeyPair.generate() for _ in range(4))
    order_document = tmp_path / "order.pdf"
    order_document.write_bytes(b"%PDF order 2-77/26 of the Leninsky District Court of Bishkek")
    board = list(network.board_key_files[:2])
    with running(network) as net:
        net.wait_height(2)
        api = net.api_urls[0]
        proxy = ForgingProxy(api)
        try:
            # A bank pays the customer; the board freezes the suspect and adds a fifth validator key.
            payment = Wallet(network.bank_key_files[0], chain_id).transfer(customer.public_key, parse_som("1234.56"))
            assert net.client(0).submit([payment.raw])[0]["accepted"]
            paid_at = net.client(0).wait_committed(payment.hash.hex())["height"]
            frozen_at = board_decides(tmp_path, "freeze", [
                "freeze", "--account", suspect.address, "--scope", "both", "--authority",
                "Leninsky District Court of Bishkek", "--number", "2-77/26", "--date", "2026-12-01",
                "--document", str(order_document)], api, board)
            added_at = board_decides(tmp_path, "add", ["set-validator", "--validator", fifth.address, "--power", "10"],
                                     api, board)
            wait_for(lambda: net.status(0)["height"] >= added_at + 4, "heights after the set change", 60)

            done = verify("--genesis", genesis_file, "--node", api, "--account", customer.address,
                          "--absent", stranger.address, "--orders", suspect.address, "--tx", payment.hash.hex())
            assert done.returncode == 0, done.stdout + done.stderr + node_log(net, 0)
            said = done.stdout
            assert "the node serves this genesis" in said
            assert f"set       from height {added_at + 2}: " in said and f"{fifth.address} 0->10" in said, said
            assert f"account   {customer.address} at height " in said and "balance 1234.56 som, nonce 0" in said
            assert f"absent    {stranger.address}: no account" in said
            assert f"account   {suspect.address}" in said and "frozen outgoing and incoming" in said
            assert f"order     {suspect.address} at height {frozen_at} index 0: freeze both" in said, said
            assert f"tx        {payment.hash.hex()}: in block {paid_at} at index 0, result ok" in said
            assert said.rstrip().splitlines()[-1].startswith("verified  ")

            # The same questions through a proxy that alters one thing each time.
            proxy.start()
            top = net.status(0)["height"]

            def account_value(path: str, document: dict) -> dict:
                if path.endswith(f"/{customer.address}/proof"):
                    document["value"] = flip(document["value"], 20)
                return document

            def proof_entry(path: str, document: dict) -> dict:
                if path == "/v1/state/proof":
                    document["proof"]["entries"][0] = flip(document["proof"]["entries"][0], 100)
                return document

            def header_byte(path: str, document: dict) -> dict:
                if path == "/v1/blocks/3":
                    document["header"] = flip(document["header"], len(document["header"]) - 6)
                return document

            def signature(path: str, document: dict) -> dict:
                if path == f"/v1/blocks/{added_at + 2}":
                    precommit = document["commit"]["precommits"][0]
                    precommit["signature"] = flip(precommit["signature"], 2)
                return document

            for forge, options, failure in (
                (account_value, ["--account", customer.address],
                 f"account {customer.address}: state proof: proof: the bucket does not hold this record"),
                (proof_entry, ["--orders", suspect.address],
                 f"order of {suspect.address} at height {frozen_at} index 0: state proof: proof:"),
                (header_byte, [], "block 3: certificate: certificate decides value"),
                (signature, [], f"block {added_at + 2}: certificate: bad signature from"),
            ):
                proxy.forge = forge
                done = verify("--genesis", genesis_file, "--node", proxy.url, "--height", str(top - 1), *options)
                assert done.returncode == 1, (forge.__name__, done.stdout, done.stderr)
                assert done.stderr.startswith(f"somnode verify: FAILED: {failure}"), (forge.__name__, done.stderr)
                assert "Traceback" not in done.stderr
        finally:
            proxy.stop()
