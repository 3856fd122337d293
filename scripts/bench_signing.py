"""Benchmark: how long one consensus signature takes with each signer backend.

Each row signs N distinct votes (increasing heights, as a validator does) one
after the other, timing each call as the node makes it (``Key.sign``):

* ``file``: the key in memory (PyNaCl);
* ``pkcs11``: a key in a SoftHSM2 token (``CKM_EDDSA`` through python-pkcs11);
* ``remote (file)`` and ``remote (pkcs11)``: a ``SignerService`` on loopback
  holding the key in memory or in the token, reached by the validator's
  client over the encrypted link; each signature includes the signer's
  double-sign guard and the fsync of its high-water mark (the state file in
  a temporary directory on the disk this script runs from, ``--dir``);
* ``guard alone``: the signer's check and durable write of its high-water
  mark for each vote, without signing or a link: the part of a remote
  signature that is the double-sign guard.

SoftHSM2 (``softhsm2-util``, Debian's softhsm2) gets a token directory of its
own in a temporary directory.  Reported: median, p90 and p99 in microseconds
and signatures per second of the loop.

    .venv/bin/python scripts/bench_signing.py [--signatures 2000] [--dir DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consensus.messages import MessageType, signing_bytes  # noqa: E402
from node.core.fields import Endpoint  # noqa: E402
from node.core.keys import Key, KeyPair  # noqa: E402
from node.tools.testnet import free_ports  # noqa: E402

CHAIN = "som-bench"
PIN = "1234567890"
MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")


def votes(count: int) -> list[bytes]:
    return [signing_bytes(CHAIN, MessageType.PRECOMMIT, height, 0, bytes(32)) for height in range(1, count + 1)]


def measure(sign: Callable[[bytes], bytes], messages: list[bytes]) -> dict[str, float]:
    for message in messages[:20]:
        sign(message)  # warm up (first calls open sessions and links)
    timings = []
    started = time.perf_counter()
    for message in messages[20:]:
        before = time.perf_counter()
        sign(message)
        timings.append(time.perf_counter() - before)
    elapsed = time.perf_counter() - started
    timings.sort()
    return {"signatures": len(timings), "median_us": statistics.median(timings) * 1e6,
            "p90_us": timings[int(0.9 * len(timings))] * 1e6, "p99_us": timings[int(0.99 * len(timings))] * 1e6,
            "per_second": len(timings) / elapsed}


def softhsm_token(directory: Path) -> tuple[str, str]:
    """A SoftHSM2 token in ``directory`` (module path, token label); SOFTHSM2_CONF is set for this process."""
    module = next((path for path in MODULES if os.path.exists(path)), None)
    util = shutil.which("softhsm2-util")
    if module is None or util is None:
        raise SystemExit("softhsm2 is not installed (apt-get install softhsm2)")
    (directory / "tokens").mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run([util, "--init-token", "--free", "--label", "bench", "--pin", PIN, "--so-pin", PIN],
                   check=True, capture_output=True)
    return module, "bench"


class Service:
    """A SignerService on its own event loop thread."""

    def __init__(self, keys: list[Key], link: KeyPair, state_dir: Path) -> None:
        from node.signing.guard import HighWaterMark
        from node.signing.server import SignerService

        self.ready = threading.Event()
        self.port = free_ports(1)[0]
        state = HighWaterMark.create(state_dir / "state.json", CHAIN)
        self._service = SignerService(listen=Endpoint("127.0.0.1", self.port), chain_id=CHAIN,
                                      validator=link.public_key, keys=keys, state=state)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.ready.wait(10)

    def _run(self) -> None:
        async def serve() -> None:
            self._stop = asyncio.Event()
            await self._service.start()
            self.ready.set()
            await self._stop.wait()
            await self._service.stop()

        self._loop.run_until_complete(serve())

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def remote(keys: list[Key], state_dir: Path, messages: list[bytes]) -> dict[str, float]:
    from node.signing.remote import RemoteSigner

    link = KeyPair.generate()
    service = Service(keys, link, state_dir)
    client = RemoteSigner(Endpoint("127.0.0.1", service.port), CHAIN, link, [keys[0].public_key], timeout_s=5.0)
    client.start()
    try:
        deadline = time.monotonic() + 10
        while not client.linked:
            if time.monotonic() > deadline:
                raise SystemExit("the remote signer did not link")
            time.sleep(0.01)
        return measure(client.keys()[0].sign, messages)
    finally:
        client.close()
        service.close()


def guard_alone(state_dir: Path, messages: list[bytes]) -> dict[str, float]:
    from node.signing.guard import ConsensusRequest, HighWaterMark, classify

    state = HighWaterMark.create(state_dir / "state.json", CHAIN)
    key = KeyPair.generate().public_key
    signature = bytes(64)

    def record(message: bytes) -> bytes:
        request = classify(message, CHAIN, key)
        assert isinstance(request, ConsensusRequest) and state.check(request) is None
        state.advance(request, signature)
        return signature

    return measure(record, messages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signatures", type=int, default=2000)
    parser.add_argument("--dir", type=Path, default=Path("."), help="where the signer's state files go (a temp dir)")
    parser.add_argument("--json", type=Path, metavar="FILE")
    args = parser.parse_args()
    from node.signing.keyring import open_token_keys

    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="somnode-bench-signing-", dir=args.dir) as temporary:
        work = Path(temporary)
        module, token_label = softhsm_token(work)
        pin_file = work / "pin"
        pin_file.write_text(PIN + "\n")
        from node.signing.pkcs11 import Token, TokenSpec

        maker = Token(TokenSpec(Path(module), token_label, PIN), writable=True)
        maker.generate("validator")
        maker.close()
        token, (token_key,) = open_token_keys(Path(module), token_label, ["validator"], pin_file, None, "bench")
        try:
            file_key = KeyPair.generate()
            rows["file"] = measure(file_key.sign, votes(args.signatures + 20))
            rows["pkcs11 (SoftHSM2)"] = measure(token_key.sign, votes(args.signatures + 20))
            (work / "remote-file").mkdir()
            rows["remote (file)"] = remote([file_key], work / "remote-file", votes(args.signatures + 20))
            (work / "remote-pkcs11").mkdir()
            rows["remote (pkcs11)"] = remote([token_key], work / "remote-pkcs11", votes(args.signatures + 20))
            (work / "guard").mkdir()
            rows["guard alone"] = guard_alone(work / "guard", votes(args.signatures + 20))
        finally:
            token.close()
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"{args.signatures} signatures each")
    print(f"{'backend':<22}{'median µs':>12}{'p90 µs':>10}{'p99 µs':>10}{'signatures/s':>15}")
    for name, row in rows.items():
        print(f"{name:<22}{row['median_us']:>12.0f}{row['p90_us']:>10.0f}{row['p99_us']:>10.0f}"
              f"{row['per_second']:>15.0f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
