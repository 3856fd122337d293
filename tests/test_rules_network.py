"""The digital som's rules on a running network, with the banks' and the board's own commands.

Four validator processes, transfers among the banks flowing the whole time:

1. bank1 registers a customer's wallet (``somnode register``) in tier 1, linked to bank1's account;
2. a payment past the wallet's holding limit credits the wallet up to the limit and passes the
   rest to the linked account;
3. the wallet pays until its daily limit refuses the next payment;
4. upgraded to tier 2, it pays on in a steady stream, and a board order freezes it in the middle
   of that stream: its later payments are refused on every node;
5. the board seizes part of its balance into a court's deposit account, then lifts the freeze,
   and it pays again;
6. all nodes agree on the app hash of every height, and on the wallet's order history.
"""

from __future__ import annotations

import hashlib
import threading
import time

from node.core.amount import parse_som
from node.core.keys import KeyPair, read_key_file, write_key_file
from node.core.tx import Transaction, TxKind
from node.tools.client import ApiClientError
from tests.localnet import TransferLoad, Wallet, board_decides, make_network, running, somnode, wait_for

LOAD_NODES = (1, 2, 3)


class WalletStream(threading.Thread):
    """The customer paying bank3 0.01 som every 50 ms through validator1, recording what each became."""

    def __init__(self, net, key: KeyPair, chain_id: str, payee: bytes, nonce: int) -> None:
        super().__init__(name="wallet-stream", daemon=True)
        self.net, self.key, self.chain_id, self.payee, self.nonce = net, key, chain_id, payee, nonce
        self.accepted: list[str] = []
        self.refused_codes: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.05):
            stx = Transaction(TxKind.TRANSFER, self.key.public_key, self.nonce, 1, self.payee).sign(
                self.key, self.chain_id)
            try:
                result = self.net.client(0).submit([stx.raw])[0]
            except ApiClientError:
                continue
            if result["accepted"]:
                self.accepted.append(stx.hash.hex())
                self.nonce += 1
            else:
                self.refused_codes.append(result["code"])
                if result["code"] == "stale_nonce":
                    self.nonce += 1

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


def pay(net, key: KeyPair, chain_id: str, to: bytes, som: str, node: int = 0) -> dict:
    """One transfer from ``key``, waited for; its committed status."""
    client = net.client(node)
    nonce = client.account(key.address)["pending_nonce"]
    stx = Transaction(TxKind.TRANSFER, key.public_key, nonce, parse_som(som), to).sign(key, chain_id)
    result = client.submit([stx.raw])[0]
    assert result["accepted"], result
    return client.wait_committed(stx.hash.hex())


def test_tiers_the_waterfall_limits_and_legal_orders_on_a_live_network(tmp_path):
    network = make_network(tmp_path / "net", validators=4, banks=4)
    chain_id = network.genesis.chain_id
    # bank1 registers the customer and is its linked account, bank2 pays it, bank3 and bank4 carry the load.
    bank1, bank2, bank3, _ = (read_key_file(path) for path in network.bank_key_files)
    customer, court = KeyPair.generate(), KeyPair.generate()
    order_document = tmp_path / "order.pdf"
    order_document.write_bytes(b"%PDF order 2-1234/26 of the Pervomaisky District Court of Bishkek")
    board = list(network.board_key_files[:2])
    reference = ["--authority", "Pervomaisky District Court of Bishkek", "--number", "2-1234/26",
                 "--date", "2026-11-30", "--document", str(order_document)]
    with running(network) as net:
        net.wait_height(2)
        api = net.api_urls[0]
        load = TransferLoad(net, [Wallet(network.bank_key_files[k], chain_id) for k in (2, 3)], LOAD_NODES)
        load.start()
        try:
            # 1. Registration by the customer's bank, with its own command.
            said = somnode("register", "--key", network.bank_key_files[0], "--wallet", customer.address,
                           "--tier", "1", "--linked", bank1.address, "--node", api)
            assert "result=ok" in said, said
            account = net.client(2).account(customer.address)
            assert (account["tier"], account["tier_name"]) == (1, "basic KYC")
            assert account["registering_bank"] == account["linked_account"] == bank1.address

            # 2. The waterfall: 100,000 + 80,000 som to a wallet that may hold 150,000.
            assert pay(net, bank2, chain_id, customer.public_key, "100000")["result"] == "ok"
            bank1_before = net.client(0).account(bank1.address)["balance"]
            status = pay(net, bank2, chain_id, customer.public_key, "80000")
            assert status["result"] == "ok"
            assert status["waterfall"]["credited_som"] == "50000.00"
            assert status["waterfall"]["passed_on_som"] == "30000.00"
            assert status["waterfall"]["linked_account"] == bank1.address
            assert net.client(1).account(customer.address)["balance"] == parse_som("150000")
            assert net.client(1).account(bank1.address)["balance"] == bank1_before + parse_som("30000")

            # 3. The daily limit: 150,000 som a day out of tier 1.
            for _ in range(3):
                assert pay(net, customer, chain_id, bank3.public_key, "50000")["result"] == "ok"
            assert pay(net, bank2, chain_id, customer.public_key, "1000")["result"] == "ok"
            assert pay(net, customer, chain_id, bank3.public_key, "0.01")["result"] == "over_daily_limit"
            assert net.client(3).account(customer.address)["limits"]["daily_out_left"] == 0

            # 4. Upgraded to tier 2, the customer pays on in a stream, and is frozen in the middle of it.
            assert "result=ok" in somnode("register", "--key", network.bank_key_files[0], "--wallet",
                                          customer.address, "--tier", "2", "--linked", bank1.address, "--node", api)
            pay(net, bank2, chain_id, customer.public_key, "20000")
            stream = WalletStream(net, customer, chain_id, bank3.public_key,
                                  net.client(0).account(customer.address)["pending_nonce"])
            stream.start()
            try:
                wait_for(lambda: len(stream.accepted) >= 20, "the customer's stream flowed")
                frozen_at = board_decides(tmp_path, "freeze", ["freeze", "--account", customer.address,
                                                               "--scope", "both", *reference], api, board)
                wait_for(lambda: "sender_frozen" in stream.refused_codes, "the stream was refused")
            finally:
                stream.stop()
            for index in range(4):
                stx = Transaction(TxKind.TRANSFER, customer.public_key, stream.nonce, 1, bank3.public_key).sign(
                    customer, chain_id)
                result = net.client(index).submit([stx.raw])[0]
                assert (result["accepted"], result["code"]) == (False, "sender_frozen"), (index, result)
                assert net.client(index).account(customer.address)["frozen"] == {"outgoing": True,
                                                                                  "incoming": True}
            # What the stream sent before the freeze committed; what was in flight was refused in its block
            # or dropped from the mempool when the freeze committed; nothing else.
            for tx_hash in stream.accepted:
                status = net.client(0).tx(tx_hash)
                if status["status"] == "committed" and status["result"] == "ok":
                    assert status["height"] <= frozen_at, status
                elif status["status"] == "committed":
                    assert (status["result"], status["height"] >= frozen_at) == ("sender_frozen", True), status
                else:
                    assert status["status"] == "unknown", status

            # 5. A seizure into the court's deposit account, then the freeze is lifted.
            write_key_file(tmp_path / "court.json", court)
            balance = net.client(0).account(customer.address)["balance"]
            board_decides(tmp_path, "seize", ["seize", "--account", customer.address, "--amount", "10000",
                                              "--to", court.address, *reference], api, board)
            assert net.client(2).account(customer.address)["balance"] == balance - parse_som("10000")
            assert net.client(2).account(court.address)["balance"] == parse_som("10000")
            board_decides(tmp_path, "unfreeze", ["unfreeze", "--account", customer.address, "--scope", "both",
                                                 *reference], api, board)
            assert pay(net, customer, chain_id, bank3.public_key, "1", node=3)["result"] == "ok"
        finally:
            load.stop()

        # 6. One history and one app hash everywhere.
        assert load.accepted and not load.refused, load.refused[:3]
        histories = [net.client(i).orders(customer.address)["orders"] for i in range(4)]
        assert all(history == histories[0] for history in histories)
        assert [order["order"] for order in histories[0]] == ["freeze", "seize", "unfreeze"]
        assert histories[0][0]["height"] == frozen_at
        assert histories[0][1]["reference"]["document_sha256"] == hashlib.sha256(
            order_document.read_bytes()).hexdigest()
        top = min(net.status(i)["height"] for i in range(4))
        for height in range(1, top + 1):
            assert len({net.client(i).block(height)["app_hash"] for i in range(4)}) == 1, height
        deadline = time.monotonic() + 30
        while not all(net.client(0).tx(h)["status"] == "committed" for h in load.accepted[-10:]):
            assert time.monotonic() < deadline
            time.sleep(0.2)
