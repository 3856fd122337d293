"""Local networks of validator processes on loopback.

Each validator is a separate ``somnode run`` process, exactly as a bank runs
one, so the local network exercises the real p2p, persistence and restart
paths.  ``LocalTestnet`` is used by ``somnode testnet``, the benchmark and the
multi-process tests; it always reaps what it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from node.app.config import load_config
from node.tools.client import ApiClientError, NodeClient

STOP_GRACE_S = 10.0


def free_ports(count: int) -> list[int]:
    """Ports the kernel just handed out on 127.0.0.1 (held together so they differ)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


class TestnetError(Exception):
    """A validator process failed to start or a wait ran out."""


class LocalTestnet:
    """The validator processes of a network directory made by ``somnode init``."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path, profile_dir: Path | None = None) -> None:
        self.directory = Path(directory)
        self.profile_dir = profile_dir
        if profile_dir is not None:
            profile_dir.mkdir(parents=True, exist_ok=True)
        self.config_files = sorted(self.directory.glob("validator*/config.toml"),
                                   key=lambda p: int(p.parent.name.removeprefix("validator")))
        if not self.config_files:
            raise TestnetError(f"{self.directory} holds no validator*/config.toml: run `somnode init` first")
        self.api_urls = [f"http://{load_config(path).api.listen}" for path in self.config_files]
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * len(self.config_files)

    def __len__(self) -> int:
        return len(self.config_files)

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
                       else ["--profile", str(self.profile_dir / f"validator{i + 1}.prof")])
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
        """SIGTERM, then SIGKILL after ``STOP_GRACE_S``; always reaps."""
        indices = range(len(self)) if index is None else [index]
        running = [process for i in indices if (process := self.processes[i]) is not None]
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

    def wait_ready(self, timeout_s: float = 60.0, indices: list[int] | None = None) -> None:
        """Wait until every given validator answers its API."""
        indices = list(range(len(self))) if indices is None else indices
        deadline = time.monotonic() + timeout_s
        for i in indices:
            while self.status(i) is None:
                if not self.alive(i):
                    raise TestnetError(f"validator{i + 1} exited; see {self.config_files[i].parent / 'node.log'}")
                if time.monotonic() > deadline:
                    raise TestnetError(f"validator{i + 1} did not answer within {timeout_s:g} s")
                time.sleep(0.1)

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
