"""``somnode keygen``: a 0600 key file whose address is printed, never an overwrite."""

from __future__ import annotations

import stat

from node.cli import main
from node.core.address import decode_address
from node.core.keys import read_key_file


def test_keygen_writes_owner_only_key_and_prints_its_address(tmp_path, capsys):
    out = tmp_path / "wallet.json"
    assert main(["keygen", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip()
    key = read_key_file(out)
    assert printed == key.address
    assert decode_address(printed) == key.public_key
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_keygen_generates_a_fresh_key_each_time(tmp_path, capsys):
    assert main(["keygen", "--out", str(tmp_path / "a.json")]) == 0
    assert main(["keygen", "--out", str(tmp_path / "b.json")]) == 0
    first, second = capsys.readouterr().out.split()
    assert first != second


def test_keygen_refuses_to_overwrite_and_leaves_the_key_intact(tmp_path, capsys):
    out = tmp_path / "validator.json"
    assert main(["keygen", "--out", str(out)]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert main(["keygen", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert out.read_bytes() == before
    assert captured.out == ""
    assert "already exists" in captured.err and str(out) in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.err


def test_keygen_into_a_missing_directory_is_one_line_error(tmp_path, capsys):
    out = tmp_path / "missing" / "key.json"
    assert main(["keygen", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_keygen_without_out_is_a_usage_error(capsys):
    assert main(["keygen"]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and len(err.strip().splitlines()) == 1
