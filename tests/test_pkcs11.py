"""Validator keys in a PKCS#11 token (SoftHSM2): made inside it, never readable from it, signing there.

``somnode keygen --pkcs11`` makes the key and prints its address; the key
signs plain Ed25519 that the node's verifier accepts; its private half is
sensitive and not extractable, so reading its value and wrapping it out of
the token both fail; a wrong PIN or a label the token lacks is one line.
"""

from __future__ import annotations

import pkcs11
import pkcs11.exceptions
import pytest
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from consensus.messages import MessageType, signing_bytes
from node.cli import main
from node.core.address import decode_address
from node.core.keys import verify_signature
from node.signing.keyring import KeyringError, open_token_keys
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
