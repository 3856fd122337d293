"""Deterministic ledger workloads, an independent reference model, and the crash-test writer.

Run as a program, it opens (or creates) a ledger store and commits
deterministic blocks forever, printing each committed height; the crash test
SIGKILLs it at random instants.  Imported, it gives the tests the same block
generator and ``ReferenceLedger``, a deliberately plain re-implementation of
docs/ledger.md that the store is checked against.

    python tests/crash_writer.py STORE_DIR SEED
"""

from __future__ import annotations

import hashlib
import random
import struct
import sys

import msgpack

from node.core.amount import MAX_TYIYN
from node.core.tx import SignedTransaction, Transaction, TxKind
from node.ledger.state import GenesisState
from tests.state_reference import reference_root

CHAIN_ID = "som-crash-test"
GENESIS_HASH = hashlib.sha256(b"crash-test genesis").digest()
ACCOUNTS = 24
# Block sizes vary so that kills land in small and in multi-page log writes alike.
TXS_PER_BLOCK = (0, 3, 40, 40, 40, 600)


def key(n: int) -> bytes:
    """A deterministic 32-byte stand-in public key: the ledger never checks signatures."""
    return hashlib.sha256(b"account %d" % n).digest()


ISSUER = key(0)
BANKS = (key(1), key(2))
HOLDERS = tuple(key(n) for n in range(3, ACCOUNTS))


def genesis_state(balances: tuple[tuple[bytes, int], ...] | None = None) -> GenesisState:
    if balances is None:
        balances = tuple(sorted((holder, 1_000_000) for holder in HOLDERS[:8]))
    return GenesisState(CHAIN_ID, GENESIS_HASH, ISSUER, frozenset(BANKS), balances)


def signed(kind: TxKind, sender: bytes, nonce: int, amount: int,
           recipient: bytes | None = None, memo: str = "") -> SignedTransaction:
    """A transaction with a placeholder signature: execution trusts the caller's verification."""
    tx = Transaction(kind, sender, nonce, amount, recipient, memo)
    signature = hashlib.sha512(tx.unsigned_bytes()).digest()
    raw = msgpack.packb(tx.fields() + [signature], use_bin_type=True)
    return SignedTransaction(tx, signature, raw, hashlib.sha256(raw).digest())


class ReferenceLedger:
    """The ledger rules written the obvious way, to check the optimised implementation against.

    The workload's genesis has the ledger's default tier 0 alone, which limits nothing but the
    daily total (2^64-1 tyiyn), and every block's time is 0: one Bishkek day, 1970-01-01.
    """

    def __init__(self, genesis: GenesisState) -> None:
        self.issuer = genesis.issuer
        self.banks = set(genesis.banks)
        # [balance, nonce, sent today]: outside the banks and the issuer, every sender counts its day.
        self.accounts: dict[bytes, list[int]] = {pk: [0, 0, 0] for pk in (genesis.issuer, *genesis.banks)}
        for pk, amount in genesis.balances:
            self.accounts[pk] = [amount, 0, 0]
        self.issued = sum(amount for _, amount in genesis.balances)
        self.redeemed = 0
        self.height = 0
        records = [(b"a" + pk, self._pack(pk)) for pk in self.accounts] + [(b"s", self._supply())]
        # The governance records of docs/ledger.md; the workload has no governance transactions.
        names = dict(genesis.bank_names)
        records += [
            (b"gboard", msgpack.packb([genesis.board_threshold, sorted(genesis.board)], use_bin_type=True)),
            (b"gissuer", genesis.issuer),
            (b"gsequence", struct.pack(">Q", 0)),
            (b"v" + struct.pack(">Q", 1), msgpack.packb(sorted(genesis.validators), use_bin_type=True)),
            *((b"gbank" + bank, names.get(bank, "").encode("utf-8")) for bank in genesis.banks),
            (b"gtier\x00", msgpack.packb(["unlimited", MAX_TYIYN, MAX_TYIYN, MAX_TYIYN], use_bin_type=True)),
        ]
        self.state = dict(records)
        self.app_hash = reference_root(self.state)

    def nonce(self, pk: bytes) -> int:
        return self.accounts[pk][1] if pk in self.accounts else 0

    def balance(self, pk: bytes) -> int:
        return self.accounts[pk][0] if pk in self.accounts else 0

    def apply(self, txs: list[SignedTransaction]) -> list[str]:
        codes = []
        touched: set[bytes] = set()
        for stx in txs:
            code = self._apply_one(stx.tx, touched)
            codes.append(code)
        self.state.update([(b"a" + pk, self._pack(pk)) for pk in touched] + [(b"s", self._supply())])
        self.app_hash = reference_root(self.state)
        self.height += 1
        return codes

    def _apply_one(self, tx: Transaction, touched: set[bytes]) -> str:
        if tx.sender not in self.accounts:
            return "unknown_account"
        sender = self.accounts[tx.sender]
        if tx.nonce != sender[1] or tx.nonce == MAX_TYIYN:
            return "bad_nonce"
        sender[1] += 1
        touched.add(tx.sender)
        if tx.kind == TxKind.TRANSFER:
            if tx.recipient == tx.sender:
                return "self_transfer"
            capped = tx.sender not in self.banks and tx.sender != self.issuer
            if capped and sender[2] + tx.amount > MAX_TYIYN:
                return "over_daily_limit"
            if sender[0] < tx.amount:
                return "insufficient_funds"
            sender[0] -= tx.amount
            if capped:
                sender[2] += tx.amount
            self.accounts.setdefault(tx.recipient, [0, 0, 0])[0] += tx.amount
            touched.add(tx.recipient)
            return "ok"
        if tx.kind == TxKind.ISSUE:
            if tx.sender != self.issuer:
                return "unauthorised"
            if self.issued - self.redeemed + tx.amount > MAX_TYIYN:
                return "overflow"
            self.accounts.setdefault(tx.recipient, [0, 0, 0])[0] += tx.amount
            touched.add(tx.recipient)
            self.issued += tx.amount
            return "ok"
        if tx.sender not in self.banks and tx.sender != self.issuer:
            return "unauthorised"
        if sender[0] < tx.amount:
            return "insufficient_funds"
        sender[0] -= tx.amount
        self.redeemed += tx.amount
        return "ok"

    def record(self, pk: bytes) -> tuple[int, ...] | None:
        """The account as the store reads it back: balance, nonce, tier 0, no flags, day 0, sent."""
        if pk not in self.accounts:
            return None
        balance, nonce, sent = self.accounts[pk]
        return balance, nonce, 0, 0, 0, sent

    def records(self) -> dict[bytes, tuple[int, ...] | None]:
        return {pk: self.record(pk) for pk in self.accounts}

    def _pack(self, pk: bytes) -> bytes:
        balance, nonce, sent = self.accounts[pk]
        return struct.pack(">QQBBIQ", balance, nonce, 0, 0, 0, sent)

    def _supply(self) -> bytes:
        m = (1 << 64) - 1
        return struct.pack(">QQQQ", self.issued >> 64, self.issued & m, self.redeemed >> 64, self.redeemed & m)


def make_block(seed: int, height: int, nonce_of) -> list[SignedTransaction]:
    """Block ``height`` of workload ``seed``: mostly valid, with every failure kind mixed in.

    ``nonce_of(pk)`` reads the committed nonce, so the block depends only on the
    seed, the height and the state after blocks 1..height-1.
    """
    rng = random.Random(f"{seed}/{height}")
    pending: dict[bytes, int] = {}
    txs = []
    everyone = (ISSUER, *BANKS, *HOLDERS)
    for _ in range(rng.choice(TXS_PER_BLOCK)):
        roll = rng.random()
        if roll < 0.1:
            sender, kind, recipient = ISSUER, TxKind.ISSUE, rng.choice(everyone)
        elif roll < 0.15:
            sender, kind, recipient = rng.choice(everyone), TxKind.ISSUE, rng.choice(everyone)
        elif roll < 0.25:
            sender, kind, recipient = rng.choice(everyone), TxKind.REDEEM, None
        else:
            sender, kind, recipient = rng.choice(everyone), TxKind.TRANSFER, rng.choice(everyone)
        nonce = pending.get(sender, nonce_of(sender))
        if rng.random() < 0.05:
            nonce += rng.choice((-1, 1, 2)) if nonce else 1
        else:
            pending[sender] = nonce + 1
        amount = rng.choice((1, rng.randrange(1, 5_000), rng.randrange(1, 500_000)))
        txs.append(signed(kind, sender, nonce, amount, recipient))
    return txs


def block_bytes(height: int, txs: list[SignedTransaction]) -> bytes:
    return msgpack.packb([height, [stx.raw for stx in txs]], use_bin_type=True)


def certificate_bytes(height: int) -> bytes:
    return hashlib.sha256(b"certificate %d" % height).digest()


def main(argv: list[str]) -> None:
    from node.ledger.store import LedgerStore

    path, seed = argv[1], int(argv[2])
    with LedgerStore.open(path, genesis_state()) as store:
        def nonce_of(pk: bytes) -> int:
            account = store.account(pk)
            return 0 if account is None else account.nonce

        while True:
            height = store.height + 1
            txs = make_block(seed, height, nonce_of)
            store.apply_block(height, txs, block_bytes(height, txs), certificate_bytes(height))
            sys.stdout.write(f"{height}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv)
