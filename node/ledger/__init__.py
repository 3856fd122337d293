"""The ledger: deterministic execution of committed blocks and their LevelDB store."""

from node.ledger.errors import (
    LedgerCorruptError,
    LedgerError,
    LedgerHeightError,
    LedgerMismatchError,
    LedgerOpenError,
)
from node.ledger.receipts import RECEIPT_CODES, Receipt, TxLocation
from node.ledger.state import GenesisState
from node.ledger.store import Account, BlockResult, LedgerStore, Supply

__all__ = [
    "Account", "BlockResult", "GenesisState", "LedgerCorruptError", "LedgerError",
    "LedgerHeightError", "LedgerMismatchError", "LedgerOpenError", "LedgerStore",
    "RECEIPT_CODES", "Receipt", "Supply", "TxLocation",
]
