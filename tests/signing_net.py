"""Local networks whose validators sign elsewhere than in a key file: in a SoftHSM2 token, or at a
``somnode signer`` process; and a steady transfer load to run them under."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

from node.app.config import SignerSection, load_config, render_config
from node.core.address import decode_address
from node.core.fields import Endpoint
from node.core.keys import KeyPair, read_key_file, write_key_file
from node.tools.network import LocalNetwork
from node.tools.testnet import LocalTestnet, free_ports
from tests.softhsm import PIN, SoftHsm

STOP_GRACE_S = 10.0


def _replace_validator_key(network: LocalNetwork, index: int, address: str) -> None:
    """Put ``address`` in the genesis in place of validator ``index``'s file key (before the first start)."""
    old = read_key_file(network.validator_key_files[index]).address
    text = network.genesis_file.read_text()
    assert text.count(old) == 1, "the validator's address appears once in the genesis"
    network.genesis_file.write_text(text.replace(old, address))


def _set_signer(network: LocalNetwork, index: int, signer: SignerSection) -> None:
    path = network.config_files[index]
    config = load_config(path)
    config = dataclasses.replace(config, node=dataclasses.replace(config.node, key_file=None), signer=signer)
    path.write_text(render_config(config, path.parent))


def use_token(network: LocalNetwork, index: int, softhsm: SoftHsm) -> tuple[str, str]:
    """Validator ``index`` signs with a key made in a fresh SoftHSM2 token; (token label, key address)."""
    token = softhsm.new_token()
    pin_file = network.directory / f"validator{index + 1}" / "pkcs11-pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    label = f"validator{index + 1}"
    address = _keygen_in_token(softhsm, token, label, pin_file)
    _replace_validator_key(network, index, address)
    _set_signer(network, index, SignerSection(
        backend="pkcs11", pkcs11_module=softhsm.module, pkcs11_token=token, pkcs11_key=label,
        pkcs11_pin_file=pin_file.resolve()))
    return token, address


def _keygen_in_token(softhsm: SoftHsm, token: str, label: str, pin_file: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "node", "keygen", "--pkcs11", str(softhsm.module), "--token", token, "--label", label,
         "--pin-file", str(pin_file)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class SignerProcess:
    """A ``somnode signer`` for one validator of a local network, with its own directory and log."""

    def __init__(self, network: LocalNetwork, index: int) -> None:
        self.directory = network.directory / f"signer{index + 1}"
        self.directory.mkdir()
        self.config = self.directory / "somnode-signer.toml"
        self.log = self.directory / "signer.log"
        link_key = KeyPair.generate()
        link_key_file = network.directory / f"validator{index + 1}" / "signer-link.json"
        write_key_file(link_key_file, link_key)
        self.port = free_ports(1)[0]
        key_file = network.validator_key_files[index].resolve()
        self.config.write_text(
            "[service]\n"
            f'name = "signer{index + 1}"\n'
            f'chain_id = "{network.genesis.chain_id}"\n'
            f'listen = "127.0.0.1:{self.port}"\n'
            'state_file = "state.json"\n'
            f'validator = "{link_key.address}"\n\n'
            "[keys]\n"
            'backend = "file"\n'
            f'key_file = "{key_file}"\n')
        _set_signer(network, index, SignerSection(
            backend="remote", remote_address=Endpoint("127.0.0.1", self.port),
            remote_key=decode_address(read_key_file(key_file).address), remote_link_key_file=link_key_file.resolve(),
            remote_timeout_ms=1000))
        self.process: subprocess.Popen[bytes] | None = None
        self._new = True

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        log = open(self.log, "ab")
        extra = ["--new-state"] if self._new else []
        self._new = False
        self.process = subprocess.Popen(
            [sys.executable, "-m", "node", "signer", "--config", str(self.config), *extra],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.kill()

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"


def in_certificate(net: LocalTestnet, index: int, height: int, address: str) -> bool:
    return address in {p["validator"] for p in net.client(index).block(height)["commit"]["precommits"]}


def proposed_by(net: LocalTestnet, index: int, height: int, address: str) -> bool:
    """Whether ``address`` proposed block ``height``, as ``index`` committed it.

    A committed block whose proposer is a validator shows that the others
    accepted its signed proposal and prevoted it.  Its precommits are no such
    sign: a certificate holds the first quorum of precommits to arrive, and a
    validator that signs remotely is routinely the fourth of four.
    """
    return net.client(index).block(height)["proposer"] == address



def full_log(net: LocalTestnet, index: int) -> str:
    path = net.config_files[index].parent / "node.log"
    return path.read_text(errors="replace") if path.exists() else ""
