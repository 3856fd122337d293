"""The event stream of a running validator shows each committed block exactly as GET /v1/blocks does."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.localnet import Wallet, make_network, running


def test_a_block_event_is_the_block_document(tmp_path):
    network = make_network(tmp_path / "net", validators=1)
    wallets = [Wallet(path, network.genesis.chain_id) for path in network.bank_key_files[:1]]
    with running(network) as net:
        url = net.api_urls[0]
        transfers = [wallets[0].transfer(bytes([7]) * 32, 10 + i) for i in range(3)]
        wanted = {stx.hash.hex() for stx in transfers}

        async def watch() -> list[dict]:
            seen = []
            async with aiohttp.ClientSession() as session, session.ws_connect(f"{url}/v1/events") as ws:
                results = net.client(0).submit([stx.raw for stx in transfers])
                assert all(r["accepted"] for r in results), results
                while wanted - {h for doc in seen for h in doc["txs"]}:
                    event = await ws.receive_json(timeout=30)
                    assert event["type"] == "block"
                    seen.append(event["block"])
            return seen

        for doc in asyncio.run(watch()):
            assert doc == net.client(0).block(doc["height"])
