"""Crashes, partitions and loss of quorum while banks keep submitting transfers.

Four validator processes on loopback, each behind a FaultProxies port (the
genesis names the proxy ports; each config listens on a private port), and one
client thread per bank wallet submitting transfers to its own validator.  The
wallets behave like a careful bank client: a request that fails in transit is
repeated with the same signed bytes (same hash, so repeating is harmless), and
a ``nonce_gap`` answer means an earlier accepted transfer died in a crashed
validator's mempool, so the wallet resends what is not yet committed.

At the end every transfer a validator accepted is committed exactly once (one
location per hash, each wallet's nonce equals its accepted count), balances
equal the model, supply is unchanged and all four app hashes agree.

Seeded: SOMNODE_FAULT_SEED replays a run; SOMNODE_LONG=1 runs 50 kills and
5 partitions instead of 5 and 1.
"""

from __future__ import annotations

import dataclasses
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from node.app.config import load_config, render_config
from node.core.address import encode_address
from node.core.fields import Endpoint
from node.core.keys import KeyPair
from node.p2p.handshake import PROTOCOL_VERSION, Hello
from node.tools.client import ApiClientError, NodeClient
from tests.faultproxy import FaultProxies, dialler_key
from tests.localnet import Wallet, free_ports, make_network, node_log, running

LONG = os.environ.get("SOMNODE_LONG") == "1"
KILLS = 50 if LONG else 5
PARTITIONS = 5 if LONG else 1
TIMEOUT_S = 90
SUBMIT_PAUSE_S = 0.05


def seed() -> int:
    value = int(os.environ.get("SOMNODE_FAULT_SEED", random.randrange(2**32)))
    print(f"fault seed {value}; replay with SOMNODE_FAULT_SEED={value}")
    return value


@contextmanager
def proxied_network(directory) -> Iterator[tuple[object, FaultProxies]]:
    """A network whose genesis p2p addresses are proxy ports in front of private listen ports."""
    network = make_network(directory, validators=4)
    taken = {int(v.p2p_address.rsplit(":", 1)[1]) for v in network.genesis.validators}
    listen = [port for port in free_ports(12) if port not in taken][:4]
    fronts = {}
    for validator, path, port in zip(network.genesis.validators, network.config_files, listen):
        config = load_config(path)
        config = dataclasses.replace(config, p2p=dataclasses.replace(config.p2p, listen=Endpoint("127.0.0.1", port)))
        path.write_text(render_config(config, path.parent))
        fronts[validator.public_key] = (int(validator.p2p_address.rsplit(":", 1)[1]), port)
    proxies = FaultProxies(fronts)
    proxies.start()
    try:
        yield network, proxies
    finally:
        proxies.stop()


class BankClient(threading.Thread):
    """One bank wallet submitting transfers to one validator until told to stop."""

    def __init__(self, wallet: Wallet, to: bytes, url: str, rng: random.Random) -> None:
        super().__init__(name=f"bank-{wallet.key.address[:8]}", daemon=True)
        self.wallet, self.to, self.url, self.rng = wallet, to, url, rng
        self.accepted: list = []  # signed transfers a validator accepted, in nonce order
        self.resent = 0  # accepted transfers lost with a crashed mempool and sent again
        self.in_transit_failures = 0
        self.error: str | None = None
        self.pending = None  # signed, not yet known to be accepted: repeated with the same bytes
        self.halt = threading.Event()

    def run(self) -> None:
        client = NodeClient(self.url, 3.0)
        while not self.halt.is_set() and self.error is None:
            self.pending = self.pending or self.wallet.transfer(self.to, 1 + self.rng.randrange(500))
            if not self._settle(client):
                self.halt.wait(0.3)
                continue
            self.halt.wait(SUBMIT_PAUSE_S)

    def _settle(self, client: NodeClient) -> bool:
        """Offer the pending transfer once; False when the request failed in transit."""
        try:
            self._offer(client, self.pending)
        except ApiClientError:
            self.in_transit_failures += 1
            return False
        if self.accepted and self.accepted[-1] is self.pending:
            self.pending = None
        return True

    def _offer(self, client: NodeClient, stx) -> None:
        result = client.submit([stx.raw])[0]
        if result["accepted"]:
            self.accepted.append(stx)
        elif result["code"] == "stale_nonce":
            # Only this wallet signs for its account, one transfer per nonce: a
            # used nonce means the earlier, unanswered attempt was committed.
            if client.tx(stx.hash.hex())["status"] != "committed":
                self.error = f"stale_nonce for uncommitted {stx.hash.hex()}"
                return
            self.accepted.append(stx)
        elif result["code"] == "nonce_gap":
            self.resend(client)
        else:
            self.error = f"refused: {result}"

    def resend(self, client: NodeClient) -> int:
        """Send again every accepted transfer the chain has not committed yet."""
        committed = client.account(self.wallet.key.address)["nonce"]
        lost = [stx for stx in self.accepted if stx.tx.nonce >= committed]
        if lost:
            results = client.submit([stx.raw for stx in lost])
            self.resent += sum(1 for r in results if r["code"] == "accepted")
        return len(lost)

    def finish(self, timeout_s: float) -> None:
        """Stop submitting, then resend until every accepted transfer is committed."""
        self.halt.set()
        self.join(10)
        assert not self.is_alive()
        client = NodeClient(self.url, 3.0)
        deadline = time.monotonic() + timeout_s
        while self.pending is not None and self.error is None:
            assert time.monotonic() < deadline, f"{self.name}: the last transfer was never answered"
            if not self._settle(client):
                time.sleep(0.3)
        while True:
            try:
                if self.resend(client) == 0:
                    return
            except ApiClientError:
                pass
            assert time.monotonic() < deadline, f"{self.name}: accepted transfers never committed"
            time.sleep(1.0)


@contextmanager
def load(net, network, rng: random.Random) -> Iterator[list[BankClient]]:
    wallets = [Wallet(path, network.genesis.chain_id) for path in network.bank_key_files]
    banks = [BankClient(wallet, wallets[(i + 1) % len(wallets)].key.public_key, net.api_urls[i],
                        random.Random(rng.random()))
             for i, wallet in enumerate(wallets)]
    for bank in banks:
        bank.start()
    try:
        yield banks
    finally:
        for bank in banks:
            bank.halt.set()
        for bank in banks:
            bank.join(10)


def wait_caught_up(net, index: int) -> None:
    """``index`` reaches the height the others had when it came back."""
    net.wait_ready(indices=[index])
    target = max(net.status(i)["height"] for i in range(4) if i != index)
    net.wait_height(target, TIMEOUT_S, [index])


def height(net, index: int) -> int:
    return net.status(index)["height"]


def check_exactly_once(net, network, banks: list[BankClient]) -> dict:
    """All accepted transfers committed once, nonces and balances as modelled, one app hash."""
    for bank in banks:
        bank.finish(TIMEOUT_S)
        assert bank.error is None, f"{bank.name}: {bank.error}"
    top = max(height(net, i) for i in range(4))
    net.wait_height(top, TIMEOUT_S)
    assert len({net.client(i).block(top)["app_hash"] for i in range(4)}) == 1, "app hashes disagree"
    start = dict(network.genesis.balances)
    expected = dict(start)
    locations = set()
    for bank in banks:
        for stx in bank.accepted:
            expected[stx.tx.sender] -= stx.tx.amount
            expected[stx.tx.recipient] += stx.tx.amount
            status = net.client(0).tx(stx.hash.hex())
            assert status["status"] == "committed", stx.hash.hex()
            locations.add((status["height"], status["index"]))
    accepted = sum(len(bank.accepted) for bank in banks)
    assert len(locations) == accepted, "two accepted transfers share a block location"
    for i, bank in enumerate(banks):
        account = net.client(i % 4).account(bank.wallet.key.address)
        assert account["nonce"] == len(bank.accepted) == bank.wallet.nonce
        assert account["balance"] == expected[bank.wallet.key.public_key]
    assert net.status(0)["supply"] == sum(start.values())
    return {"accepted": accepted, "resent": sum(b.resent for b in banks),
            "in_transit_failures": sum(b.in_transit_failures for b in banks), "height": top}


def test_seeded_crashes_and_partitions_under_load_lose_nothing(tmp_path):
    rng = random.Random(seed())
    with proxied_network(tmp_path / "net") as (network, proxies), running(network) as net:
        keys = [v.public_key for v in network.genesis.validators]
        try:
            with load(net, network, rng) as banks:
                net.wait_height(2, TIMEOUT_S)
                for _kill in range(KILLS):
                    time.sleep(rng.uniform(0.2, 3.0))
                    victim = rng.randrange(4)
                    net.kill(victim)
                    time.sleep(rng.uniform(0.0, 2.0))
                    net.start(victim)
                    wait_caught_up(net, victim)

                for _ in range(PARTITIONS):
                    victim = rng.randrange(4)
                    others = [i for i in range(4) if i != victim]
                    # At least one link to cut: the victim caught up through one.
                    assert proxies.cut([keys[victim]]) >= 1
                    time.sleep(2.0)  # links cut mid-height settle
                    assert all(keys[victim] not in ends for ends in proxies.live_links())
                    # Both ends agree the link is gone, whichever side had dialled it.
                    assert net.status(victim)["peers"] == [], net.status(victim)["peers"]
                    assert all(encode_address(keys[victim]) not in net.status(i)["peers"] for i in others)
                    isolated, before = height(net, victim), min(height(net, i) for i in others)
                    net.wait_height(before + 3, TIMEOUT_S, others)
                    assert height(net, victim) == isolated, "an isolated validator committed alone"
                    proxies.heal()
                    wait_caught_up(net, victim)
            figures = check_exactly_once(net, network, banks)
            print(f"kills={KILLS} partitions={PARTITIONS} links_cut={proxies.links_cut} "
                  f"dials_refused={proxies.dials_refused} {figures}")
        except BaseException:
            for i in range(4):
                print(f"---- validator{i + 1} log tail ----\n{node_log(net, i)}")
            raise


def test_two_of_four_down_under_load_stalls_then_resumes(tmp_path):
    rng = random.Random(seed())
    with proxied_network(tmp_path / "net") as (network, proxies), running(network) as net:
        try:
            with load(net, network, rng) as banks:
                net.wait_height(3, TIMEOUT_S)
                down = rng.sample(range(4), 2)
                up = [i for i in range(4) if i not in down]
                for i in down:
                    net.kill(i)
                time.sleep(1.5)  # let an in-flight height settle
                stalled = [height(net, i) for i in up]
                accepted_before = sum(len(b.accepted) for b in banks)
                time.sleep(4.0)
                assert [height(net, i) for i in up] == stalled, "committed without a quorum"
                assert sum(len(b.accepted) for b in banks) > accepted_before, "submissions stopped"
                net.start(down[0])
                net.wait_height(max(stalled) + 2, TIMEOUT_S, up)
                net.start(down[1])
                wait_caught_up(net, down[1])
            figures = check_exactly_once(net, network, banks)
            print(f"down={down} stalled_at={stalled} {figures}")
        except BaseException:
            for i in range(4):
                print(f"---- validator{i + 1} log tail ----\n{node_log(net, i)}")
            raise


@pytest.mark.parametrize("size", [1, 4])
def test_dialler_key_is_read_from_the_masked_hello(size):
    """The proxy identifies a dialler from real client bytes, however they are chunked."""
    key = KeyPair.generate().public_key
    hello = Hello(PROTOCOL_VERSION, "som-test", bytes(32), key, bytes(range(32))).encode()
    mask = bytes([7, 99, 201, 13])
    if len(hello) >= 126:
        frame = bytes([0x82, 0x80 | 126]) + len(hello).to_bytes(2, "big")
    else:
        frame = bytes([0x82, 0x80 | len(hello)])
    wire = b"GET /p2p HTTP/1.1\r\nHost: x\r\n\r\n" + frame + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(hello))
    seen = None
    for end in range(size, len(wire) + size, size):
        seen = dialler_key(wire[:end])
        if seen is not None:
            assert end >= len(wire)
            break
    assert seen == key
