"""Four validator processes with the heartbeat (node/host/heartbeat.py): an idle network commits an
empty block only every ``empty_block_interval``, yet a transfer commits without waiting for it, and the
block that certifies the transfer follows at once too.

The interval here is a few seconds so that the test sees heartbeats, and each transfer is submitted
just after one, when the next is a whole interval away.  How soon a transfer to an idle network
commits is measured by scripts/bench_idle.py, not asserted here.
"""

from __future__ import annotations

import time

from tests.localnet import Wallet, make_network, node_log, running
from tests.test_network_integration import submit, wait_committed

INTERVAL_S = 6
IDLE_S = 13


def heights(net) -> list[int]:
    return [net.status(i)["height"] for i in range(4)]


def test_an_idle_network_commits_only_heartbeats_and_a_transfer_commits_with_its_certifying_block(tmp_path):
    network = make_network(tmp_path / "net", validators=4, empty_block_interval_ms=INTERVAL_S * 1000)
    wallets = [Wallet(path, network.genesis.chain_id) for path in network.bank_key_files]
    with running(network) as net:
        try:
            net.wait_height(1)  # a new network commits its first block at once
            start = max(heights(net))
            time.sleep(IDLE_S)
            idle = max(heights(net)) - start
            # One heartbeat each INTERVAL_S; without it the same network commits several blocks a second.
            assert 1 <= idle <= IDLE_S // INTERVAL_S + 1, f"{idle} blocks in {IDLE_S} s of idling"
            assert min(heights(net)) >= start + 1, "every validator follows the heartbeat"

            for to in (1, 3):  # to a validator; which one proposes next is the schedule's business
                net.wait_height(max(heights(net)) + 1, timeout_s=INTERVAL_S + 5)  # a heartbeat just came
                payee = wallets[1].key.public_key
                [tx_hash] = submit(net, to, [wallets[0].transfer(payee, 250)])
                wait_committed(net, to, [tx_hash], timeout_s=INTERVAL_S / 2)  # not at the next heartbeat
                height = net.client(to).tx(tx_hash)["height"]
                # What the block did is certified by the next header: that block follows at once, and is empty.
                net.wait_height(height + 1, timeout_s=INTERVAL_S / 2)
                block, after = net.client(0).block(height), net.client(0).block(height + 1)
                assert after["tx_count"] == 0
                assert (after["previous_app_hash"], after["previous_results_hash"]) == \
                    (block["app_hash"], block["results_hash"])
                settled = max(heights(net))
                time.sleep(INTERVAL_S / 2)
                assert max(heights(net)) == settled, "after the certifying block the network idles again"
                wallets[1], wallets[0] = wallets[0], wallets[1]
        except AssertionError:
            print(node_log(net, 0))
            raise
