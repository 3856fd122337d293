"""Validator keys in a PKCS#11 token (SoftHSM2): made inside it, never readable from it, signing there.

``somnode keygen --pkcs11`` makes the key and prints its address; the key
signs plain Ed25519 that the node's verifier accepts; its private half is
sensitive and not extractable, so reading its value and wrapping it out of
the token both fail; a wrong PIN or a label the token lacks is one line.
A token session that breaks costs signatures, not the process: the key
signs again once a new session opens.  A ``somnode signer`` process keeps
its validator's key in a token too.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time

import pkcs11
import pkcs11.exceptions
import pytest
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from consensus.crypto import SigningUnavailable
from consensus.messages import MessageType, signing_bytes
from node.cli import main
from node.core.address import decode_address
from node.core.fields import Endpoint
from node.core.keys import KeyPair, verify_signature
from node.signing import pkcs11 as token_module
from node.signing.keyring import KeyringError, open_token_keys
from node.signing.remote import RemoteSigner
from node.tools.testnet import free_ports
from tests.softhsm import PIN


def keygen(softhsm, token: str, label: str, pin_file) -> list[str]:
    return ["keygen", "--pkcs11", str(softhsm.module), "--token", token, "--label", label, "--pin-file", str(pin_file)]


@pytest.fixture
def pin_file(tmp_path):
    path = tmp_path / "pin"
    path.write_text(PIN + "\n")
    return path


def test_keygen_makes_a_key_in_the_token_that_signs_for_its_address(softhsm, pin_file, capsys):
    token = softhsm.new_token()
    assert main(keygen(softhsm, token, "validator1", pin_file)) == 0
    address = capsys.readouterr().out.strip()
    _, (key,) = open_token_keys(softhsm.module, token, ["validator1"], pin_file, None, "signer.pkcs11")
    assert key.address == address and key.public_key == decode_address(address)
    message = signing_bytes("som-test", MessageType.PRECOMMIT, 7, 0, bytes(32))
    assert verify_signature(key.public_key, message, key.sign(message))


def test_the_private_key_cannot_leave_the_token(softhsm, pin_file, capsys):
    token_label = softhsm.new_token()
    assert main(keygen(softhsm, token_label, "validator1", pin_file)) == 0
    token = pkcs11.lib(str(softhsm.module)).get_token(token_label=token_label)
    with token.open(user_pin=PIN, rw=True) as session:
        private = session.get_key(ObjectClass.PRIVATE_KEY, KeyType.EC_EDWARDS, label="validator1")
        assert private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.NEVER_EXTRACTABLE] is True
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            private[Attribute.VALUE]
        wrapping = session.generate_key(KeyType.AES, 256, template={Attribute.WRAP: True, Attribute.TOKEN: False})
        with pytest.raises(pkcs11.exceptions.KeyUnextractable):
            wrapping.wrap_key(private, mechanism=Mechanism.AES_KEY_WRAP_PAD)


def test_keygen_refuses_a_label_the_token_already_has(softhsm, pin_file, capsys):
    token = softhsm.new_token()
    assert main(keygen(softhsm, token, "validator1", pin_file)) == 0
    first = capsys.readouterr().out.strip()
    assert main(keygen(softhsm, token, "validator1", pin_file)) == 2
    err = capsys.readouterr().err
    assert "already holds a key labelled 'validator1'" in err and len(err.strip().splitlines()) == 1
    _, (key,) = open_token_keys(softhsm.module, token, ["validator1"], pin_file, None, "signer.pkcs11")
    assert key.address == first


def test_a_wrong_pin_a_missing_token_or_key_is_one_clear_error(softhsm, pin_file, tmp_path, capsys):
    token = softhsm.new_token()
    wrong = tmp_path / "wrong-pin"
    wrong.write_text("0000000000\n")
    assert main(keygen(softhsm, token, "validator1", wrong)) == 2
    assert "PIN for token" in capsys.readouterr().err
    with pytest.raises(KeyringError, match="no token labelled 'absent'"):
        open_token_keys(softhsm.module, "absent", ["validator1"], pin_file, None, "signer.pkcs11")
    with pytest.raises(KeyringError, match="signer.pkcs11_key: .*no Ed25519 key pair labelled 'nothing'"):
        open_token_keys(softhsm.module, token, ["nothing"], pin_file, None, "signer.pkcs11")
    with pytest.raises(KeyringError, match="signer.pkcs11_pin: the PIN variable SOMNODE_NO_SUCH_PIN"):
        open_token_keys(softhsm.module, token, ["validator1"], None, "SOMNODE_NO_SUCH_PIN", "signer.pkcs11")


def test_a_validator_rotates_from_one_token_key_to_another(softhsm, pin_file, tmp_path, capsys):
    """gov build rotate-key proves the new key in the token; gov sign approves with the old one there."""
    token = softhsm.new_token()
    for label in ("validator1", "validator1-2027"):
        assert main(keygen(softhsm, token, label, pin_file)) == 0
    old, new = capsys.readouterr().out.split()
    action = tmp_path / "rotate.json"
    in_token = ["--pkcs11", str(softhsm.module), "--token", token, "--pin-file", str(pin_file)]
    assert main(["gov", "build", "rotate-key", "--old", old, *in_token, "--label", "validator1-2027",
                 "--out", str(action), "--chain-id", "som-main", "--sequence", "0", "--expiry-height", "50"]) == 0
    assert main(["gov", "sign", str(action), *in_token, "--label", "validator1"]) == 0
    out = capsys.readouterr().out
    assert f"{old} approved" in out
    assert main(["gov", "show", str(action)]) == 0
    shown = capsys.readouterr().out
    assert "the new key signed the rotation (checked)" in shown and f"{new}" in shown and "signature checked" in shown


def test_a_broken_session_loses_signatures_until_a_new_one_opens(softhsm, pin_file, capsys, caplog, monkeypatch):
    """What a token that goes away looks like: ``SigningUnavailable`` at once (consensus counts the message
    as lost), no new session sooner than ``REOPEN_S``, then the key signs again."""
    monkeypatch.setattr(token_module, "REOPEN_S", 0.2)
    token_label = softhsm.new_token()
    assert main(keygen(softhsm, token_label, "validator1", pin_file)) == 0
    token, (key,) = open_token_keys(softhsm.module, token_label, ["validator1"], pin_file, None, "signer.pkcs11")
    try:
        message = signing_bytes("som-test", MessageType.PREVOTE, 1, 0, bytes(32))
        assert verify_signature(key.public_key, message, key.sign(message))
        with token._lock:  # the session dies under the node, as when the device is pulled
            assert token._session is not None
            token._session.close()
        with caplog.at_level(logging.INFO, logger="node.signing.pkcs11"):
            with pytest.raises(SigningUnavailable):
                key.sign(message)
            with pytest.raises(SigningUnavailable, match="unavailable"):
                key.sign(message)  # too soon to try a new session
            time.sleep(0.25)
            assert verify_signature(key.public_key, message, key.sign(message))
        assert "pkcs11.unavailable" in caplog.text and "pkcs11.reopened" in caplog.text
    finally:
        token.close()


def test_somnode_signer_keeps_the_validator_key_in_a_token(softhsm, pin_file, tmp_path, capsys):
    """The remote signer with the pkcs11 backend: it links, signs in the token, and guards as with a file."""
    token = softhsm.new_token()
    assert main(keygen(softhsm, token, "validator1", pin_file)) == 0
    public_key = decode_address(capsys.readouterr().out.strip())
    link_key, port = KeyPair.generate(), free_ports(1)[0]
    config = tmp_path / "somnode-signer.toml"
    config.write_text(
        f'[service]\nname = "signer1"\nchain_id = "som-test"\nlisten = "127.0.0.1:{port}"\n'
        f'state_file = "state.json"\nvalidator = "{link_key.address}"\n\n'
        f'[keys]\nbackend = "pkcs11"\npkcs11_module = "{softhsm.module}"\npkcs11_token = "{token}"\n'
        f'pkcs11_key = "validator1"\npkcs11_pin_file = "{pin_file}"\n')
    log = tmp_path / "signer.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "node", "signer", "--config", str(config), "--new-state"],
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    client = RemoteSigner(Endpoint("127.0.0.1", port), "som-test", link_key, [public_key], timeout_s=5.0)
    try:
        client.start()
        deadline = time.monotonic() + 30
        while not client.linked:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        (key,) = client.keys()
        for height in (1, 2):
            message = signing_bytes("som-test", MessageType.PRECOMMIT, height, 0, bytes(32))
            assert verify_signature(public_key, message, key.sign(message))
        with pytest.raises(SigningUnavailable, match="refused"):
            key.sign(signing_bytes("som-test", MessageType.PRECOMMIT, 2, 0, None))
    finally:
        client.close()
        process.terminate()
        process.wait(10)
    text = log.read_text()
    assert "event=signer.started" in text and "event=signer.refused height=2" in text, text
