"""Interpreter settings for a validator process, applied by ``somnode run`` before the node starts.

Both trade a little of what CPython's defaults protect against for throughput
on the admission path, and both were measured (docs/performance.md):

* **The GIL switch interval** (``GIL_SWITCH_INTERVAL_S``, see
  node/verifier/scheduler.py): threads that verify in-process are not held
  up for whole milliseconds while the event loop runs Python.
* **The cyclic garbage collector's first threshold.**  Admission allocates a
  handful of container objects per transaction (the decoded fields, the
  transaction, its result), so at CPython's default of 700 the collector
  runs hundreds of times a minute under load, on the event loop.  These
  objects are freed by reference counting; cycles are rare (a task and its
  exception, now and then).  A first threshold of 50,000 leaves the
  collector a few runs per minute and bounds what cyclic garbage can pile
  up between them to a few megabytes.
"""

from __future__ import annotations

import gc
import sys

from node.verifier.scheduler import GIL_SWITCH_INTERVAL_S

GC_THRESHOLDS = (50_000, 20, 100)


def tune_interpreter() -> None:
    """Set the switch interval and collector thresholds, and exempt what start-up built from collection."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    gc.set_threshold(*GC_THRESHOLDS)
    # Modules, classes and constants live as long as the process: full collections need not walk them.
    gc.freeze()
