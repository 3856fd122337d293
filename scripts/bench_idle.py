"""Benchmark: what an idle network costs, and how soon a transfer submitted to it commits.

Starts a local network of validator processes with the configuration
``somnode testnet`` writes, lets it idle, and reports per validator the
heights committed and the log bytes written per minute.  Then it submits
``--samples`` transfers one at a time, each to the next validator and each
once the network is idle again (the block that certifies the previous one
committed, then a pause), and reports the time from the submit request to
the transfer being reported committed by that validator's API, polled every
10 ms: median, 99th percentile and worst.

    .venv/bin/python scripts/bench_idle.py [--validators 4] [--idle-s 120] [--samples 20]
        [--empty-block-interval-ms N] [--json FILE]

``--empty-block-interval-ms`` writes that value into every validator's
config; without it the network runs the defaults of the code on PYTHONPATH,
so the same script measures a checkout from before the heartbeat.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from node.app.config import load_config, render_config
from node.core.keys import read_key_file
from node.core.tx import Transaction, TxKind
from node.tools.network import create_network
from node.tools.testnet import LocalTestnet, free_ports

POLL_S = 0.01


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--idle-s", type=float, default=120.0, help="how long to watch the idle network")
    parser.add_argument("--samples", type=int, default=20, help="transfers timed one at a time")
    parser.add_argument("--empty-block-interval-ms", type=int, help="consensus.empty_block_interval_ms")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        ports = free_ports(2 * args.validators)
        network = create_network(Path(tmp) / "net", validators=args.validators, banks=2,
                                 ports=[(ports[2 * i], ports[2 * i + 1]) for i in range(args.validators)])
        if args.empty_block_interval_ms is not None:
            for path in network.config_files:
                config = load_config(path)
                consensus = dataclasses.replace(config.consensus, empty_block_interval_ms=args.empty_block_interval_ms)
                path.write_text(render_config(dataclasses.replace(config, consensus=consensus), path.parent))
        logs = [path.parent / "node.log" for path in network.config_files]
        payer, payee = (read_key_file(path) for path in network.bank_key_files[:2])
        with LocalTestnet(network.directory) as net:
            net.start()
            net.wait_ready()
            net.wait_height(1)
            time.sleep(5)  # past start-up's log lines and the first blocks
            start = [(net.status(i)["height"], logs[i].stat().st_size) for i in range(args.validators)]
            time.sleep(args.idle_s)
            end = [(net.status(i)["height"], logs[i].stat().st_size) for i in range(args.validators)]
            minutes = args.idle_s / 60
            heights_per_minute = [(e[0] - s[0]) / minutes for s, e in zip(start, end, strict=True)]
            log_bytes_per_minute = [(e[1] - s[1]) / minutes for s, e in zip(start, end, strict=True)]

            latencies = []
            for nonce in range(args.samples):
                node = nonce % args.validators
                client = net.client(node)
                stx = Transaction(TxKind.TRANSFER, payer.public_key, nonce, 100, payee.public_key).sign(
                    payer, network.genesis.chain_id)
                submitted = time.monotonic()
                [result] = client.submit([stx.raw])
                if not result["accepted"]:
                    raise SystemExit(f"transfer {nonce} refused: {result}")
                while (found := client.tx(stx.hash.hex()))["status"] != "committed":
                    if time.monotonic() - submitted > 60:
                        raise SystemExit(f"transfer {nonce} not committed within 60 s")
                    time.sleep(POLL_S)
                latencies.append(time.monotonic() - submitted)
                net.wait_height(found["height"] + 1)  # the block that certifies it
                time.sleep(rng.uniform(1.0, 3.0))  # idle again before the next one
    latencies.sort()
    report = {
        "validators": args.validators, "idle_s": args.idle_s,
        "empty_block_interval_ms": args.empty_block_interval_ms,
        "heights_per_minute": [round(h, 1) for h in heights_per_minute],
        "log_bytes_per_minute": [round(b) for b in log_bytes_per_minute],
        "samples": len(latencies),
        "latency_ms_median": round(1e3 * statistics.median(latencies)),
        "latency_ms_p99": round(1e3 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]),
        "latency_ms_max": round(1e3 * latencies[-1]),
    }
    print(f"idle {args.idle_s:g} s: committed heights per minute per validator {report['heights_per_minute']}; "
          f"log bytes per minute {report['log_bytes_per_minute']}")
    print(f"{len(latencies)} transfers to an idle network, submit to committed: median "
          f"{report['latency_ms_median']} ms, p99 {report['latency_ms_p99']} ms, max {report['latency_ms_max']} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
