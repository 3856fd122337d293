"""``somnode gov`` offline: build, show, sign, combine, and the files it refuses to trust."""

from __future__ import annotations

import hashlib
import json

import pytest

from node.cli import main
from node.core.actions import AddObserver, RemoveObserver, SetValidator
from node.core.keys import KeyPair, read_key_file, write_key_file
from node.tools.gov_file import GovernanceFileError, read_action

CHAIN = "som-test"
OFFLINE = ["--chain-id", CHAIN, "--sequence", "4", "--expiry-height", "900"]


@pytest.fixture
def keys(tmp_path):
    paths = []
    for name in ("board1", "board2", "validator", "next"):
        path = tmp_path / f"{name}.json"
        write_key_file(path, KeyPair.generate())
        paths.append(path)
    return paths


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def address(capsys, key_file) -> str:
    code, out, _ = run(capsys, "address", key_file)
    assert code == 0
    return out.strip()


def test_a_board_builds_signs_and_combines_offline(tmp_path, capsys, keys):
    board1, board2, validator, _ = keys
    target = address(capsys, validator)
    action = tmp_path / "action.json"
    code, out, _ = run(capsys, "gov", "build", "set-validator", "--validator", target, "--power", "10",
                       "--out", action, *OFFLINE)
    assert code == 0 and f"set the voting power of validator {target} to 10" in out
    copy = tmp_path / "copy.json"
    copy.write_bytes(action.read_bytes())
    assert run(capsys, "gov", "sign", action, "--key", board1)[0] == 0
    assert run(capsys, "gov", "sign", copy, "--key", board2)[0] == 0
    combined = tmp_path / "combined.json"
    code, out, _ = run(capsys, "gov", "combine", action, copy, "--out", combined)
    assert code == 0 and "2 approvals" in out
    pending = read_action(combined)
    assert pending.chain_id == CHAIN and pending.tx.sequence == 4 and pending.tx.expiry_height == 900
    assert isinstance(pending.tx.action, SetValidator) and pending.tx.action.power == 10
    stx = pending.signed()
    approvers = {a["address"] for a in json.loads(combined.read_text())["approvals"]}
    assert approvers == {address(capsys, board1), address(capsys, board2)}
    assert len(stx.approvals) == 2
    code, out, _ = run(capsys, "gov", "show", combined)
    assert code == 0 and "sequence      4" in out and out.count("(signature checked)") == 2


def test_signing_twice_with_one_key_keeps_one_approval(tmp_path, capsys, keys):
    board1, *_ = keys
    action = tmp_path / "a.json"
    run(capsys, "gov", "build", "replace-issuer", "--issuer", address(capsys, board1), "--out", action, *OFFLINE)
    run(capsys, "gov", "sign", action, "--key", board1)
    run(capsys, "gov", "sign", action, "--key", board1)
    assert len(read_action(action).approvals) == 1


def test_a_rotation_carries_the_new_keys_proof_and_the_validators_own_carries_sequence_0(tmp_path, capsys, keys):
    _, _, validator, new = keys
    own, by_board = tmp_path / "rotate.json", tmp_path / "board-rotate.json"
    rotate = ["gov", "build", "rotate-key", "--old", address(capsys, validator), "--new-key", new]
    code, out, _ = run(capsys, *rotate, "--out", own, "--chain-id", CHAIN, "--expiry-height", "900")
    assert code == 0 and "rotate the validator key" in out and "sequence 0" in out
    assert run(capsys, "gov", "sign", own, "--key", validator)[0] == 0
    assert "the new key signed the rotation" in run(capsys, "gov", "show", own)[1]
    code, _, err = run(capsys, *rotate, "--out", by_board, *OFFLINE)
    assert code == 2 and "sequence 0" in err
    assert run(capsys, *rotate, "--by", "board", "--out", by_board, *OFFLINE)[0] == 0
    assert read_action(by_board).tx.sequence == 4


def test_a_file_edited_by_hand_is_refused(tmp_path, capsys, keys):
    board1, _, validator, _ = keys
    action = tmp_path / "a.json"
    run(capsys, "gov", "build", "set-validator", "--validator", address(capsys, validator), "--power", "1",
        "--out", action, *OFFLINE)
    run(capsys, "gov", "sign", action, "--key", board1)
    document = json.loads(action.read_text())
    document["action"]["description"] = "something harmless"
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(document))
    code, _, err = run(capsys, "gov", "sign", edited, "--key", board1)
    assert code == 2 and "does not match the transaction" in err
    document = json.loads(action.read_text())
    document["approvals"][0]["signature"] = "00" * 64
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    with pytest.raises(GovernanceFileError, match="does not verify"):
        read_action(forged)


def test_copies_of_different_actions_do_not_combine(tmp_path, capsys, keys):
    board1, board2, validator, _ = keys
    first, second = tmp_path / "1.json", tmp_path / "2.json"
    for path, power in ((first, "1"), (second, "2")):
        run(capsys, "gov", "build", "set-validator", "--validator", address(capsys, validator), "--power", power,
            "--out", path, *OFFLINE)
    code, _, err = run(capsys, "gov", "combine", first, second, "--out", tmp_path / "c.json")
    assert code == 2 and "different actions" in err


@pytest.mark.parametrize(("args", "says"), [
    (["set-validator", "--validator", "som1nope", "--power", "1"], "--validator"),
    (["set-board", "--threshold", "3", "--member", "KEY", "--member", "KEY"], "named twice"),
    (["set-board", "--threshold", "3", "--member", "KEY"], "threshold"),
    (["add-bank", "--name", "", "--bank", "KEY"], "name"),
])
def test_bad_options_are_named(tmp_path, capsys, keys, args, says):
    key = address(capsys, keys[0])
    code, _, err = run(capsys, "gov", "build", *[key if a == "KEY" else a for a in args],
                       "--out", tmp_path / "x.json", *OFFLINE)
    assert code == 2 and says in err
    assert not (tmp_path / "x.json").exists()


def test_an_existing_file_is_never_overwritten(tmp_path, capsys, keys):
    action = tmp_path / "a.json"
    action.write_text("keep me")
    code, _, err = run(capsys, "gov", "build", "remove-bank", "--bank", address(capsys, keys[0]),
                       "--out", action, *OFFLINE)
    assert code == 2 and "already exists" in err and action.read_text() == "keep me"


def test_a_legal_order_carries_its_reference_and_the_documents_hash(tmp_path, capsys, keys):
    board1, _, validator, _ = keys
    document = tmp_path / "order.pdf"
    document.write_bytes(b"%PDF the order")
    action = tmp_path / "freeze.json"
    code, out, _ = run(capsys, "gov", "build", "freeze", "--account", address(capsys, validator), "--scope", "both",
                       "--authority", "Pervomaisky District Court of Bishkek", "--number", "2-1234/26",
                       "--date", "2026-11-30", "--document", document, "--out", action, *OFFLINE)
    assert code == 0 and "freeze all payments of" in out
    pending = read_action(action)
    assert pending.tx.action.reference.document_sha256 == hashlib.sha256(b"%PDF the order").digest()
    assert hashlib.sha256(b"%PDF the order").hexdigest() in run(capsys, "gov", "show", action)[1]


@pytest.mark.parametrize(("args", "says"), [
    (["seize", "--account", "KEY", "--amount", "10", "--to", "KEY2", "--authority", "Court", "--number", "1",
      "--date", "2026-02-30", "--document", "DOC"], "date"),
    (["seize", "--account", "KEY", "--amount", "0.001", "--to", "KEY2", "--authority", "Court", "--number", "1",
      "--date", "2026-02-01", "--document", "DOC"], "--amount"),
    (["freeze", "--account", "KEY", "--scope", "both", "--authority", "Court", "--number", "1",
      "--date", "2026-02-01", "--document", "MISSING"], "--document"),
    (["define-tier", "--id", "255", "--name", "x", "--max-balance", "1", "--max-payment", "1",
      "--max-daily-out", "1"], "tier id"),
    (["set-wallet", "--wallet", "KEY", "--tier", "gold"], "--tier"),
])
def test_bad_order_and_tier_options_are_named(tmp_path, capsys, keys, args, says):
    document = tmp_path / "doc.pdf"
    document.write_bytes(b"doc")
    values = {"KEY": address(capsys, keys[0]), "KEY2": address(capsys, keys[1]), "DOC": str(document),
              "MISSING": str(tmp_path / "absent.pdf")}
    code, _, err = run(capsys, "gov", "build", *[values.get(a, a) for a in args], "--out", tmp_path / "x.json",
                       *OFFLINE)
    assert code == 2 and says in err, err


def test_the_board_designates_an_institutional_account(tmp_path, capsys, keys):
    action = tmp_path / "institution.json"
    code, out, _ = run(capsys, "gov", "build", "set-wallet", "--wallet", address(capsys, keys[2]), "--tier",
                       "institutional", "--out", action, *OFFLINE)
    assert code == 0 and "as institutional (no limits), no linked account" in out


def test_the_board_registers_and_removes_an_observer(tmp_path, capsys, keys):
    observer = address(capsys, keys[2])
    added, removed = tmp_path / "add.json", tmp_path / "remove.json"
    code, out, _ = run(capsys, "gov", "build", "add-observer", "--name", "Financial supervision",
                       "--observer", observer, "--out", added, *OFFLINE)
    assert code == 0 and f"register the observer 'Financial supervision' with key {observer}" in out
    assert read_action(added).tx.action == AddObserver("Financial supervision", keys_public(keys[2]))
    code, out, _ = run(capsys, "gov", "build", "remove-observer", "--observer", observer, "--out", removed,
                       *OFFLINE)
    assert code == 0 and f"remove the observer {observer}" in out
    assert read_action(removed).tx.action == RemoveObserver(keys_public(keys[2]))


def keys_public(key_file) -> bytes:
    return read_key_file(key_file).public_key
