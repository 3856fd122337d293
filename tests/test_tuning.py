"""The interpreter settings a validator runs with, applied in a process of its own."""

from __future__ import annotations

import subprocess
import sys


def test_a_validator_process_runs_with_the_tuned_switch_interval_and_collector():
    program = (
        "import gc, sys\n"
        "from node.app.tuning import GC_THRESHOLDS, tune_interpreter\n"
        "from node.verifier.scheduler import GIL_SWITCH_INTERVAL_S\n"
        "assert gc.get_threshold() != GC_THRESHOLDS and gc.get_freeze_count() == 0\n"
        "tune_interpreter()\n"
        "assert sys.getswitchinterval() == GIL_SWITCH_INTERVAL_S\n"
        "assert gc.get_threshold() == GC_THRESHOLDS\n"
        "assert gc.get_freeze_count() > 1000, gc.get_freeze_count()\n"
        "assert gc.isenabled()\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
