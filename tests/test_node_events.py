"""The event stream of a running validator shows each committed block exactly as GET /v1/blocks does."""

from __future__ import annotations

import asyncio

import aiohttp

from node.core.keys import KeyPair
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


def test_a_committed_transfer_is_shown_with_its_fields_and_counted_from_the_ledger(tmp_path):
    network = make_network(tmp_path / "net", validators=1)
    wallet = Wallet(network.bank_key_files[0], network.genesis.chain_id)
    payee = KeyPair.generate()
    transfers = [wallet.transfer(payee.public_key, 1250 + i, memo=f"invoice {i}") for i in range(3)]
    with running(network) as net:
        client = net.client(0)
        assert all(r["accepted"] for r in client.submit([stx.raw for stx in transfers]))
        for i, stx in enumerate(transfers):
            doc = client.wait_committed(stx.hash.hex())
            assert doc["result"] == "ok"
            assert doc["tx"] == {"kind": "transfer", "sender": wallet.key.address, "recipient": payee.address,
                                 "amount": 1250 + i, "amount_som": f"12.{50 + i}", "nonce": i,
                                 "memo": f"invoice {i}"}
        assert client.status()["committed_txs"] == 3
    with running(network) as net:  # a restart counts from the ledger, not from zero
        status = net.client(0).status()
        assert status["committed_txs"] == 3
        assert status["supply_som"] == "1000000.00"
