"""What can go wrong with the ledger store, as exceptions the node tells apart: each has its own remedy."""

from __future__ import annotations


class LedgerError(Exception):
    """The ledger store cannot be used as asked."""


class LedgerOpenError(LedgerError):
    """The store could not be opened (missing, locked by another process, unreadable)."""


class LedgerCorruptError(LedgerError):
    """The store's files or records are damaged; restore from a backup or resync."""


class LedgerMismatchError(LedgerError):
    """The store belongs to a different chain or genesis than the node's configuration."""


class LedgerHeightError(LedgerError):
    """A block was offered out of order: heights must be contiguous."""
