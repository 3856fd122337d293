"""Taking a snapshot every ``storage.snapshot_interval`` heights, in the background.

A commit at a multiple of the interval takes the state export of that height
(a LevelDB snapshot of it, node/ledger/store.py) and hands it to a worker
thread, which reads the records, checks that they hash to the height's app
hash and writes the file; consensus goes on committing meanwhile.  One
snapshot is written at a time: a height reached while the previous one is
still being written is skipped, and said so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from node.ledger.errors import LedgerCorruptError
from node.ledger.store import LedgerStore, StateExport
from node.statesync.files import SnapshotFiles

log = logging.getLogger(__name__)


class Snapshotter:
    def __init__(self, store: LedgerStore, files: SnapshotFiles, interval: int,
                 on_fatal: Callable[[BaseException], None]) -> None:
        assert interval > 0, "0 takes no snapshots: no snapshotter"
        self._store = store
        self._files = files
        self._interval = interval
        self._on_fatal = on_fatal
        self._writing: asyncio.Task[None] | None = None
        self._stopped = False

    def committed(self, height: int) -> None:
        if height % self._interval or self._stopped:
            return
        if self._writing is not None and not self._writing.done():
            log.warning("snapshot.skipped height=%d reason=previous_still_writing", height)
            return
        self._writing = asyncio.create_task(self._write(self._store.state_export()), name="snapshot")

    async def stop(self) -> None:
        """Let a snapshot being written finish: the store must not close under its reader."""
        self._stopped = True
        if self._writing is not None:
            await asyncio.gather(self._writing, return_exceptions=True)

    async def _write(self, export: StateExport) -> None:
        started = time.monotonic()
        try:
            manifest = await asyncio.to_thread(
                self._files.write, export.height, export.app_hash, export.records(), export.tx_count,
                export.history_count)
        except LedgerCorruptError as exc:
            self._on_fatal(exc)
            return
        except (OSError, ValueError) as exc:
            # A disk that is full or failing loses a snapshot, not the node: peers use an older one.
            log.error("snapshot.failed height=%d reason=%s", export.height, " ".join(str(exc).split()))
            return
        log.info("snapshot.written height=%d records=%d seconds=%.2f kept=%s", export.height,
                 sum(manifest.chunk_records), time.monotonic() - started,
                 ",".join(str(height) for height in self._files.heights()))
