"""The block's book of accounts: what the execution loop reads and writes before the store commits it."""

from __future__ import annotations

from node.ledger.book import Book


def committed(accounts: dict[bytes, tuple[int, ...]]) -> Book:
    return Book(accounts.get, lambda key: None)  # type: ignore[arg-type]


def test_load_reads_the_committed_account_into_the_block_as_a_list_of_its_own():
    stored = (500, 3, 1, 0, 0, 0)
    book = committed({b"alice": stored})
    account = book.load(b"alice")
    assert account == list(stored) and book.loaded[b"alice"] is account
    account[0] -= 100
    assert stored == (500, 3, 1, 0, 0, 0), "the committed record is never changed by the block"


def test_load_keeps_what_the_block_already_holds_for_the_key():
    book = committed({b"alice": (500, 3, 1, 0, 0, 0)})
    held = book.opened(b"alice")
    held[0] = 0
    assert book.load(b"alice") is held
    opened = book.opened(b"bob")  # opened by this block: nothing committed for it
    assert book.load(b"bob") is opened and book.account(b"bob") is opened


def test_an_account_nobody_holds_loads_as_none():
    book = committed({})
    assert book.load(b"carol") is None and book.account(b"carol") is None and not book.loaded
