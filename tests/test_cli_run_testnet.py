"""``somnode run`` refuses bad inputs with one line naming the problem;
``somnode testnet`` brings validators up and Ctrl-C takes them all down."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from node.app.config import load_config, render_config
from node.cli import main
from node.cli import testnet as testnet_cli
from node.core.keys import KeyPair, read_key_file, write_key_file
from node.tools.network import create_network
from tests.localnet import free_ports


def run_cli(args, capsys):
    code = main(args)
    return code, capsys.readouterr().err


def test_run_warns_of_a_key_that_is_not_a_validator_yet_and_keeps_running(tmp_path):
    """A validator the board is adding starts before its local ledger knows it (it has to catch up
    to see the change), so a key outside the set is a warning that names it, not a refusal."""
    network = create_network(tmp_path / "net", validators=1, banks=1, ports=[tuple(free_ports(2))])
    config = network.config_files[0]
    stranger = tmp_path / "stranger.json"
    write_key_file(stranger, KeyPair.generate())
    loaded = load_config(config)
    config.write_text(render_config(replace(loaded, node=replace(loaded.node, key_file=stranger)), config.parent))
    process = subprocess.Popen([sys.executable, "-m", "node", "run", "--config", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    watchdog = threading.Timer(60, process.kill)  # the loop below ends even if the warning never comes
    watchdog.start()
    try:
        assert process.stderr is not None
        warning = next((line for line in process.stderr if "node.not_a_validator" in line), "")
        assert f"key={read_key_file(stranger).address}" in warning
        assert process.poll() is None, "the node stopped"
    finally:
        watchdog.cancel()
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)


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
    """Start a testnet command, yield its API addresses once every validator has committed the first
    block (an idle network then waits for the heartbeat), then press Ctrl-C and check that it stops
    them all; killed on any failure."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True, text=True, **popen)
    apis = [f"http://127.0.0.1:{base + 2 * k + 1}" for k in range(validators)]
    try:
        deadline = time.monotonic() + 120
        while not all(_height(url) >= 1 for url in apis):
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the testnet did not commit its first block on every validator in time"
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


def test_the_readme_quick_start_runs_as_written(tmp_path):
    """The README's quick start as a user types it: scripts/testnet.sh, then the wallet commands
    of the shell block after it, with only the ports and the directory moved to this test's."""
    root = Path(__file__).resolve().parent.parent
    block = re.search(r"in another\nterminal:\n\n```sh\n(.*?)```", (root / "README.md").read_text(), re.DOTALL)
    assert block is not None, "the README's quick start has no shell block of wallet commands"
    for verb in ("balance", "transfer", "tx", "issue", "redeem", "status"):
        assert f"somnode {verb} " in block[1]
    base = _free_port_run(8)
    network = tmp_path / "tn"
    command = ["bash", str(root / "scripts" / "testnet.sh"), "--dir", str(network), "--base-port", str(base)]
    with _testnet_until_ctrl_c(command, base, validators=4, cwd=root) as apis:
        script = block[1].replace("source .venv/bin/activate", f"source {Path(sys.executable).parent / 'activate'}")
        for k, url in enumerate(apis):
            script = script.replace(f"127.0.0.1:{26657 + 2 * k}", url.removeprefix("http://"))
        script = script.replace("testnet/", f"{network}/")
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True,
                              timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        said = done.stdout.splitlines()
        assert said[0].endswith("  1000000.00 som  nonce=0"), said
        assert "amount  12.50 som" in said and 'memo    "invoice 2041"' in said, said
        assert any(re.fullmatch(r"supply +3499750\.00 som", line) for line in said), said
        payee = said[0].split()[0]
        deadline = time.monotonic() + 30
        while "1499762.50 som" not in (shown := _somnode("balance", "--node", apis[2], payee)):
            assert time.monotonic() < deadline, f"validator 3 never showed the payments: {shown}"
            time.sleep(0.3)


def _somnode(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "node", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _processes() -> dict[int, tuple[int, str]]:
    """Every process: pid -> (parent pid, state letter), read from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            found[int(entry)] = (int(fields[1]), fields[0])
    return found


def _descendants(pid: int) -> set[int]:
    table = _processes()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, (parent, _) in table.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie has ended; only its entry waits to be reaped)."""
    table = _processes()
    return {pid for pid in pids if pid in table and table[pid][1] != "Z"}


def _start_testnet(tmp_path: Path, validators: int, **popen) -> tuple[subprocess.Popen, list[str]]:
    base = _free_port_run(2 * validators)
    command = [sys.executable, "-m", "node", "testnet", "--validators", str(validators), "--dir",
               str(tmp_path / "tn"), "--base-port", str(base)]
    process = subprocess.Popen(popen.pop("wrap", []) + command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True, text=True, **popen)
    return process, [f"http://127.0.0.1:{base + 2 * k + 1}" for k in range(validators)]


def _wait_committing(process: subprocess.Popen, apis: list[str]) -> None:
    deadline = time.monotonic() + 120
    while not all(_height(url) >= 1 for url in apis):
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, "the testnet did not commit its first block on every validator in time"
        time.sleep(0.3)


# A script that starts the testnet in the background (`somnode testnet &`) runs it with SIGINT
# ignored, as a non-interactive shell does for background jobs; the supervisor must still stop.
BACKGROUND_JOB = ["bash", "-c", "trap '' INT; exec \"$@\"", "bash"]


@pytest.mark.parametrize(("how", "wrap"), [
    ("SIGTERM to the supervisor", []),
    ("SIGHUP to the supervisor", []),
    ("SIGINT to the process group of a background job", BACKGROUND_JOB),
])
def test_a_signal_stops_every_validator_and_helper_cleanly(tmp_path, how, wrap):
    process, apis = _start_testnet(tmp_path, validators=2, wrap=wrap)
    family: set[int] = set()
    try:
        _wait_committing(process, apis)
        validators = {pid for pid, (parent, _) in _processes().items() if parent == process.pid}
        family = _descendants(process.pid)
        helpers = family - validators
        assert len(validators) == 2 and helpers, (validators, family)
        if how.startswith("SIGINT"):
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGTERM if how.startswith("SIGTERM") else signal.SIGHUP)
        assert process.wait(timeout=60) == 0, process.stdout.read()
        assert _alive(family) == set(), f"outlived the supervisor after {how}: {_alive(family)}"
        output = process.stdout.read()
        assert "stopping validators" in output and "Traceback" not in output, output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for pid in _alive(family):
            os.kill(pid, signal.SIGKILL)


def test_a_second_start_says_in_one_line_that_a_testnet_is_running(tmp_path):
    process, apis = _start_testnet(tmp_path, validators=1)
    second = [sys.executable, "-m", "node", "testnet", "--dir", str(tmp_path / "tn")]
    family: set[int] = set()
    try:
        _wait_committing(process, apis)
        family = _descendants(process.pid)
        again = subprocess.run(second, capture_output=True, text=True, timeout=60)
        assert again.returncode == 1
        assert again.stdout == "" and len(again.stderr.splitlines()) == 1, again.stderr
        assert f"already running in {tmp_path / 'tn'} (supervisor pid {process.pid})" in again.stderr
        # A supervisor killed outright leaves its validators behind: the next start names them too.
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        again = subprocess.run(second, capture_output=True, text=True, timeout=60)
        assert again.returncode == 1 and len(again.stderr.splitlines()) == 1, again.stderr
        assert f"validator1 already answers at {apis[0]}" in again.stderr
        assert _alive(family), "the second start must not touch validators it did not start"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in _alive(family):  # the orphaned validators and their helpers
            os.kill(pid, signal.SIGKILL)


class _TwoRounds:
    """A stand-in network whose validators answer two rounds of the live line, then ask it to stop."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.asked = 0

    def __len__(self) -> int:
        return 2

    def name(self, index: int) -> str:
        return f"validator{index + 1}"

    def status(self, index: int) -> dict | None:
        self.asked += 1
        if self.asked == 4:
            self.stop.set()
        if index == 1:
            return None
        return {"height": 100 + self.asked, "committed_txs": 1_234_567}

    def alive(self, index: int) -> bool:
        return True


def test_the_live_line_shows_the_block_rate_and_the_ledgers_committed_count(capsys):
    stop = threading.Event()
    testnet_cli._monitor(_TwoRounds(stop), stop)
    last = capsys.readouterr().out.split("\r")[-1]
    assert last.startswith("v1=103 v2=down  ")
    assert re.search(r"  [0-9.]+ blocks/s  1,234,567 txs committed", last), last
