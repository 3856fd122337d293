"""Validators and an observer join a long, pruned chain by state sync, past a peer serving damaged chunks.

The scenario is tests/join_scenario.py.  The default run is a short chain;
``SOMNODE_LONG=1`` runs the issue's 2,000 blocks with 200 kept, and
scripts/bench_join.py reports the join times against a full replay.
"""

from __future__ import annotations

import pytest

from tests import join_scenario


def test_nodes_join_a_pruned_chain_by_state_sync_and_refuse_a_damaged_snapshot(tmp_path):
    report = join_scenario.run(tmp_path, blocks=300, retain=100, interval=50)
    assert report.snapshot_height >= 300


@pytest.mark.long
def test_nodes_join_a_chain_of_two_thousand_blocks_by_state_sync(tmp_path):
    report = join_scenario.run(tmp_path, blocks=2000, retain=200, interval=100)
    assert report.snapshot_height >= 2000
