"""Four validator processes on loopback: commits, crash, catch-up, loss of quorum.

One scenario in phases (a fresh network costs seconds): transfers submitted to
different nodes commit everywhere with one app hash; a SIGKILLed validator does
not stop the other three; restarted, it catches up and agrees; with two of four
down nothing commits, and commits resume when one returns.  At the end every
transaction submitted is committed exactly once and the balances add up.
"""

from __future__ import annotations

import time

from node.tools.client import ApiClientError
from tests.localnet import Wallet, make_network, node_log, running

TIMEOUT_S = 60


def common_app_hash(net, indices, height):
    hashes = {net.client(i).block(height)["app_hash"] for i in indices}
    return hashes


def wait_committed(net, index, tx_hashes, timeout_s=TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    pending = set(tx_hashes)
    while pending:
        for h in list(pending):
            try:
                if net.client(index).tx(h)["status"] == "committed":
                    pending.discard(h)
            except ApiClientError:
                pass
        if pending and time.monotonic() > deadline:
            raise AssertionError(f"{len(pending)} transactions not committed on validator{index + 1}")
        time.sleep(0.2)


def submit(net, index, txs):
    results = net.client(index).submit([stx.raw for stx in txs])
    assert all(r["accepted"] for r in results), results
    return [stx.hash.hex() for stx in txs]


def test_four_validators_commit_survive_a_crash_catch_up_and_need_a_quorum(tmp_path):
    network = make_network(tmp_path / "net", validators=4)
    genesis = network.genesis
    wallets = [Wallet(path, genesis.chain_id) for path in network.bank_key_files]
    start_balances = dict(genesis.balances)
    sent: list[tuple[int, int, int]] = []  # (from wallet, to wallet, amount)
    hashes: list[str] = []

    def transfers(count, to_nodes):
        # A client sends one account's transactions to one node, in nonce order;
        # different accounts go to different nodes.
        nonlocal hashes
        for k in range(count):
            src, dst = k % len(wallets), (k + 1) % len(wallets)
            stx = wallets[src].transfer(wallets[dst].key.public_key, 100 + k)
            sent.append((src, dst, 100 + k))
            hashes += submit(net, to_nodes[src % len(to_nodes)], [stx])

    with running(network) as net:
        try:
            # 1. Transfers submitted to every node commit; one app hash everywhere.
            transfers(12, [0, 1, 2, 3])
            wait_committed(net, 0, hashes)
            top = min(net.status(i)["height"] for i in range(4))
            net.wait_height(top)
            assert len(common_app_hash(net, range(4), top)) == 1

            # 2. SIGKILL validator 4: the other three keep committing.
            net.kill(3)
            before = net.status(0)["height"]
            transfers(9, [0, 1, 2])
            wait_committed(net, 0, hashes)
            assert net.status(0)["height"] > before

            # 3. Restarted, it catches up and agrees on the app hash.
            net.start(3)
            net.wait_ready(indices=[3])
            target = net.status(0)["height"]
            net.wait_height(target, indices=[3])
            assert len(common_app_hash(net, range(4), target)) == 1

            # 4. Two of four down: nothing commits.
            net.kill(2)
            net.kill(3)
            time.sleep(1.5)  # let in-flight heights settle
            stalled = [net.status(i)["height"] for i in (0, 1)]
            transfers(3, [0, 1])
            time.sleep(4)
            assert [net.status(i)["height"] for i in (0, 1)] == stalled
            assert all(net.client(0).tx(h)["status"] != "committed" for h in hashes[-3:])

            # 5. One returns: commits resume and the waiting transfers commit.
            net.start(2)
            wait_committed(net, 0, hashes)
            assert net.status(0)["height"] > max(stalled)
            net.start(3)
            final = net.status(0)["height"]
            net.wait_height(final)
            assert len(common_app_hash(net, range(4), final)) == 1

            # 6. Exactly once: every transaction committed, nonces and balances add up.
            expected = dict(start_balances)
            for src, dst, amount in sent:
                expected[wallets[src].key.public_key] -= amount
                expected[wallets[dst].key.public_key] += amount
            for i, wallet in enumerate(wallets):
                account = net.client(i % 4).account(wallet.key.address)
                assert account["nonce"] == wallet.nonce
                assert account["balance"] == expected[wallet.key.public_key]
            locations = {(s["height"], s["index"]) for s in (net.client(1).tx(h) for h in hashes)}
            assert len(locations) == len(hashes)
            assert net.status(0)["supply"] == sum(start_balances.values())
        except BaseException:
            for i in range(4):
                print(f"---- validator{i + 1} log tail ----\n{node_log(net, i)}")
            raise
