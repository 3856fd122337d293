"""The wallet verbs as a new user meets them: a mistake gets one line naming the option
and speaking in som, and what a node answers is shown in som with who paid whom."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.cli import main, wallet
from node.core.keys import KeyPair, write_key_file

PAYEE = KeyPair.from_seed(b"\x05" * 32).address
NOWHERE = "http://127.0.0.1:9"  # nothing listens: every check below must come before the node is asked


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "bank.json"
    write_key_file(path, KeyPair.generate())
    return path


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1, captured.err
    assert lines[0].startswith(f"somnode {argv[0]}: error: ")
    return lines[0]


@pytest.mark.parametrize(("verb", "amount"), [("transfer", "0"), ("transfer", "0.00"), ("redeem", "0"),
                                              ("issue", "000.0")])
def test_a_zero_amount_is_one_line(capsys, key_file, verb, amount):
    recipient = [] if verb == "redeem" else ["--to", PAYEE]
    line = one_line_error(capsys, [verb, "--node", NOWHERE, "--key", str(key_file), *recipient, "--amount", amount])
    assert "--amount" in line and "more than 0 som" in line


def test_a_memo_over_256_bytes_is_one_line(capsys, key_file):
    memo = "сом" * 43  # 258 bytes of UTF-8 in 129 characters
    line = one_line_error(capsys, ["transfer", "--node", NOWHERE, "--key", str(key_file), "--to", PAYEE,
                                   "--amount", "1", "--memo", memo])
    assert "--memo" in line and "258 bytes" in line and "256" in line


def test_a_memo_that_is_not_text_is_one_line(capsys, key_file):
    line = one_line_error(capsys, ["transfer", "--node", NOWHERE, "--key", str(key_file), "--to", PAYEE,
                                   "--amount", "1", "--memo", "\udcff"])  # a byte that is not UTF-8, as argv carries it
    assert "--memo" in line


def test_a_capitalised_recipient_is_told_it_is_capitalised(capsys, key_file):
    line = one_line_error(capsys, ["transfer", "--node", NOWHERE, "--key", str(key_file), "--to", PAYEE.upper(),
                                   "--amount", "1"])
    assert f"addresses are written in lowercase ({PAYEE})" in line
    assert "characters" not in line


@pytest.mark.parametrize(("amount", "says"), [
    ("99999999999999999999999", "more than the largest amount, 184467440737095516.15 som"),
    ("184467440737095517", "more than the largest amount, 184467440737095516.15 som"),
    ("1.005", "more than two decimals"),
])
def test_a_bad_amount_is_explained_in_som(capsys, key_file, amount, says):
    line = one_line_error(capsys, ["transfer", "--node", NOWHERE, "--key", str(key_file), "--to", PAYEE,
                                   "--amount", amount])
    assert "--amount" in line and says in line
    assert "tyiyn" not in line.replace("(1 tyiyn)", "")


def test_redeem_help_says_who_may_redeem(capsys):
    assert main(["redeem", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "a bank or the issuer" in text and "bank only" not in text


class FakeClient:
    """Answers as a node would, without one."""

    documents: dict[str, dict] = {}

    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        pass

    def status(self) -> dict:
        return self.documents["status"]

    def tx(self, tx_hash_hex: str) -> dict:
        return self.documents["tx"]


@pytest.fixture
def fake_node(monkeypatch: pytest.MonkeyPatch) -> type[FakeClient]:
    monkeypatch.setattr(wallet, "NodeClient", FakeClient)
    return FakeClient


STATUS = {
    "chain_id": "som-localnet", "node_id": PAYEE, "height": 42, "app_hash": "ab" * 32, "round": 0,
    "consensus_height": 43, "validators": [{"name": "validator1", "address": PAYEE, "power": 1}],
    "peers": [], "mempool_size": 3, "supply": 300000000125, "supply_som": "3000000001.25", "committed_txs": 17,
    "evidence": [],
}


def test_status_shows_the_supply_in_som(capsys, fake_node):
    fake_node.documents = {"status": STATUS}
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "supply" in out and "3000000001.25 som" in out
    assert "300000000125" not in out
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == STATUS


SENDER = KeyPair.from_seed(b"\x06" * 32).address
COMMITTED = {
    "hash": "e8" * 32, "status": "committed", "height": 7, "index": 2, "result": "ok",
    "tx": {"kind": "transfer", "sender": SENDER, "recipient": PAYEE, "amount": 1250, "amount_som": "12.50",
           "nonce": 4, "memo": "rent\x1b[2J for December"},
}


def test_tx_shows_who_paid_whom_how_much_and_the_memo(capsys, fake_node):
    fake_node.documents = {"tx": COMMITTED}
    assert main(["tx", "e8" * 32]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert lines["from"] == SENDER
    assert lines["to"] == PAYEE
    assert lines["amount"] == "12.50 som"
    assert lines["memo"] == '"rent\\u001b[2J for December"'  # quoted: a memo cannot drive the terminal
    assert lines["status"] == "committed in block 7 at position 2: ok"
    assert main(["tx", "--json", "e8" * 32]) == 0
    assert json.loads(capsys.readouterr().out) == COMMITTED


def test_tx_says_when_the_node_does_not_know_the_hash(capsys, fake_node):
    fake_node.documents = {"tx": {"hash": "e8" * 32, "status": "unknown"}}
    assert main(["tx", "e8" * 32]) == 1
    assert "unknown" in capsys.readouterr().out
