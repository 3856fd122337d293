"""``somnode run`` refuses bad inputs with one line naming the problem;
``somnode testnet`` brings validators up and Ctrl-C takes them all down."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from node.app.config import load_config, render_config
from node.cli import main
from node.core.keys import KeyPair, write_key_file
from node.tools.network import create_network
from tests.localnet import free_ports


def run_cli(args, capsys):
    code = main(args)
    return code, capsys.readouterr().err


def test_run_refuses_a_key_that_is_not_in_the_genesis(tmp_path, capsys):
    network = create_network(tmp_path / "net", validators=1, banks=1, ports=[tuple(free_ports(2))])
    config = network.config_files[0]
    stranger = tmp_path / "stranger.json"
    write_key_file(stranger, KeyPair.generate())
    loaded = load_config(config)
    config.write_text(render_config(replace(loaded, node=replace(loaded.node, key_file=stranger)), config.parent))
    code, err = run_cli(["run", "--config", str(config)], capsys)
    assert code == 2
    assert "node.key_file" in err and "not a validator" in err


def test_run_names_the_bad_config_field(tmp_path, capsys):
    network = create_network(tmp_path / "net", validators=1, banks=1, ports=[tuple(free_ports(2))])
    config = network.config_files[0]
    config.write_text(config.read_text().replace('listen = "127.0.0.1:', 'listen = "nowhere:x', 1))
    code, err = run_cli(["run", "--config", str(config)], capsys)
    assert code == 2 and "p2p.listen" in err


def test_testnet_starts_validators_and_ctrl_c_stops_them_all(tmp_path):
    base = _free_port_run(4)
    command = [sys.executable, "-m", "node", "testnet", "--validators", "2", "--dir", str(tmp_path / "tn"),
               "--base-port", str(base)]
    with _testnet_until_ctrl_c(command, base, validators=2):
        pass


@contextmanager
def _testnet_until_ctrl_c(command: list[str], base: int, validators: int, **popen) -> Iterator[list[str]]:
    """Start a testnet command, yield its API addresses once every validator has committed
    blocks, then press Ctrl-C and check that it stops them all; killed on any failure."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True, text=True, **popen)
    apis = [f"http://127.0.0.1:{base + 2 * k + 1}" for k in range(validators)]
    try:
        deadline = time.monotonic() + 120
        while not all(_height(url) >= 2 for url in apis):
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the testnet did not commit blocks on every validator in time"
            time.sleep(0.3)
        yield apis
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert process.wait(timeout=30) == 0
        assert all(_height(url) == -1 for url in apis), "a validator outlived Ctrl-C"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _height(url: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}/v1/status", timeout=2) as response:
            return json.loads(response.read())["height"]
    except OSError:
        return -1


def _free_port_run(count: int) -> int:
    """A base port with ``count`` consecutive free ports after it (testnet takes contiguous ports)."""
    for _ in range(50):
        base = free_ports(1)[0]
        if base + count > 65535:
            continue
        try:
            sockets = []
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no run of free ports")


def test_readme_run_command_brings_up_four_validators_and_a_transfer_shows_on_another_node(tmp_path):
    """The README's quick start, as a user types it: scripts/testnet.sh, then the wallet verbs."""
    root = Path(__file__).resolve().parent.parent
    base = _free_port_run(8)
    network = tmp_path / "tn"
    command = ["bash", str(root / "scripts" / "testnet.sh"), "--dir", str(network), "--base-port", str(base)]
    with _testnet_until_ctrl_c(command, base, validators=4, cwd=root) as apis:
        payee = KeyPair.generate().address

        def somnode(*args: str) -> str:
            done = subprocess.run([sys.executable, "-m", "node", *args], capture_output=True, text=True,
                                  timeout=60)
            assert done.returncode == 0, done.stdout + done.stderr
            return done.stdout

        sent = somnode("transfer", "--node", apis[0], "--key", str(network / "keys" / "bank1.json"),
                       "--to", payee, "--amount", "12.50")
        assert "committed" in sent, sent
        deadline = time.monotonic() + 30
        while "12.50 som" not in (shown := somnode("balance", "--node", apis[2], payee)):
            assert time.monotonic() < deadline, f"validator 3 never showed the transfer: {shown}"
            time.sleep(0.3)
