"""A validator killed right after it made a precommit durable comes back locked on that value.

Four validator processes.  Validator 4 runs with a fail point that ends the
process the instant its write-ahead log holds a precommit for a value at
height 3 or above, before the precommit leaves the process (the moment a
power cut is most harmful: the vote is signed, the lock taken, nothing
sent).  Restarted without the fail point, it replays its log: its replay line
names the precommitted value as its lock, and the network goes on
committing, with all four agreeing.
"""

from __future__ import annotations

import re
import time

from node.host.failpoints import ENVIRONMENT_VARIABLE, EXIT_STATUS, SIGNED_PRECOMMIT
from tests.localnet import make_network, node_log, running

FAILPOINT_LINE = re.compile(r"event=failpoint\.exit point=signed-precommit height=(\d+) round=(\d+) "
                            r"value=([0-9a-f]{64})")
REPLAY_LINE = re.compile(r"event=wal\.replay height=(\d+) messages=(\d+) own=(\d+) signing_state=\S+ "
                         r"locked_round=(-?\d+) locked_value=(\S+)")


def test_a_validator_killed_after_its_precommit_restarts_locked_on_that_value(tmp_path):
    network = make_network(tmp_path / "net", validators=4)
    with running(network, start=False) as net:
        for index in range(3):
            net.start(index)
        net.start(3, {ENVIRONMENT_VARIABLE: f"{SIGNED_PRECOMMIT}@3"})
        net.wait_ready(indices=[0, 1, 2])
        deadline = time.monotonic() + 60
        while net.alive(3):
            assert time.monotonic() < deadline, f"the fail point never fired:\n{node_log(net, 3)}"
            time.sleep(0.1)
        assert net.processes[3].returncode == EXIT_STATUS, node_log(net, 3)
        crash = FAILPOINT_LINE.search(node_log(net, 3))
        assert crash, node_log(net, 3)
        height, round, value = int(crash[1]), int(crash[2]), crash[3]

        net.start(3)
        net.wait_ready(indices=[3])
        replays = REPLAY_LINE.findall(node_log(net, 3))
        assert replays, node_log(net, 3)
        replay_height, _, own, locked_round, locked_value = replays[-1]
        assert (int(replay_height), int(locked_round), locked_value) == (height, round, value), replays[-1]
        assert int(own) >= 2, "its prevote and precommit at least were replayed"

        net.wait_height(height + 3, timeout_s=60)
        hashes = {net.client(i).block(height)["hash"] for i in range(4)}
        assert hashes == {value}, "the height was decided for the value the restarted validator was locked on"
        top = min(net.status(i)["height"] for i in range(4))
        assert len({net.client(i).block(top)["app_hash"] for i in range(4)}) == 1
