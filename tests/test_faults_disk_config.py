"""Disk and configuration faults on real ``somnode run`` processes.

A one-validator network commits some transfers and is stopped; that directory
is the pristine copy every case starts from.  Each case damages one thing
(the config, the data directory, the LevelDB files, the key, the genesis, the
signing state, or the free space on the disk), runs ``somnode run`` and
expects it to refuse to start (or to stop) with a non-zero exit and one line
on stderr naming the problem.  Then the fault is repaired and the node must
open exactly the committed height and app hash it had before: a fault may
stop the node, never damage what it committed.

The tests run as root, for whom file permissions do not apply, so unreadable
and read-only files are simulated by paths of the wrong type instead (a file
where a directory belongs, a directory where a file belongs).  The full disk
and the read-only data directory are a small tmpfs mounted for the test (the
latter remounted read-only, which binds root too; skipped where mounting is
not allowed).
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import plyvel
import pytest

from consensus.events import SigningState, Step
from consensus.messages import MessageType, Proposal, Vote, signing_bytes
from consensus.wal import Opened, Signed
from node.app.config import load_config
from node.core.block import block_hash
from node.core.genesis import load_genesis
from node.core.keys import KeyPair, read_key_file
from node.host.proposer import block_on
from node.host.tip import read_tip
from node.host.wal import WAL_FILE, FileWalStorage
from node.ledger.errors import LedgerError
from node.ledger.state import GenesisState
from node.ledger.store import LedgerStore
from node.tools.client import ApiClientError, NodeClient
from tests.localnet import Wallet, make_network, running

START_TIMEOUT_S = 60
REFUSAL_TIMEOUT_S = 15  # a refusing node exits within a second or two; one still up after this serves
ERROR_LINE = re.compile(r"^somnode run: error: (?P<message>.+)$")
OPEN_LINE = re.compile(r"event=ledger\.open path=\S+ chain_id=\S+ height=(?P<height>\d+) "
                       r"app_hash=(?P<app_hash>[0-9a-f]{64})")


@dataclass(frozen=True, slots=True)
class Committed:
    height: int
    app_hash: str


@dataclass(frozen=True, slots=True)
class Node:
    """A copy of the pristine one-validator network: its paths and what it has committed."""

    directory: Path
    pristine: Path
    config: Path
    data_dir: Path
    key_file: Path
    genesis_file: Path
    committed: Committed

    @property
    def ledger(self) -> Path:
        return self.data_dir / "ledger"

    @property
    def wal(self) -> Path:
        return self.data_dir / WAL_FILE


def run_node_command(config: Path) -> list[str]:
    return [sys.executable, "-m", "node", "run", "--config", str(config)]


def refused(node: Node, timeout_s: float = REFUSAL_TIMEOUT_S) -> tuple[int, str]:
    """Run the node expecting it to exit by itself; (exit code, the one error line). Always reaped."""
    result = subprocess.run(run_node_command(node.config), capture_output=True, text=True, timeout=timeout_s,
                            stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    errors = [m["message"] for m in map(ERROR_LINE.match, result.stderr.splitlines()) if m]
    assert result.returncode != 0, result.stderr[-3000:]
    assert len(errors) == 1, f"expected one error line:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.returncode, errors[0]


@contextmanager
def serving(node: Node, log: Path) -> Iterator[subprocess.Popen]:
    """The node as a process answering its API; terminated and reaped on exit, also on failure."""
    api = f"http://{load_config(node.config).api.listen}"
    with open(log, "ab") as out:
        process = subprocess.Popen(run_node_command(node.config), stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                NodeClient(api, 2.0).status()
                break
            except ApiClientError:
                assert process.poll() is None, f"the node exited:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, "the node did not answer in time"
                time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def opened_state(log: Path) -> Committed:
    """The height and app hash the node's ledger reported on its last open."""
    matches = OPEN_LINE.findall(log.read_text())
    assert matches, log.read_text()[-3000:]
    height, app_hash = matches[-1]
    return Committed(int(height), app_hash)


def assert_intact(node: Node, log: Path) -> None:
    """The repaired node opens exactly what was committed before the fault, and commits on from it."""
    with serving(node, log):
        assert opened_state(log) == node.committed
        client = NodeClient(f"http://{load_config(node.config).api.listen}", 5.0)
        deadline = time.monotonic() + START_TIMEOUT_S
        while client.status()["height"] <= node.committed.height:
            assert time.monotonic() < deadline, "the repaired node does not commit"
            time.sleep(0.1)
        assert client.block(node.committed.height)["app_hash"] == node.committed.app_hash


# ---- the pristine network, made once

@dataclass(frozen=True, slots=True)
class Pristine:
    directory: Path
    committed: Committed


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Pristine:
    root = tmp_path_factory.mktemp("pristine")
    directory = root / "net"
    network = make_network(directory, validators=1)
    wallet = Wallet(network.bank_key_files[0], network.genesis.chain_id)
    payees = [KeyPair.generate().public_key for _ in range(3)]
    with running(network) as net:
        client = net.client(0)
        # Enough data (~300 KB) for many table blocks, most of which opening the store never reads.
        transfers = [wallet.transfer(payees[i % 3], 100 + i, memo=f"invoice {i:05d} " + "x" * 200) for i in range(400)]
        for start in range(0, len(transfers), 100):
            assert all(r["accepted"] for r in client.submit([stx.raw for stx in transfers[start:start + 100]]))
        client.wait_committed(transfers[-1].hash.hex())
    # A second run turns the first run's log into table files: the store then holds both kinds.
    with running(network) as net:
        net.wait_height(net.status(0)["height"] + 2)
    config = load_config(network.config_files[0])
    scratch = root / "scratch"
    shutil.copytree(config.node.data_dir / "ledger", scratch)
    with LedgerStore.open(scratch, GenesisState.from_genesis(load_genesis(config.node.genesis_file))) as store:
        committed = Committed(store.height, store.app_hash.hex())
    assert committed.height >= 3
    return Pristine(directory, committed)


@pytest.fixture
def node(pristine: Pristine, tmp_path: Path) -> Node:
    """A fresh copy of the pristine network (config paths are relative, so the copy is self-contained)."""
    directory = tmp_path / "net"
    shutil.copytree(pristine.directory, directory)
    config_path = directory / "validator1" / "config.toml"
    config = load_config(config_path)
    return Node(directory, pristine.directory, config_path, config.node.data_dir, config.node.key_file,
                config.node.genesis_file, pristine.committed)


# ---- the faults: each damages one thing and returns how to repair it

Repair = Callable[[], None]


def restore(node: Node, *paths: Path) -> Repair:
    """Put the given paths back from the pristine copy, leaving everything else as the failed run left it."""
    def repair() -> None:
        for path in paths:
            source = node.pristine / path.relative_to(node.directory)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            if source.is_dir():
                shutil.copytree(source, path)
            else:
                shutil.copy2(source, path)
    return repair


def edit_config(node: Node, pattern: str, replacement: str) -> Repair:
    text = node.config.read_text()
    changed = re.sub(pattern, replacement, text, count=1, flags=re.MULTILINE)
    assert changed != text, pattern
    node.config.write_text(changed)
    return restore(node, node.config)


def overwrite(path: Path, offset: int, data: bytes) -> None:
    """Overwrite bytes in place, as a bad sector or a stray write would."""
    size = path.stat().st_size
    assert size >= offset + len(data), (path, size)
    with open(path, "r+b") as out:
        out.seek(offset)
        out.write(data)


def leveldb_file(node: Node, pattern: str) -> Path:
    found = sorted(node.ledger.glob(pattern), key=lambda p: p.stat().st_size)
    assert found, f"no {pattern} in {sorted(p.name for p in node.ledger.iterdir())}"
    return found[-1]


def move_aside(path: Path, replacement: Callable[[Path], None]) -> Repair:
    """Move ``path`` away and put ``replacement`` in its place; the repair moves it back untouched."""
    aside = path.with_name(path.name + ".aside")
    path.rename(aside)
    replacement(path)

    def repair() -> None:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        aside.rename(path)
    return repair


def other_genesis(node: Node) -> Repair:
    genesis = load_genesis(node.genesis_file)
    node.genesis_file.write_text(dataclasses.replace(genesis, genesis_time="2020-01-01T00:00:00Z").to_json())
    return restore(node, node.genesis_file)


GARBAGE = bytes(range(256)) * 4


def damage(node: Node, path: Path, how: Callable[[Path], object]) -> Repair:
    """Damage one file in place; the repair puts the pristine file back."""
    how(path)
    return restore(node, path)


def data_dir_under_a_file(node: Node) -> Repair:
    (node.key_file.parent / "blocker").write_bytes(b"x")
    return edit_config(node, r"^data_dir = .*$", 'data_dir = "../keys/blocker/data"')


def garbage(path: Path) -> None:
    path.write_bytes(GARBAGE)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 3])


def corrupt_at(offset: int, length: int) -> Callable[[Path], None]:
    return lambda path: overwrite(path, offset, GARBAGE[:length])


LEDGER_REFUSAL = r"ledger store .*corrupt|cannot open ledger store"

# fault -> (how to cause it, what the one error line must say)
FAULTS: dict[str, tuple[Callable[[Node], Repair], str]] = {
    "config_not_toml": (lambda n: edit_config(n, r"^\[api\]$", "[api"), r"not valid TOML"),
    "config_unknown_field": (lambda n: edit_config(n, r"^\[api\]$", "[api]\ncolour = 1"),
                             r"api\.colour: unknown field"),
    "config_wrong_type": (lambda n: edit_config(n, r"^max_body_bytes = .*$", 'max_body_bytes = "1MB"'),
                          r"api\.max_body_bytes: expected an integer"),
    "config_out_of_range": (lambda n: edit_config(n, r"^timeout_propose_ms = .*$", "timeout_propose_ms = 0"),
                            r"consensus\.timeout_propose_ms: must be between"),
    "config_bad_listen": (lambda n: edit_config(n, r"^listen = .*$", 'listen = "nowhere"'),
                          r"p2p\.listen: expected host:port"),
    "config_missing_field": (lambda n: edit_config(n, r"^key_file = .*\n", ""),
                             r"node\.key_file: missing required field"),
    "config_data_dir_under_a_file": (data_dir_under_a_file, r"node\.data_dir: .*blocker"),
    "data_dir_is_a_file": (lambda n: move_aside(n.data_dir, garbage), r"node\.data_dir: .*data"),
    "ledger_is_a_file": (lambda n: move_aside(n.ledger, garbage), r"ledger"),
    "leveldb_current_garbage": (lambda n: damage(n, n.ledger / "CURRENT", corrupt_at(0, 8)), LEDGER_REFUSAL),
    "leveldb_current_names_a_missing_manifest": (
        lambda n: damage(n, n.ledger / "CURRENT", lambda p: p.write_text("MANIFEST-999999\n")), LEDGER_REFUSAL),
    "leveldb_manifest_garbage": (lambda n: damage(n, leveldb_file(n, "MANIFEST-*"), corrupt_at(40, 64)),
                                 LEDGER_REFUSAL),
    # Inside the first record's payload, its 7-byte header intact: a checksum mismatch LevelDB reports.
    # (Garbage in the last record's header looks like a write torn by a crash, which LevelDB drops.)
    "leveldb_log_garbage": (lambda n: damage(n, leveldb_file(n, "*.log"), corrupt_at(12, 16)), LEDGER_REFUSAL),
    "leveldb_table_missing": (lambda n: damage(n, leveldb_file(n, "*.ldb"), Path.unlink), LEDGER_REFUSAL),
    "key_file_missing": (lambda n: damage(n, n.key_file, Path.unlink), r"key file .* does not exist"),
    "key_file_garbage": (lambda n: damage(n, n.key_file, garbage), r"key file .* unreadable"),
    "key_file_truncated": (lambda n: damage(n, n.key_file, truncate), r"key file .* unreadable"),
    "key_file_is_a_directory": (lambda n: move_aside(n.key_file, Path.mkdir), r"key file .* unreadable"),
    "genesis_garbage": (lambda n: damage(n, n.genesis_file, garbage), r"genesis"),
    "genesis_of_another_chain": (other_genesis, r"ledger store .* belongs to chain .* genesis hash"),
    "wal_is_a_directory": (lambda n: move_aside(n.wal, Path.mkdir),
                           r"node\.data_dir: cannot use the consensus write-ahead log"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_fault_stops_the_node_with_one_line_and_damages_nothing(node: Node, tmp_path: Path, fault: str):
    damage, says = FAULTS[fault]
    repair = damage(node)
    code, message = refused(node)
    print(f"fault={fault} exit={code} says={message!r}")
    assert re.search(says, message), f"exit {code}: {message!r} does not say {says!r}"
    repair()
    assert_intact(node, tmp_path / "repaired.log")


def test_a_damaged_table_block_stops_the_node(node: Node, tmp_path: Path):
    repair = restore(node, hide_damage_in_a_table(node, tmp_path / "scratch"))
    code, message = refused(node)
    assert re.search(r"ledger store .*corrupt", message), message
    repair()
    assert_intact(node, tmp_path / "repaired.log")


def hide_damage_in_a_table(node: Node, scratch: Path) -> Path:
    """Damage a table block that opening the store does not read; return the table.

    Which records share a block with the chain's meta records depends on the
    run, so offsets are tried on scratch copies: the damage must leave the
    store openable and yet make a checksummed read of the whole store fail.
    """
    genesis = GenesisState.from_genesis(load_genesis(node.genesis_file))
    for table in sorted(node.ledger.glob("*.ldb")):
        for offset in range(0, table.stat().st_size - 64, 64):  # the 48-byte footer stays intact
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.copytree(node.ledger, scratch)
            overwrite(scratch / table.name, offset, GARBAGE[:16])
            try:
                LedgerStore.open(scratch, genesis).close()
            except LedgerError:
                continue
            try:
                with plyvel.DB(str(scratch)) as db:
                    for _ in db.iterator(verify_checksums=True):
                        pass
            except plyvel.CorruptionError:
                overwrite(table, offset, GARBAGE[:16])
                return table
    pytest.skip("every table block of this store is read on open, so no damage can hide")


def log_a_precommitted_block_that_was_never_written(node: Node) -> bytes:
    """What a crash leaves between precommitting block H+1 and writing it: the write-ahead
    log holds the validator's proposal, prevote and precommit; the ledger lacks the block.
    Returns the block's hash."""
    genesis = load_genesis(node.genesis_file)
    key = read_key_file(node.key_file)
    store = LedgerStore.open(node.ledger, GenesisState.from_genesis(genesis))
    try:
        height = store.height + 1
        tip = read_tip(store)
        block = block_on(tip, genesis.chain_id, key.public_key, tip.time_ms + 1, ())
    finally:
        store.close()
    value = block.encode()
    vid = block_hash(value)
    proposal_bytes = signing_bytes(genesis.chain_id, MessageType.PROPOSAL, height, 0, vid, -1)
    proposal = Proposal(height, 0, value, -1, key.public_key, key.sign(proposal_bytes))
    votes = [Vote(kind, height, 0, vid, key.public_key, key.sign(signing_bytes(genesis.chain_id, kind, height, 0, vid)))
             for kind in (MessageType.PREVOTE, MessageType.PRECOMMIT)]
    node.wal.unlink()
    storage = FileWalStorage(node.wal)
    storage.replace([Opened(height, None), Signed(SigningState(height, 0, Step.PROPOSE), proposal),
                     Signed(SigningState(height, 0, Step.PREVOTE), votes[0]),
                     Signed(SigningState(height, 0, Step.PRECOMMIT), votes[1])])
    storage.close()
    return vid


def test_a_crash_between_precommit_and_commit_does_not_stall_a_lone_validator(node: Node, tmp_path: Path):
    vid = log_a_precommitted_block_that_was_never_written(node)
    log = tmp_path / "restarted.log"
    with serving(node, log):
        assert f"locked_round=0 locked_value={vid.hex()}" in log.read_text(), "the replay relearned the lock"
        assert opened_state(log) == node.committed
        client = NodeClient(f"http://{load_config(node.config).api.listen}", 5.0)
        deadline = time.monotonic() + 20
        while client.status()["height"] <= node.committed.height:
            assert time.monotonic() < deadline, "no commit after the restart"
            time.sleep(0.2)
        # It committed the very block it had precommitted, not another one.
        assert client.block(node.committed.height + 1)["hash"] == vid.hex()


# ---- a full disk: a small tmpfs (mounting needs root and a kernel that allows it here)

@contextmanager
def small_disk(mount_point: Path, size: str) -> Iterator[Path]:
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
                            capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()}): the full disk is not tested")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True, timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)


def fill(directory: Path) -> Path:
    """Take every free byte of the file system holding ``directory``."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (b"\0" * 65536, b"\0"):
            try:
                while os.write(fd, chunk):
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def moved_to(node: Node, disk: Path) -> tuple[Node, Repair]:
    """The node with a copy of its data directory on ``disk``, and the repair that points it back."""
    data_dir = disk / "data"
    shutil.copytree(node.data_dir, data_dir)
    repair_config = edit_config(node, r"^data_dir = .*$", f'data_dir = "{data_dir}"')
    return dataclasses.replace(node, data_dir=data_dir), repair_config


def test_a_full_disk_stops_the_node_with_one_line_and_damages_nothing(node: Node, tmp_path: Path):
    with small_disk(tmp_path / "disk", "8m") as disk:
        moved, repair_config = moved_to(node, disk)
        client = NodeClient(f"http://{load_config(node.config).api.listen}", 5.0)
        log = tmp_path / "full.log"
        with serving(moved, log) as process:
            before = client.status()["height"]
            filler = fill(disk)
            try:
                process.wait(timeout=REFUSAL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the node runs on with a full disk:\n{log.read_text()[-3000:]}")
        text = log.read_text()
        errors = [m["message"] for m in map(ERROR_LINE.match, text.splitlines()) if m]
        assert process.returncode != 0 and len(errors) == 1, text[-3000:]
        assert "No space left on device" in errors[0], errors
        print(f"fault=full_disk exit={process.returncode} says={errors[0]!r}")
        committed = [int(h) for h in re.findall(r"event=consensus\.commit height=(\d+)", text)]
        last = max(committed + [before])
        filler.unlink()
        reopened = tmp_path / "reopened.log"
        with serving(moved, reopened):
            state = opened_state(reopened)
            assert state.height >= last, (state, last)
            assert client.block(node.committed.height)["app_hash"] == node.committed.app_hash
            deadline = time.monotonic() + START_TIMEOUT_S
            while client.status()["height"] <= state.height:
                assert time.monotonic() < deadline, "the node does not commit after the disk was freed"
                time.sleep(0.1)
        repair_config()


def remount(mount_point: Path, mode: str) -> None:
    result = subprocess.run(["mount", "-o", f"remount,{mode}", str(mount_point)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"remount {mode}: {result.stderr.strip()}"


def test_a_read_only_data_directory_refuses_to_start_and_damages_nothing(node: Node, tmp_path: Path):
    """A file system mounted read-only binds root too, unlike file modes."""
    with small_disk(tmp_path / "disk", "64m") as disk:
        moved, repair_config = moved_to(node, disk)
        remount(disk, "ro")
        try:
            code, message = refused(moved)
        finally:
            remount(disk, "rw")
        assert "Read-only file system" in message and "ledger" in message, message
        print(f"fault=read_only_data_dir exit={code} says={message!r}")
        assert_intact(moved, tmp_path / "writable.log")
        repair_config()


# ---- long: seeded random damage to the LevelDB files

def start_or_refuse(node: Node, log: Path) -> tuple[str, object]:
    """("refused", the one error line) if the node exits by itself, else ("opened", what its store opened at)."""
    api = f"http://{load_config(node.config).api.listen}"
    with open(log, "wb") as out:
        process = subprocess.Popen(run_node_command(node.config), stdout=subprocess.DEVNULL, stderr=out,
                                   stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while process.poll() is None:
            try:
                NodeClient(api, 2.0).status()
                return "opened", opened_state(log)
            except ApiClientError:
                assert time.monotonic() < deadline, "the node neither serves nor exits"
                time.sleep(0.1)
        text = log.read_text()
        errors = [m["message"] for m in map(ERROR_LINE.match, text.splitlines()) if m]
        assert process.returncode != 0 and len(errors) == 1 and "Traceback" not in text, text[-3000:]
        return "refused", errors[0]
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.long
def test_random_leveldb_damage_is_refused_or_opens_a_committed_prefix(pristine: Pristine, tmp_path: Path):
    """Garbage of random length at a random offset of a random store file, many times over.

    Each run either refuses with one line, or opens at or below the committed
    height (LevelDB may drop a damaged log tail as a torn write) with the
    committed app hash when at that height.  After a refusal, restoring just
    the damaged file must give back exactly the committed state; a node that
    opened has run on, so its data directory is restored from the backup.  Replay: SOMNODE_FAULT_SEED.
    """
    seed = int(os.environ.get("SOMNODE_FAULT_SEED", str(int.from_bytes(os.urandom(4), "big"))))
    iterations = int(os.environ.get("SOMNODE_FAULT_ITERATIONS", "40"))
    rng = random.Random(seed)
    outcomes: Counter[str] = Counter()
    try:
        for i in range(iterations):
            directory = tmp_path / f"run{i}"
            shutil.copytree(pristine.directory, directory)
            config_path = directory / "validator1" / "config.toml"
            config = load_config(config_path)
            node = Node(directory, pristine.directory, config_path, config.node.data_dir, config.node.key_file,
                        config.node.genesis_file, pristine.committed)
            files = sorted(p for p in node.ledger.iterdir() if p.name not in ("LOCK", "LOG", "LOG.old")
                           and p.stat().st_size > 0)
            target = rng.choice(files)
            size = target.stat().st_size
            length = rng.randint(1, min(64, size))
            offset = rng.randint(0, size - length)
            overwrite(target, offset, bytes(rng.getrandbits(8) for _ in range(length)))
            outcome, detail = start_or_refuse(node, tmp_path / f"run{i}.log")
            outcomes[f"{outcome}:{target.suffix or target.name.split('-')[0]}"] += 1
            if outcome == "opened":
                assert detail.height <= node.committed.height, detail
                if detail.height == node.committed.height:
                    assert detail == node.committed, detail
                # It ran on (and LevelDB may have made a dropped tail permanent): restore from the backup.
                restore(node, node.data_dir)()
            else:
                restore(node, target)()
            assert_intact(node, tmp_path / f"run{i}.repaired.log")
            shutil.rmtree(directory)
    except BaseException:
        print(f"random leveldb damage failed: replay with SOMNODE_FAULT_SEED={seed}")
        raise
    finally:
        print(f"leveldb-damage: seed={seed} iterations={sum(outcomes.values())} "
              f"outcomes={dict(sorted(outcomes.items()))}")
