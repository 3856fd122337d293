"""Local networks of validator processes on loopback.

Each validator is a separate ``somnode run`` process, exactly as a bank runs
one, so the local network exercises the real p2p, persistence and restart
paths.  ``LocalTestnet`` is used by ``somnode testnet``, the benchmark and the
multi-process tests; it always reaps what it started.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TextIO

from node.app.config import load_config
from node.tools.client import ApiClientError, NodeClient

STOP_GRACE_S = 10.0
# How long the verify helpers of a killed validator get to notice their closed input and leave.
HELPER_GRACE_S = 5.0
LOCK_FILE = "supervisor.lock"


def free_ports(count: int) -> list[int]:
    """Ports the kernel just handed out on 127.0.0.1 (held together so they differ)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


class TestnetError(Exception):
    """A validator process failed to start or a wait ran out."""


def lock_directory(directory: Path) -> TextIO:
    """Hold the network directory for this process; refuse if another supervisor holds it.

    The lock is the kernel's (flock), so it goes with the process however that
    ends, and a stale lock file never blocks a start.  Keep the returned file open.
    """
    holder = open(directory / LOCK_FILE, "a+")
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder.seek(0)
        pid = holder.read().strip() or "unknown"
        holder.close()
        raise TestnetError(f"a testnet is already running in {directory} (supervisor pid {pid}); "
                           f"stop it first (Ctrl-C in its terminal, or kill {pid})") from None
    holder.truncate(0)
    holder.write(f"{os.getpid()}\n")
    holder.flush()
    return holder


def _numbered(directory: Path, kind: str) -> list[Path]:
    """``<kind><k>/config.toml`` in ``directory``, by k."""
    return sorted(directory.glob(f"{kind}*/config.toml"), key=lambda p: int(p.parent.name.removeprefix(kind)))


def _children() -> dict[int, list[int]]:
    """Every process's children, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):  # ended while we looked
                continue
            children.setdefault(parent, []).append(int(entry))
    return children


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs; a zombie has ended and only waits for its parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class LocalTestnet:
    """The validator processes of a network directory made by ``somnode init``."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path, profile_dir: Path | None = None) -> None:
        self.directory = Path(directory)
        self.profile_dir = profile_dir
        if profile_dir is not None:
            profile_dir.mkdir(parents=True, exist_ok=True)
        # Validators first, so that index k - 1 is validator k; then the observers, if any.
        self.config_files = _numbered(self.directory, "validator") + _numbered(self.directory, "observer")
        if not self.config_files:
            raise TestnetError(f"{self.directory} holds no validator*/config.toml: run `somnode init` first")
        self.api_urls = [f"http://{load_config(path).api.listen}" for path in self.config_files]
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * len(self.config_files)

    def __len__(self) -> int:
        return len(self.config_files)

    def name(self, index: int) -> str:
        """``validator<k>`` or ``observer<k>``: the node's directory."""
        return self.config_files[index].parent.name

    @property
    def observers(self) -> list[int]:
        """The indices of the observer nodes."""
        return [i for i in range(len(self)) if self.name(i).startswith("observer")]

    def client(self, index: int, timeout_s: float = 5.0) -> NodeClient:
        return NodeClient(self.api_urls[index], timeout_s)

    # ---- processes

    def start(self, index: int | None = None, environment: dict[str, str] | None = None) -> None:
        """Start the validators (or one); ``environment`` adds variables to their environment."""
        for i in range(len(self)) if index is None else [index]:
            if self.alive(i):
                continue
            config = self.config_files[i]
            log = open(config.parent / "node.log", "ab")
            profile = ([] if self.profile_dir is None
                       else ["--profile", str(self.profile_dir / f"{self.name(i)}.prof")])
            self.processes[i] = subprocess.Popen(
                [sys.executable, "-m", "node", "run", "--config", str(config), *profile],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(environment or {})},
            )
            log.close()

    def kill(self, index: int) -> None:
        """SIGKILL: the crash a power cut causes."""
        process = self.processes[index]
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def stop(self, index: int | None = None) -> None:
        """SIGTERM, then SIGKILL after ``STOP_GRACE_S``; always reaps, and returns only once the
        validators' verify helpers are gone too.

        A validator stopped cleanly ends its helpers itself; one that had to be
        killed leaves them to notice their closed input, which takes a moment,
        and a supervisor that returned before would leave them behind it.
        """
        indices = range(len(self)) if index is None else [index]
        running = [process for process in (self.processes[i] for i in indices) if process is not None]
        children = _children()
        helpers = [pid for process in running for pid in children.get(process.pid, [])]
        for process in running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        deadline = time.monotonic() + HELPER_GRACE_S
        while any(_running(pid) for pid in helpers) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in helpers:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)

    def alive(self, index: int) -> bool:
        process = self.processes[index]
        return process is not None and process.poll() is None

    def __enter__(self) -> LocalTestnet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- observation

    def status(self, index: int) -> dict | None:
        try:
            return self.client(index, 2.0).status()
        except ApiClientError:
            return None

    def check_not_running(self) -> None:
        """Refuse to start over validators that already answer: left behind by a supervisor that
        was killed outright, they hold the ledgers, and the new ones could only fail."""
        for i in range(len(self)):
            if self.status(i) is not None:
                raise TestnetError(
                    f"{self.name(i)} already answers at {self.api_urls[i]}: another testnet, or validators "
                    f"left running by one, use {self.directory}; stop them first")

    def wait_ready(self, timeout_s: float = 60.0, indices: list[int] | None = None,
                   stop: threading.Event | None = None) -> None:
        """Wait until every given validator answers its API, or until ``stop`` is set."""
        indices = list(range(len(self))) if indices is None else indices
        stop = threading.Event() if stop is None else stop
        deadline = time.monotonic() + timeout_s
        for i in indices:
            while self.status(i) is None:
                if not self.alive(i):
                    raise TestnetError(f"{self.name(i)} exited; see {self.config_files[i].parent / 'node.log'}")
                if time.monotonic() > deadline:
                    raise TestnetError(f"{self.name(i)} did not answer within {timeout_s:g} s")
                if stop.wait(0.1):
                    return

    def wait_height(self, height: int, timeout_s: float = 60.0, indices: list[int] | None = None) -> None:
        """Wait until every given validator has committed ``height``."""
        indices = list(range(len(self))) if indices is None else indices
        deadline = time.monotonic() + timeout_s
        while True:
            heights = [(self.status(i) or {}).get("height", -1) for i in indices]
            if min(heights) >= height:
                return
            if time.monotonic() > deadline:
                raise TestnetError(f"heights {heights} did not reach {height} within {timeout_s:g} s")
            time.sleep(0.2)
