"""What the benchmark charges to a validator, and the options it refuses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from node import cli
from node.tools.bench import process_cpu_seconds


def test_a_validators_cpu_includes_its_helper_processes():
    """A validator verifies in child processes; leaving them out would flatter its CPU figure."""
    program = textwrap.dedent("""
        import subprocess, sys, time
        spin = "import time\\nend = time.process_time() + 0.6\\nwhile time.process_time() < end: pass\\ntime.sleep(60)"
        child = subprocess.Popen([sys.executable, "-c", spin])
        print(child.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)
    child = None
    try:
        child = int(parent.stdout.readline())
        deadline = time.monotonic() + 20
        while process_cpu_seconds(child) < 0.6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process_cpu_seconds(child) >= 0.6
        assert process_cpu_seconds(parent.pid) >= process_cpu_seconds(child)
    finally:
        if child is not None:
            os.kill(child, signal.SIGKILL)
        parent.kill()
        parent.wait()
        parent.stdout.close()


def test_no_lanes_is_refused(capsys):
    assert cli.main(["bench", "--lanes", "0", "--quiet"]) == 2
    assert "--lanes must be at least 1" in capsys.readouterr().err
