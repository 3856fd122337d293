"""scripts/bench_pipeline.py still drives the real admission and commit path end to end (a few blocks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_pipeline_benchmark_runs_and_reports_every_stage(tmp_path):
    out = tmp_path / "pipeline.json"
    done = subprocess.run(
        [sys.executable, "scripts/bench_pipeline.py", "--accounts", "20", "--txs", "1200", "--block", "500",
         "--repeat", "1", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["txs"] == 1200 and report["block"] == 500
    assert set(report["us_per_transfer"]) == {"admission", "answer", "reap and build", "valid", "commit",
                                              "mempool update"}
    assert all(value > 0 for value in report["us_per_transfer"].values())
