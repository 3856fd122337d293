"""The end-to-end throughput benchmark behind ``somnode bench``.

It measures what a bank would ask first: how many transfers a second the
network commits, how long a transfer takes to commit, and how close that is
to the physical limit, which is Ed25519 verification: every validator checks
every signature once, so N validators sharing one machine cannot commit more
than (the machine's verify rate) / N transfers a second.  That ceiling is
measured in the same run, before the network starts and again after it
stops (the higher figure counts), so the reported efficiency compares across
machines and a disturbed measurement can only lower it.

Method: K funded accounts are written into the genesis; every transfer is
signed before the clock starts; each account's transfers go to one node (so
its nonces arrive in order) and the accounts are spread over all nodes; a
few submitters per node post batches, open-loop at ``rate`` or as fast as the
node accepts (a ``mempool_full`` answer is retried after a pause).  Commit
times come from node 0's ``/v1/events`` stream.  The steady window runs from
the commit of the first 10 % of the transfers to the commit of 90 %, so
ramp-up and drain are excluded.  Afterwards the run is checked: every
transfer committed exactly once, every account's nonce equals the transfers
it sent, the supply is unchanged, and all validators share one app hash.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import aiohttp
import msgpack
import nacl.bindings
import nacl.signing

from node.app.config import ConsensusSection, load_config, render_config
from node.core.keys import KeyPair
from node.core.tx import Transaction, TxKind
from node.tools.network import create_network
from node.tools.testnet import LocalTestnet, free_ports

# Each sender's som at genesis: 1,000,000.00 som, within the maximum balance of the tier its
# account is in (node/tools/network.py FUNDED_ACCOUNT_TIER), so the load runs under the limits.
ACCOUNT_BALANCE = 10**8
CEILING_SECONDS = 2.0
WINDOW = (0.10, 0.90)
STALL_S = 30.0
MIN_WINDOW_BLOCKS = 5
BLOCK_GRACE_S = 0.0
# Concurrent submitters per node: enough requests in flight that verification never waits for the
# next one to arrive (with 4, one validator's helpers idled between requests).
LANES = 8
PACE_S = 0.05
MIN_PACED_BATCH = 10
# Pause after the mempool refused transfers for space, when the node gave no Retry-After.
FULL_BACKOFF_S = 1.0
# The plot's resolution: committed transfers and latencies are grouped into steps of at least
# half a second (a block is committed every few hundred ms, so shorter steps only show which
# ones held a block), and of at most a sixtieth of the run.
MIN_TIMELINE_STEP_S = 0.5
TIMELINE_POINTS = 60


class BenchError(Exception):
    """A node answered the benchmark in a way it cannot go on from; the message says how."""


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    """One step of a run, centred ``t_s`` after the first submission: the rate at which transfers
    committed in it, and how long those transfers took from submission to commit (None in a
    step without commits)."""

    t_s: float
    tps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass
class BenchResult:
    validators: int
    submitted: int
    committed: int
    tps: float
    tps_overall: float
    window_blocks: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    blocks_per_s: float
    txs_per_block: float
    verify_ceiling: float
    efficiency: float
    cpu_per_validator: list[float]
    rate: float
    duration_s: float
    checks: dict[str, bool] = field(default_factory=dict)
    ceiling_samples: list[float] = field(default_factory=list)
    timeline: list[TimelinePoint] = field(default_factory=list)
    timeline_step_s: float = MIN_TIMELINE_STEP_S

    @property
    def ok(self) -> bool:
        return all(self.checks.values())


def measure_verify_ceiling(seconds: float = CEILING_SECONDS, threads: int | None = None) -> float:
    """Signatures a second that PyNaCl verifies on all cores, threads calling libsodium directly."""
    threads = threads or os.cpu_count() or 1
    key = nacl.signing.SigningKey.generate()
    public = bytes(key.verify_key)
    signed = [key.sign(os.urandom(150)) for _ in range(256)]
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def work(slot: int) -> None:
        done = 0
        while time.perf_counter() < stop:
            for message in signed:
                nacl.bindings.crypto_sign_open(bytes(message), public)
            done += len(signed)
        counts[slot] = done

    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - started)


def make_load(accounts: list[KeyPair], count: int, chain_id: str, seed: int) -> list[list]:
    """``count`` signed transfers, per sender in nonce order; returns one list per sender."""
    rng = random.Random(seed)
    per_sender: list[list] = [[] for _ in accounts]
    for index in range(count):
        sender = index % len(accounts)
        recipient = rng.randrange(len(accounts) - 1)
        recipient += recipient >= sender
        nonce = len(per_sender[sender])
        tx = Transaction(TxKind.TRANSFER, accounts[sender].public_key, nonce, 1 + rng.randrange(100),
                         accounts[recipient].public_key)
        per_sender[sender].append(tx.sign(accounts[sender], chain_id))
    return per_sender


class _Recorder:
    """Commit times of transfers, from one node's block event stream."""

    def __init__(self) -> None:
        self.commit_time: dict[bytes, float] = {}
        self.duplicates = 0
        self.blocks: list[tuple[float, int]] = []

    async def follow(self, session: aiohttp.ClientSession, url: str, expected: int) -> None:
        async with session.ws_connect(f"{url}/v1/events", heartbeat=10) as ws:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                now = time.perf_counter()
                hashes = json.loads(message.data)["block"]["txs"]
                self.blocks.append((now, len(hashes)))
                for text in hashes:
                    tx_hash = bytes.fromhex(text)
                    if tx_hash in self.commit_time:
                        self.duplicates += 1
                    self.commit_time[tx_hash] = now
                if len(self.commit_time) >= expected:
                    return


async def _submit(session: aiohttp.ClientSession, url: str, txs: list, batch: int, rate_share: float,
                  submit_time: dict[bytes, float], refused: list, progress: list[int]) -> None:
    """Post ``txs`` in order, in batches; open-loop at ``rate_share`` tx/s (0 = as fast as accepted)."""
    start = time.perf_counter()
    position = 0
    if rate_share:
        # Open loop: small batches at a steady pace (about PACE_S apart), not bursts, but
        # never fewer than MIN_PACED_BATCH transfers a request: in smaller ones the
        # per-request costs of every node outgrow the transfers (docs/performance.md).
        batch = max(min(batch, MIN_PACED_BATCH), min(batch, int(rate_share * PACE_S)))
    while position < len(txs):
        if rate_share:
            due = start + position / rate_share
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        chunk = txs[position:position + batch]
        sent_at = time.perf_counter()
        body = msgpack.packb([stx.raw for stx in chunk], use_bin_type=True)
        async with session.post(f"{url}/v1/txs", data=body,
                                headers={"Content-Type": "application/msgpack",
                                         "Accept": "application/msgpack"}) as response:
            body = await response.read()
        if response.status == 503:  # every transaction refused for space; errors come as JSON
            await asyncio.sleep(float(response.headers.get("Retry-After", FULL_BACKOFF_S)))
            continue
        if response.status != 200:
            raise BenchError(f"{url} answered {response.status} to a batch: {body[:300]!r}")
        results = msgpack.unpackb(body, raw=False)["results"]
        accepted = 0
        for stx, result in zip(chunk, results):
            if result["accepted"]:
                submit_time.setdefault(stx.hash, sent_at)
                accepted += 1
            elif result["code"] == "mempool_full":
                break
            else:
                refused.append((stx.hash.hex(), result["code"]))
                accepted += 1  # not retried: counted as a failure below
        position += accepted
        progress[0] += accepted
        if accepted < len(chunk):
            # The pool filled part-way: back off as a 503 would ask. Coming back sooner only
            # makes the node decode the same transfers again to refuse them again.
            await asyncio.sleep(FULL_BACKOFF_S)


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _stat_fields(pid: int | str) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def process_cpu_seconds(pid: int) -> float:
    """CPU time of a validator and of its child processes (its verify helpers), alive or reaped."""
    fields = _stat_fields(pid)
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, and reaped children's cutime, cstime
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                child = _stat_fields(entry)
            except OSError:  # exited while we looked
                continue
            if child[1] == str(pid):
                ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def _drive(net: LocalTestnet, per_sender: list[list], batch: int, rate: float,
                 progress_line: bool, lanes_per_node: int = LANES) -> tuple[dict, _Recorder, list, float]:
    total = sum(len(txs) for txs in per_sender)
    nodes = len(net)
    # Each sender belongs to one lane of one node; a lane posts its batches one after
    # another (keeping each sender's nonces in order) and a node serves lanes_per_node lanes at once.
    lanes: list[tuple[int, list]] = []
    for node in range(nodes):
        for lane in range(lanes_per_node):
            senders = per_sender[node + lane * nodes::nodes * lanes_per_node]
            longest = max((len(s) for s in senders), default=0)
            txs = [s[i] for i in range(longest) for s in senders if i < len(s)]
            if txs:
                lanes.append((node, txs))
    submit_time: dict[bytes, float] = {}
    refused: list = []
    progress = [0]
    recorder = _Recorder()
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        follower = asyncio.create_task(recorder.follow(session, net.api_urls[0], total))
        await asyncio.sleep(0.5)
        started = time.perf_counter()
        submitters = [
            asyncio.create_task(_submit(session, net.api_urls[node], txs, batch,
                                        rate * len(txs) / total if rate else 0.0,
                                        submit_time, refused, progress))
            for node, txs in lanes
        ]
        last_change, last_seen = time.perf_counter(), -1
        while not follower.done():
            await asyncio.wait([follower], timeout=1.0)
            seen = len(recorder.commit_time)
            if progress_line:
                print(f"\r  submitted {progress[0]:>8}/{total}  committed {seen:>8}", end="", flush=True)
            if seen != last_seen:
                last_change, last_seen = time.perf_counter(), seen
            elif all(s.done() for s in submitters) and time.perf_counter() - last_change > STALL_S:
                break  # nothing committed for a while after the last submission: report what we have
        for task in submitters:
            await task
        if not follower.done():
            follower.cancel()
        if progress_line:
            print()
    return submit_time, recorder, refused, started


def run_bench(directory: Path, *, validators: int = 4, accounts: int = 200, txs: int = 20_000,
              rate: float = 0.0, batch: int = 500, seed: int = 1, progress: bool = True,
              max_block_txs: int = ConsensusSection().max_block_txs, mempool_txs: int = 0,
              profile_dir: Path | None = None, lanes: int = LANES) -> BenchResult:
    """Start a fresh local network in ``directory``, load it, measure and check it."""
    ceiling_before = measure_verify_ceiling()
    senders = [KeyPair.generate() for _ in range(accounts)]
    network = create_network(directory, validators=validators, banks=1,
                             accounts=[(k.public_key, ACCOUNT_BALANCE) for k in senders],
                             ports=_free_ports(validators))
    _tune_configs(network.config_files, max_block_txs, mempool_txs or 4 * max_block_txs)
    per_sender = make_load(senders, txs, network.genesis.chain_id, seed)
    supply = sum(amount for _, amount in network.genesis.balances)
    with LocalTestnet(directory, profile_dir) as net:
        net.start()
        net.wait_ready()
        net.wait_height(1)
        pids = [p.pid for p in net.processes if p is not None]
        cpu_before = [process_cpu_seconds(pid) for pid in pids]
        wall_before = time.perf_counter()
        submit_time, recorder, refused, started = asyncio.run(
            _drive(net, per_sender, batch, rate, progress, lanes))
        wall = time.perf_counter() - wall_before
        cpu = [(process_cpu_seconds(pid) - before) / wall for pid, before in zip(pids, cpu_before)]
        checks = _check(net, senders, per_sender, recorder, submit_time, refused, supply)
    # Measured again once the network is gone; the higher figure is the ceiling, so a
    # disturbed measurement can only make the reported efficiency lower, never higher.
    ceiling_after = measure_verify_ceiling()
    ceiling = max(ceiling_before, ceiling_after)
    submitted_until = max(submit_time.values(), default=started)
    result = _summarise(validators, txs, rate, ceiling, recorder, submit_time, started, cpu, checks, submitted_until)
    result.ceiling_samples = [ceiling_before, ceiling_after]
    return result


def _summarise(validators, submitted, rate, ceiling, recorder, submit_time, started, cpu, checks,
               submitted_until) -> BenchResult:
    """TPS over the steady window, counted in whole blocks.

    Commits happen a block at a time, so the window starts at the commit of
    the block holding the first 10 % of the transfers and ends at the block
    holding the 90 % mark, or at the last commit while transfers were still
    being submitted (what commits after that is the drain); its throughput is the transfers in the blocks after
    the first one divided by the time between those two commits.  Fewer than
    ``MIN_WINDOW_BLOCKS`` blocks make that meaningless, and the whole run
    (first submission to last commit, ramp-up included) is reported instead.
    """
    blocks = [(t, n) for t, n in recorder.blocks if n]
    committed = sum(n for _, n in blocks)
    marks, running = [], 0
    for _index, (_, n) in enumerate(blocks):
        running += n
        marks.append(running)
    first = next((i for i, m in enumerate(marks) if m >= WINDOW[0] * committed), 0)
    last = next((i for i, m in enumerate(marks) if m >= WINDOW[1] * committed), len(blocks) - 1)
    window = [b for b in blocks[first:last + 1] if b[0] <= submitted_until + BLOCK_GRACE_S]
    overall = committed / (blocks[-1][0] - started) if blocks else float("nan")
    if len(window) >= MIN_WINDOW_BLOCKS:
        span = window[-1][0] - window[0][0]
        tps = sum(n for _, n in window[1:]) / span
        blocks_per_s = (len(window) - 1) / span
        txs_per_block = sum(n for _, n in window) / len(window)
    else:
        tps, blocks_per_s = overall, len(blocks) / (blocks[-1][0] - started) if blocks else float("nan")
        txs_per_block = committed / len(blocks) if blocks else float("nan")
    latencies = [(recorder.commit_time[h] - t) * 1000 for h, t in submit_time.items() if h in recorder.commit_time]
    step = timeline_step(blocks[-1][0] - started if blocks else 0.0)
    timeline = _timeline(blocks, recorder.commit_time, submit_time, started, step)
    return BenchResult(
        validators=validators, submitted=submitted, committed=committed, tps=tps, tps_overall=overall,
        window_blocks=len(window),
        p50_ms=_percentile(latencies, 0.50), p95_ms=_percentile(latencies, 0.95),
        p99_ms=_percentile(latencies, 0.99), blocks_per_s=blocks_per_s, txs_per_block=txs_per_block,
        verify_ceiling=ceiling, efficiency=tps * validators / ceiling, cpu_per_validator=cpu,
        rate=rate, duration_s=(blocks[-1][0] - started) if blocks else float("nan"), checks=checks,
        timeline=timeline, timeline_step_s=step,
    )


def timeline_step(duration_s: float) -> float:
    """The step for a run of ``duration_s``: a round number of seconds, at least MIN_TIMELINE_STEP_S."""
    wanted = max(MIN_TIMELINE_STEP_S, duration_s / TIMELINE_POINTS)
    return next(step for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, math.inf) if step >= wanted)


def _timeline(blocks: list[tuple[float, int]], commit_time: dict[bytes, float], submit_time: dict[bytes, float],
              started: float, step: float) -> list[TimelinePoint]:
    """Commit rate and latency percentiles step by step, for ``somnode bench --plot``."""
    if not blocks:
        return []
    steps = int((blocks[-1][0] - started) // step) + 1
    committed = [0] * steps
    for at, count in blocks:
        committed[max(0, int((at - started) // step))] += count
    latencies: list[list[float]] = [[] for _ in range(steps)]
    for tx_hash, sent in submit_time.items():
        committed_at = commit_time.get(tx_hash)
        if committed_at is not None:
            latencies[max(0, int((committed_at - started) // step))].append((committed_at - sent) * 1000)
    return [TimelinePoint((k + 0.5) * step, committed[k] / step, *_percentiles(lat)) for k, lat in enumerate(latencies)]


def _percentiles(values: list[float]) -> tuple[float | None, float | None, float | None]:
    """p50, p95 and p99, or None for each when there is nothing to rank."""
    if not values:
        return None, None, None
    return _percentile(values, 0.50), _percentile(values, 0.95), _percentile(values, 0.99)


def _check(net, senders, per_sender, recorder, submit_time, refused, supply) -> dict[str, bool]:
    expected = {stx.hash for txs in per_sender for stx in txs}
    heights = [net.status(i)["height"] for i in range(len(net))]
    common = min(heights)
    net.wait_height(max(heights), timeout_s=60)
    top = max(heights)
    client = net.client(0)
    nonces_ok = all(client.account(k.address)["nonce"] == len(txs) for k, txs in zip(senders, per_sender))
    status = client.status()
    return {
        "every transfer accepted": not refused,
        "every transfer committed": set(recorder.commit_time) == expected,
        "none committed twice": recorder.duplicates == 0,
        "nonces match transfers sent": nonces_ok,
        "supply unchanged": status["supply"] == supply,
        "one app hash": len({net.client(i).block(top)["app_hash"] for i in range(len(net))}) == 1
        and common >= 1,
    }


def _free_ports(validators: int) -> list[tuple[int, int]]:
    ports = free_ports(2 * validators)
    return [(ports[2 * i], ports[2 * i + 1]) for i in range(validators)]


def _tune_configs(config_files, max_block_txs: int, mempool_txs: int) -> None:
    for path in config_files:
        config = load_config(path)
        config = replace(
            config,
            consensus=replace(config.consensus, max_block_txs=max_block_txs,
                                          max_block_bytes=max(config.consensus.max_block_bytes,
                                                              max_block_txs * 200)),
            # A mempool of a few blocks gives back-pressure: a submitter going "as fast as
            # accepted" is paced by commits, so the run reaches a steady state instead of
            # verifying everything up front and then draining.
            mempool=replace(config.mempool, max_txs=mempool_txs,
                                        max_bytes=max(config.mempool.max_bytes, mempool_txs * 200)),
            api=replace(config.api, max_body_bytes=max(config.api.max_body_bytes, 4 * 1024 * 1024)),
        )
        path.write_text(render_config(config, path.parent))


def format_table(results: list[BenchResult]) -> str:
    head = ("validators", "rate", "submitted", "committed", "tps", "tps all", "p50 ms", "p95 ms", "p99 ms",
            "blocks/s", "txs/block", "ceiling", "efficiency", "cpu/validator", "checks")
    rows = [head]
    for r in results:
        rows.append((
            str(r.validators), "max" if not r.rate else f"{r.rate:.0f}", str(r.submitted), str(r.committed),
            f"{r.tps:.0f}" + ("" if r.window_blocks >= MIN_WINDOW_BLOCKS else "*"), f"{r.tps_overall:.0f}",
            f"{r.p50_ms:.0f}", f"{r.p95_ms:.0f}", f"{r.p99_ms:.0f}", f"{r.blocks_per_s:.1f}",
            f"{r.txs_per_block:.0f}", f"{r.verify_ceiling:.0f}", f"{r.efficiency:.2f}",
            " ".join(f"{c:.2f}" for c in r.cpu_per_validator), "ok" if r.ok else "FAILED",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in rows)


def to_json(results: list[BenchResult]) -> str:
    machine = {"cpus": os.cpu_count()}
    return json.dumps({"machine": machine, "runs": [asdict(r) for r in results]}, indent=2)
