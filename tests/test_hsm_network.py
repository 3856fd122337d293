"""Four validator processes, one of which signs through a SoftHSM2 token: the network commits with it.

Validator 4's key is made inside the token by ``somnode keygen --pkcs11``
(its address goes into the genesis); its config names the module, token,
label and a PIN file, and no key file.  Blocks it proposed commit, so the
others accept what the token signs, and all four agree on every block.  The
key is not readable from the token: CKA_EXTRACTABLE is false and an export
attempt (reading CKA_VALUE, wrapping it) fails, while the validator runs.
"""

from __future__ import annotations

import time

import pkcs11
import pkcs11.exceptions
import pytest
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from tests.localnet import make_network, node_log, running
from tests.signing_net import proposed_by, use_token
from tests.softhsm import PIN

TIMEOUT_S = 60


def test_a_network_with_a_validator_signing_in_a_token_commits_and_the_key_stays_there(tmp_path, softhsm):
    network = make_network(tmp_path / "net", validators=4)
    token_label, address = use_token(network, 3, softhsm)
    with running(network) as net:
        net.wait_height(3, timeout_s=TIMEOUT_S)
        deadline = time.monotonic() + TIMEOUT_S
        seen = 0
        while seen < 3:
            assert time.monotonic() < deadline, f"no block proposed by validator4 committed:\n{node_log(net, 3)}"
            top = net.status(0)["height"]
            seen = sum(proposed_by(net, 0, height, address) for height in range(2, top + 1))
            time.sleep(0.3)
        assert net.status(3)["node_id"] == address
        top = min(net.status(i)["height"] for i in range(4))
        assert len({net.client(i).block(top)["app_hash"] for i in range(4)}) == 1

        token = pkcs11.lib(str(softhsm.module)).get_token(token_label=token_label)
        with token.open(user_pin=PIN, rw=True) as session:
            private = session.get_key(ObjectClass.PRIVATE_KEY, KeyType.EC_EDWARDS, label="validator4")
            assert private[Attribute.EXTRACTABLE] is False
            assert private[Attribute.SENSITIVE] is True
            with pytest.raises(pkcs11.exceptions.AttributeSensitive):
                private[Attribute.VALUE]
            wrapping = session.generate_key(KeyType.AES, 256, template={Attribute.WRAP: True, Attribute.TOKEN: False})
            with pytest.raises(pkcs11.exceptions.KeyUnextractable):
                wrapping.wrap_key(private, mechanism=Mechanism.AES_KEY_WRAP_PAD)
        net.wait_height(top + 2, timeout_s=TIMEOUT_S)
        assert "pkcs11.unavailable" not in node_log(net, 3)
