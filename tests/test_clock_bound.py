"""A proposer whose clock runs ahead: its proposals are prevoted nil, and the next round commits.

Four validator processes; validator 4 runs under libfaketime (Debian's
``faketime`` package, installed by scripts/_test_tools.sh), thirty seconds
ahead of the others, far beyond the two-second bound.  Whenever it proposes,
the honest validators find the block's time too far ahead of their clocks,
log ``consensus.invalid_value … reason=time_too_far_ahead`` and prevote nil;
the round changes and another proposer's block commits.  No committed block
is validator 4's, and every committed block's time is within the bound of
the clocks that committed it.
"""

from __future__ import annotations

import glob
import os
import time

import pytest

from node.core.address import encode_address
from node.core.block import DEFAULT_MAX_TIME_AHEAD_MS
from tests.localnet import make_network, node_log, running

AHEAD_S = 30
LIBFAKETIME = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))


@pytest.mark.skipif(not LIBFAKETIME and os.environ.get("CI") != "true",
                    reason="libfaketime missing (as root: apt-get install faketime)")
def test_a_proposal_stamped_too_far_ahead_is_prevoted_nil_and_the_next_round_commits(tmp_path):
    assert LIBFAKETIME, "libfaketime is not installed"
    network = make_network(tmp_path / "net", validators=4, timeout_propose_ms=800)
    fast = encode_address(network.genesis.validators[3].public_key)
    with running(network, start=False) as net:
        for index in range(3):
            net.start(index)
        net.start(3, {"LD_PRELOAD": LIBFAKETIME[0], "FAKETIME": f"+{AHEAD_S}s"})
        net.wait_ready()
        deadline = time.monotonic() + 90
        while "reason=time_too_far_ahead" not in node_log(net, 0) + node_log(net, 1) + node_log(net, 2):
            assert time.monotonic() < deadline, "no proposal was refused as too far ahead:\n" + node_log(net, 3)
            time.sleep(0.2)
        start = net.status(0)["height"]
        net.wait_height(start + 8, timeout_s=90, indices=[0, 1, 2])
        top = min(net.status(i)["height"] for i in range(3))
        blocks = [net.client(0).block(height) for height in range(1, top + 1)]
        assert all(block["proposer"] != fast for block in blocks), "a block stamped 30 s ahead was committed"
        assert any(block["commit"]["round"] > 0 for block in blocks), "no height needed a second round"
        now_ms = int(time.time() * 1000)
        assert all(block["time_ms"] <= now_ms + DEFAULT_MAX_TIME_AHEAD_MS for block in blocks)
        assert len({net.client(i).block(top)["app_hash"] for i in range(4) if net.status(i)}) == 1
