"""A validator 1,000 blocks behind fetches the blocks with their commit
certificates from its peers, checks them, applies them and joins consensus
with the same app hash as everyone else.

The chain is built by all four validators; then one loses its ledger (a
replaced disk: the ledger directory is gone, the signing state is kept, as
docs/operators.md requires) and rebuilds it from its peers.
"""

from __future__ import annotations

import shutil
import time

from tests.localnet import make_network, node_log, running

BEHIND = 1000


def test_a_validator_1000_blocks_behind_catches_up_and_joins(tmp_path):
    network = make_network(tmp_path / "net", validators=4, empty_block_wait_ms=0)
    with running(network) as net:
        try:
            net.wait_height(BEHIND, timeout_s=600)
            net.stop(3)
            shutil.rmtree(net.config_files[3].parent / "data" / "ledger")
            net.start(3)
            net.wait_ready(indices=[3])
            assert net.status(3)["height"] == 0
            target = net.status(0)["height"]
            started = time.monotonic()
            net.wait_height(target, timeout_s=300, indices=[3])
            print(f"caught up {target} blocks in {time.monotonic() - started:.1f} s")
            # Same history, same state, and it takes part in consensus again.
            assert net.client(3).block(1)["hash"] == net.client(0).block(1)["hash"]
            assert net.client(3).block(target)["app_hash"] == net.client(0).block(target)["app_hash"]
            later = target + 5
            net.wait_height(later, timeout_s=60)
            assert len({net.client(i).block(later)["app_hash"] for i in range(4)}) == 1
        except BaseException:
            print(node_log(net, 3))
            raise
