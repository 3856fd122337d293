"""Encrypted key files: the round trip, a wrong passphrase, tampering, and the verbs that read them.

argon2id runs at libsodium's minimum cost in the property tests (the format
carries its parameters); the command-line tests use the real cost.
"""

from __future__ import annotations

import getpass
import io
import json
import stat
import sys

import nacl.pwhash
import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.cli import main
from node.core.encrypted_keys import ENCRYPTED_KEY_FILE_TYPE, MEMLIMIT_RANGE
from node.core.keys import KeyFileError, KeyPair, key_file_address, read_key_file, write_key_file

FAST = (nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)
passphrases = st.text(min_size=1, max_size=64)
seeds = st.binary(min_size=32, max_size=32)


def sealed(tmp_path, seed: bytes, passphrase: str, name: str = "key.json"):
    path = tmp_path / name
    if path.exists():
        path.unlink()
    write_key_file(path, KeyPair.from_seed(seed), passphrase, kdf_limits=FAST)
    return path


@given(seed=seeds, passphrase=passphrases)
def test_round_trip(tmp_path_factory, seed, passphrase):
    path = sealed(tmp_path_factory.mktemp("k"), seed, passphrase)
    document = json.loads(path.read_text())
    assert document["type"] == ENCRYPTED_KEY_FILE_TYPE and seed.hex() not in path.read_text()
    assert read_key_file(path, lambda: passphrase).seed == seed
    assert key_file_address(path) == KeyPair.from_seed(seed).address


@given(seed=seeds, passphrase=passphrases, other=passphrases)
def test_any_other_passphrase_is_refused_in_one_line(tmp_path_factory, seed, passphrase, other):
    if other == passphrase:
        return
    path = sealed(tmp_path_factory.mktemp("k"), seed, passphrase)
    with pytest.raises(KeyFileError) as info:
        read_key_file(path, lambda: other)
    assert str(info.value) == f"key file {path}: wrong passphrase, or the file was altered since it was written"


@given(seed=seeds, field=st.sampled_from(["salt", "nonce", "ciphertext"]), data=st.data())
def test_a_flipped_bit_anywhere_in_the_sealed_fields_is_refused(tmp_path_factory, seed, field, data):
    path = sealed(tmp_path_factory.mktemp("k"), seed, "correct horse battery")
    document = json.loads(path.read_text())
    raw = bytearray.fromhex(document[field])
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= 1 << data.draw(st.integers(0, 7))
    document[field] = raw.hex()
    path.write_text(json.dumps(document))
    with pytest.raises(KeyFileError, match="wrong passphrase, or the file was altered"):
        read_key_file(path, lambda: "correct horse battery")


def test_an_altered_header_is_refused(tmp_path):
    path = sealed(tmp_path, bytes(range(32)), "correct horse battery")
    original = json.loads(path.read_text())
    for field, value in (("address", KeyPair.generate().address), ("opslimit", original["opslimit"] + 1),
                         ("memlimit", original["memlimit"] * 2)):
        path.write_text(json.dumps({**original, field: value}))
        with pytest.raises(KeyFileError, match="wrong passphrase, or the file was altered"):
            read_key_file(path, lambda: "correct horse battery")
    for field, value, why in (("memlimit", MEMLIMIT_RANGE[1] + 1, "memlimit must be"),
                              ("kdf", "scrypt", "kdf must be"), ("nonce", "00", "nonce must be")):
        path.write_text(json.dumps({**original, field: value}))
        with pytest.raises(KeyFileError, match=f"is corrupt: {why}"):
            read_key_file(path, lambda: "correct horse battery")


def test_an_encrypted_file_is_not_read_where_no_passphrase_can_be_asked(tmp_path):
    path = sealed(tmp_path, bytes(32), "correct horse battery")
    with pytest.raises(KeyFileError) as info:
        read_key_file(path)
    assert str(info.value) == f"key file {path} is encrypted, and no passphrase can be asked for here"


# ---- the command line

def passphrase_file(tmp_path, text: str, name: str = "passphrase"):
    path = tmp_path / name
    path.write_text(text + "\n")
    return path


def test_keygen_encrypt_writes_a_sealed_owner_only_file(tmp_path, capsys):
    out = tmp_path / "issuer.json"
    secret = passphrase_file(tmp_path, "a long enough passphrase")
    assert main(["keygen", "--out", str(out), "--encrypt", "--passphrase-file", str(secret)]) == 0
    address = capsys.readouterr().out.strip()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text())["memlimit"] == nacl.pwhash.argon2id.MEMLIMIT_MODERATE
    assert read_key_file(out, lambda: "a long enough passphrase").address == address
    assert main(["address", str(out)]) == 0
    assert capsys.readouterr().out.strip() == address


def test_keygen_refuses_a_short_passphrase(tmp_path, capsys):
    out = tmp_path / "issuer.json"
    assert main(["keygen", "--out", str(out), "--encrypt", "--passphrase-file",
                 str(passphrase_file(tmp_path, "short"))]) == 2
    assert "at least 12 characters" in capsys.readouterr().err
    assert not out.exists()


def test_a_wallet_verb_with_a_wrong_passphrase_says_so_in_one_line(tmp_path, capsys):
    key = tmp_path / "bank.json"
    write_key_file(key, KeyPair.generate(), "the right passphrase", kdf_limits=FAST)
    wrong = passphrase_file(tmp_path, "not the right one")
    code = main(["transfer", "--node", "http://127.0.0.1:9", "--key", str(key), "--passphrase-file", str(wrong),
                 "--to", KeyPair.generate().address, "--amount", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        f"somnode transfer: error: key file {key}: wrong passphrase, or the file was altered since it was written"]


def test_gov_sign_asks_an_encrypted_board_key_for_its_passphrase(tmp_path, capsys):
    board = KeyPair.generate()
    key = tmp_path / "board1.json"
    write_key_file(key, board, "the board's passphrase", kdf_limits=FAST)
    action = tmp_path / "action.json"
    assert main(["gov", "build", "add-bank", "--name", "Ayil Bank", "--bank", KeyPair.generate().address,
                 "--out", str(action), "--chain-id", "som-main", "--sequence", "1", "--expiry-height", "100"]) == 0
    assert main(["gov", "sign", str(action), "--key", str(key), "--passphrase-file",
                 str(passphrase_file(tmp_path, "the board's passphrase"))]) == 0
    captured = capsys.readouterr()
    assert f"{board.address} approved" in captured.out
    assert "plain key file" not in captured.err


def test_a_plain_key_file_draws_a_warning_outside_practice_networks(tmp_path, capsys):
    key = tmp_path / "board1.json"
    write_key_file(key, KeyPair.generate())
    for chain, warned in (("som-main", True), ("som-localnet", False)):
        action = tmp_path / f"{chain}.json"
        assert main(["gov", "build", "add-bank", "--name", "Ayil Bank", "--bank", KeyPair.generate().address,
                     "--out", str(action), "--chain-id", chain, "--sequence", "1", "--expiry-height", "100"]) == 0
        assert main(["gov", "sign", str(action), "--key", str(key)]) == 0
        err = capsys.readouterr().err
        assert ("is a plain key file" in err) == warned, (chain, err)


def test_the_format_in_docs_protocol_decrypts_a_file_the_node_wrote(tmp_path):
    """docs/protocol.md §2.1, followed step by step with libsodium's primitives, opens a node's file."""
    import struct

    import nacl.bindings

    seed = bytes(range(32))
    path = sealed(tmp_path, seed, "passphrase for the spec")
    doc = json.loads(path.read_text())
    salt, nonce = bytes.fromhex(doc["salt"]), bytes.fromhex(doc["nonce"])
    key = nacl.bindings.crypto_pwhash_alg(32, b"passphrase for the spec", salt, doc["opslimit"],
                                          doc["memlimit"], nacl.bindings.crypto_pwhash_ALG_ARGON2ID13)
    aad = (b"somnode-ed25519-encrypted-v1\x00" + doc["address"].encode("ascii") + b"\x00" + b"argon2id\x00"
           + struct.pack(">QQ", doc["opslimit"], doc["memlimit"]) + salt)
    assert nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
        bytes.fromhex(doc["ciphertext"]), aad, nonce, key) == seed


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_passphrase_is_asked_at_a_prompt_twice_for_a_new_file_and_once_to_sign(tmp_path, monkeypatch, capsys):
    prompts: list[str] = []
    answers = iter(["typed at the prompt"] * 4 + ["typed differently"])

    def typed(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr(getpass, "getpass", typed)
    out = tmp_path / "board1.json"
    assert main(["keygen", "--out", str(out), "--encrypt"]) == 0
    address = capsys.readouterr().out.strip()
    assert prompts == [f"passphrase for the new key file {out}: ", "the same passphrase again: "]
    assert key_file_address(out) == address
    action = tmp_path / "action.json"
    assert main(["gov", "build", "add-bank", "--name", "Ayil Bank", "--bank", KeyPair.generate().address,
                 "--out", str(action), "--chain-id", "som-main", "--sequence", "1", "--expiry-height", "100"]) == 0
    assert main(["gov", "sign", str(action), "--key", str(out)]) == 0
    assert f"{address} approved" in capsys.readouterr().out
    assert prompts[-1] == f"passphrase for {out}: "
    other = tmp_path / "other.json"
    assert main(["keygen", "--out", str(other), "--encrypt"]) == 2  # the second answer differs
    assert "the two passphrases differ" in capsys.readouterr().err and not other.exists()


def test_without_a_terminal_or_a_passphrase_file_the_verb_says_what_to_give(tmp_path, capsys):
    key = tmp_path / "bank.json"
    write_key_file(key, KeyPair.generate(), "the right passphrase", kdf_limits=FAST)
    code = main(["transfer", "--node", "http://127.0.0.1:9", "--key", str(key),
                 "--to", KeyPair.generate().address, "--amount", "1"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"somnode transfer: error: {key} needs a passphrase: give --passphrase-file FILE, or run in a terminal")
