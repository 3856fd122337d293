"""Four validator processes that keep only their last blocks (``storage.retain_blocks``).

They prune in the background while committing, say so for a pruned block,
and keep serving the blocks they kept; a validator that was down while the
others pruned past it finds no peer to catch up from and says so once.
"""

from __future__ import annotations

import pytest

from node.app.config import MIN_RETAIN_BLOCKS
from node.tools.client import ApiClientError
from tests.localnet import make_network, node_log, running
from tests.test_network_integration import TIMEOUT_S

RETAIN = MIN_RETAIN_BLOCKS


def test_validators_prune_while_committing_and_a_validator_left_behind_says_it_cannot_catch_up(tmp_path):
    network = make_network(tmp_path / "net", validators=4, retain_blocks=RETAIN)
    with running(network) as net:
        try:
            net.wait_height(3)
            net.stop(3)  # left behind at a low height
            behind = max(3, net.status(0)["height"])
            net.wait_height(behind + RETAIN + RETAIN // 4 + 8, timeout_s=TIMEOUT_S * 2, indices=[0, 1, 2])
            statuses = [net.status(i) for i in range(3)]
            for status in statuses:
                assert 1 < status["earliest_height"] <= status["height"] - RETAIN + 1, status
            earliest = max(status["earliest_height"] for status in statuses)
            with pytest.raises(ApiClientError) as pruned:
                net.client(0).block(1)
            assert pruned.value.status == 410 and pruned.value.code == "block_pruned", pruned.value
            kept = net.client(0).block(earliest)
            assert kept["height"] == earliest and kept["commit"]["precommits"]

            net.start(3)
            net.wait_ready(indices=[3])
            deadline_height = net.status(0)["height"] + 20
            net.wait_height(deadline_height, timeout_s=TIMEOUT_S, indices=[0, 1, 2])
            assert net.status(3)["height"] < earliest, "it cannot have caught up from pruned peers"
            log = (net.config_files[3].parent / "node.log").read_text()
            assert log.count("catchup.pruned") == 1, node_log(net, 3)
        except AssertionError:
            print(node_log(net, 0))
            raise
