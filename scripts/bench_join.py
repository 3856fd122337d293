"""Time joining a long, pruned chain by state sync against replaying it (tests/join_scenario.py).

    python scripts/bench_join.py [--blocks 2000] [--retain 200] [--interval 100]

Prints one JSON line: the chain's length, the snapshot used, and the seconds
validator5 and observer1 (state sync) and observer2 (full replay) took to
reach the network's height, with the ratios to the replay.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import join_scenario  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=2000)
    parser.add_argument("--retain", type=int, default=200)
    parser.add_argument("--interval", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="somnode-join-") as directory:
        report = join_scenario.run(Path(directory), args.blocks, args.retain, args.interval)
    print(json.dumps({
        "blocks": report.blocks, "snapshot_height": report.snapshot_height,
        "validator_sync_s": round(report.validator_sync_s, 2), "observer_sync_s": round(report.observer_sync_s, 2),
        "replay_s": round(report.replay_s, 2),
        "validator_ratio": round(report.validator_sync_s / report.replay_s, 3),
        "observer_ratio": round(report.observer_sync_s / report.replay_s, 3),
    }))


if __name__ == "__main__":
    main()
