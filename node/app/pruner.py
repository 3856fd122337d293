"""Pruning in the background: blocks older than ``storage.retain_blocks`` go, without holding up commits.

A commit only notes the height.  When enough heights have gathered past the
ones kept (a quarter of them, so that each pass's compaction is paid for by
many blocks), a pass deletes them on a worker thread, one pass at a time,
beside the commits.  The pass writes small batches (node/ledger/pruning.py:
a few heights, a couple of thousand transactions at most) and pauses after
each, so a block's own write, which LevelDB orders with them, never waits
behind a long one, and a large first backlog (a node that has just turned
pruning on) hands the interpreter back to consensus between batches.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from node.ledger.errors import LedgerCorruptError, LedgerError
from node.ledger.pruning import HEIGHTS_PER_BATCH
from node.ledger.store import LedgerStore

log = logging.getLogger(__name__)

# Pause between a pass's batches.
PAUSE_S = 0.005


class Pruner:
    def __init__(self, store: LedgerStore, retain_blocks: int, on_fatal: Callable[[BaseException], None]) -> None:
        assert retain_blocks > 0, "0 keeps every block: no pruner"
        self._store = store
        self._retain = retain_blocks
        self._every = max(HEIGHTS_PER_BATCH, retain_blocks // 4)
        self._on_fatal = on_fatal
        self._stopping = threading.Event()
        self._pass: asyncio.Task[None] | None = None

    def committed(self, height: int) -> None:
        """A block was committed at ``height``: start a pass if enough heights are past the kept ones."""
        below = height - self._retain + 1
        if below - self._store.earliest_height < self._every or self._stopping.is_set():
            return
        if self._pass is None or self._pass.done():
            self._pass = asyncio.create_task(self._prune(below), name="ledger-prune")

    async def stop(self) -> None:
        """Let a pass end after its current batch: the store must not close under it."""
        self._stopping.set()
        if self._pass is not None:
            await asyncio.gather(self._pass, return_exceptions=True)

    async def _prune(self, below: int) -> None:
        try:
            await asyncio.to_thread(self._store.prune, below, lambda: self._stopping.wait(PAUSE_S))
        except LedgerCorruptError as exc:
            self._on_fatal(exc)
        except LedgerError as exc:
            # A failed pass loses nothing: the blocks stay until the next one.
            log.error("ledger.prune_failed below=%d reason=%s", below, " ".join(str(exc).split()))
        except Exception as exc:
            # A fault of the code, not of the disk: stop loudly rather than retry it at every commit.
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            log.critical("ledger.prune_failed below=%d reason=%s", below, reason)
            self._on_fatal(exc)
