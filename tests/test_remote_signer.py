"""The remote signer in one process: the validator's client and a ``SignerService`` on loopback.

The client links, signs through the service, and sees a refusal or an absent
signer as ``SigningUnavailable`` at once, never as a hang or a crash; the
service refuses links from anyone but its validator, and re-signs only the
identical message at its high-water mark.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from consensus.crypto import SigningUnavailable
from consensus.messages import MessageType, signing_bytes
from node.core.fields import Endpoint
from node.core.keys import KeyPair, verify_signature, write_key_file
from node.p2p.handshake import HANDSHAKE_DOMAIN, Role
from node.signing.guard import HighWaterMark
from node.signing.remote import RemoteSigner
from node.signing.server import SignerService
from node.tools.testnet import free_ports

CHAIN = "som-test"
VALUE = bytes(range(32))


class ServiceThread:
    """A ``SignerService`` on its own event loop in a thread, started and stopped by the test."""

    def __init__(self, port: int, validator: bytes, keys: list[KeyPair], state: HighWaterMark) -> None:
        self.port, self.validator, self.keys, self.state = port, validator, keys, state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    def start(self) -> None:
        started = threading.Event()

        async def serve() -> None:
            service = SignerService(listen=Endpoint("127.0.0.1", self.port), chain_id=CHAIN,
                                    validator=self.validator, keys=self.keys, state=self.state)
            self._stop = asyncio.Event()
            await service.start()
            started.set()
            await self._stop.wait()
            await service.stop()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(serve())
            self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert started.wait(10), "the signer service did not start"

    def stop(self) -> None:
        if self._thread is None:
            return
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._thread = None


@contextmanager
def linked(tmp_path, keys: list[KeyPair] | None = None, link_key: KeyPair | None = None,
           served_validator: bytes | None = None, expected: list[bytes] | None = None,
           state: HighWaterMark | None = None) -> Iterator[tuple[RemoteSigner, ServiceThread]]:
    keys = keys or [KeyPair.generate()]
    link_key = link_key or KeyPair.generate()
    port = free_ports(1)[0]
    state = state or HighWaterMark.create(tmp_path / "state.json", CHAIN)
    service = ServiceThread(port, served_validator or link_key.public_key, keys, state)
    service.start()
    client = RemoteSigner(Endpoint("127.0.0.1", port), CHAIN, link_key,
                          expected or [k.public_key for k in keys], timeout_s=2.0)
    client.start()
    try:
        yield client, service
    finally:
        client.close()
        service.stop()


def wait_linked(client: RemoteSigner, timeout_s: float = 10.0, linked: bool = True) -> None:
    deadline = time.monotonic() + timeout_s
    while client.linked != linked:
        assert time.monotonic() < deadline, f"the client never became {'linked' if linked else 'unlinked'}"
        time.sleep(0.02)


def vote(kind: MessageType, height: int, round: int, vid: bytes | None = VALUE) -> bytes:
    return signing_bytes(CHAIN, kind, height, round, vid)


def test_votes_are_signed_by_the_validator_key_at_the_signer(tmp_path):
    key = KeyPair.generate()
    with linked(tmp_path, keys=[key]) as (client, _):
        wait_linked(client)
        remote = client.keys()[0]
        assert remote.public_key == key.public_key
        for height in (1, 2):
            for kind in (MessageType.PREVOTE, MessageType.PRECOMMIT):
                message = vote(kind, height, 0)
                assert verify_signature(key.public_key, message, remote.sign(message))
        proposal = signing_bytes(CHAIN, MessageType.PROPOSAL, 3, 0, VALUE, -1)
        assert remote.sign(proposal) == key.sign(proposal)


def test_the_double_sign_guard_refuses_a_conflicting_vote_and_resends_the_identical_one(tmp_path, caplog):
    with linked(tmp_path) as (client, service):
        wait_linked(client)
        remote = client.keys()[0]
        first = remote.sign(vote(MessageType.PREVOTE, 5, 1))
        assert remote.sign(vote(MessageType.PREVOTE, 5, 1)) == first  # the same message: the same signature
        with caplog.at_level(logging.WARNING), pytest.raises(SigningUnavailable):
            remote.sign(vote(MessageType.PREVOTE, 5, 1, None))  # nil at the same height, round and step
        with pytest.raises(SigningUnavailable):
            remote.sign(vote(MessageType.PRECOMMIT, 4, 9))  # a lower height
        assert remote.sign(vote(MessageType.PRECOMMIT, 5, 1))
        assert service.state.mark is not None and service.state.mark.state.height == 5
        assert "signer.refused height=5 round=1 step=prevote high_water=5/1/prevote" in caplog.text
        assert "remote_signer.refused" in caplog.text
        reloaded = HighWaterMark.load(tmp_path / "state.json", CHAIN)
        assert reloaded.mark == service.state.mark, "the mark was durable before the signature left"


def test_the_signer_signs_only_consensus_messages_and_its_own_handshakes(tmp_path):
    key = KeyPair.generate()
    with linked(tmp_path, keys=[key]) as (client, _):
        wait_linked(client)
        remote = client.keys()[0]
        with pytest.raises(SigningUnavailable):
            remote.sign(b"somnode-tx-v1\x00 a payment the validator never asks for")
        with pytest.raises(SigningUnavailable):
            remote.sign(signing_bytes("another-chain", MessageType.PREVOTE, 1, 0, VALUE))
        chain = CHAIN.encode()
        other = KeyPair.generate().public_key

        def transcript(initiator: bytes, responder: bytes, role: Role) -> bytes:
            return (HANDSHAKE_DOMAIN + bytes([len(chain)]) + chain + bytes(32) + initiator + responder
                    + bytes(64) + bytes([role]))

        assert remote.sign(transcript(key.public_key, other, Role.INITIATOR))
        assert remote.sign(transcript(other, key.public_key, Role.RESPONDER))
        with pytest.raises(SigningUnavailable):
            remote.sign(transcript(other, key.public_key, Role.INITIATOR))  # as another validator


def test_an_absent_signer_fails_fast_and_the_client_relinks_when_it_returns(tmp_path):
    with linked(tmp_path) as (client, service):
        wait_linked(client)
        remote = client.keys()[0]
        assert remote.sign(vote(MessageType.PREVOTE, 1, 0))
        service.stop()
        wait_linked(client, linked=False)
        started = time.monotonic()
        with pytest.raises(SigningUnavailable):
            remote.sign(vote(MessageType.PRECOMMIT, 1, 0))
        assert time.monotonic() - started < 0.5, "an absent signer is a lost vote at once, not a wait"
        service.start()
        wait_linked(client)
        assert remote.sign(vote(MessageType.PRECOMMIT, 1, 0))


def test_the_signer_refuses_a_link_from_another_validator(tmp_path, caplog):
    with caplog.at_level(logging.WARNING), \
            linked(tmp_path, served_validator=KeyPair.generate().public_key) as (client, _):
        time.sleep(1.0)
        assert not client.linked
        with pytest.raises(SigningUnavailable):
            client.keys()[0].sign(vote(MessageType.PREVOTE, 1, 0))
    assert "signer.link_refused" in caplog.text


def test_the_client_refuses_a_signer_holding_other_keys(tmp_path, caplog):
    with caplog.at_level(logging.DEBUG), linked(tmp_path, expected=[KeyPair.generate().public_key]) as (client, _):
        time.sleep(1.0)
        assert not client.linked
    assert "not_the_keys_this_validator's_config_names" in caplog.text.replace(" ", "_")


# ---- somnode signer: its config and its state file

def signer_config(tmp_path, keys: str) -> str:
    path = tmp_path / "somnode-signer.toml"
    path.write_text(f'[service]\nname = "signer1"\nchain_id = "{CHAIN}"\nlisten = "127.0.0.1:{free_ports(1)[0]}"\n'
                    f'state_file = "state.json"\nvalidator = "{KeyPair.generate().address}"\n\n[keys]\n{keys}')
    return str(path)


def test_the_signer_does_not_start_without_its_state_file(tmp_path, capsys):
    from node.cli import main

    key_file = tmp_path / "validator.json"
    write_key_file(key_file, KeyPair.generate())
    config = signer_config(tmp_path, f'backend = "file"\nkey_file = "{key_file}"\n')
    assert main(["signer", "--config", config]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "service.state_file:" in err and "does not exist" in err and "--new-state" in err
    HighWaterMark.create(tmp_path / "state.json", CHAIN)
    assert main(["signer", "--config", config, "--new-state"]) == 2
    assert "already exists; a signer's state file is never replaced" in capsys.readouterr().err


def test_the_signer_config_names_the_bad_field(tmp_path, capsys):
    from node.cli import main

    for keys, expected in (
        ('backend = "remote"\n', "keys.backend: a signer keeps its keys in file or pkcs11, not 'remote'"),
        ('backend = "file"\n', "keys.key_file: missing required field (keys.backend is 'file')"),
        ('backend = "file"\nkey_file = "k.json"\npkcs11_token = "t"\n',
         "keys.pkcs11_token: not used with keys.backend = 'file'; remove it"),
    ):
        assert main(["signer", "--config", signer_config(tmp_path, keys)]) == 2
        assert capsys.readouterr().err.strip() == f"somnode signer: error: {expected}"


def test_a_signer_whose_key_cannot_be_read_names_the_field_and_makes_no_state_file(tmp_path, capsys):
    from node.cli import main

    config = signer_config(tmp_path, f'backend = "file"\nkey_file = "{tmp_path / "absent.json"}"\n')
    assert main(["signer", "--config", config, "--new-state"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("somnode signer: error: keys.key_file: key file ") and err.endswith("does not exist")
    assert not (tmp_path / "state.json").exists(), "a later --new-state must not find a stray state file"
