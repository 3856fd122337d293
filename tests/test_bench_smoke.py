"""A short run of the end-to-end benchmark: it must pass its own correctness
checks (every transfer committed exactly once, nonces, supply, one app hash).
Speed is not asserted here; `somnode bench` reports it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from node.tools.bench import format_table, run_bench, to_json
from node.tools.plot import write_plot


def test_short_benchmark_run_passes_its_checks(tmp_path):
    result = run_bench(tmp_path / "net", validators=4, accounts=40, txs=3000, max_block_txs=500,
                       progress=False)
    print(format_table([result]))
    assert result.checks and all(result.checks.values()), result.checks
    assert result.committed == result.submitted == 3000
    document = json.loads(to_json([result]))["runs"][0]
    for name in ("validators", "tps", "p50_ms", "p95_ms", "p99_ms", "verify_ceiling", "efficiency",
                 "committed", "submitted", "timeline"):
        assert name in document
    assert sum(point.tps for point in result.timeline) * result.timeline_step_s == result.committed
    write_plot(tmp_path / "plot.html", [result], cpus=2)
    assert ET.parse(tmp_path / "plot.html").getroot().tag.endswith("html")
