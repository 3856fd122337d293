"""Four validator processes under a transfer load, one of which signs through a ``somnode signer`` process.

1. The signer is SIGKILLed and restarted.  Meanwhile validator 4 misses its
   votes but does not halt; the other three keep committing the whole time
   (no long gap between commits); validator 4 relinks by itself, and its
   proposals commit again.
2. Validator 4's data directory is replaced by an older copy (a restored
   backup, taken while it was stopped, before it signed the heights it
   signed since), and it is restarted.  It asks the signer for messages at
   heights the signer has passed: the signer refuses each (``signer.refused``
   in its log, ``remote_signer.refused`` in the validator's), the validator
   catches up from its peers and votes again above the mark, and no node
   ever records evidence against it.  The restored validator runs with a
   1 ms propose timeout, so that it asks to sign at its old height at once,
   before catch-up could carry it past that height.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time

from node.app.config import load_config, render_config
from node.core.keys import read_key_file
from tests.localnet import TransferLoad, Wallet, make_network, node_log, running
from tests.signing_net import SignerProcess, full_log, in_certificate, proposed_by

TIMEOUT_S = 90
# The longest the three others may go without a commit while validator 4's signer is away: a round
# whose proposer is validator 4 times out (1 s) and the next one commits.
MAX_COMMIT_GAP_S = 8.0


class Heights(threading.Thread):
    """Validator 1's height, sampled four times a second: when did it last rise?"""

    def __init__(self, net) -> None:
        super().__init__(name="heights", daemon=True)
        self.net, self.samples = net, []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.25):
            status = self.net.status(0)
            if status is not None:
                self.samples.append((time.monotonic(), status["height"]))

    def longest_gap(self) -> float:
        rises = [t for (t, h), (_, before) in zip(self.samples[1:], self.samples) if h > before]
        return max((b - a for a, b in zip(rises, rises[1:])), default=float("inf"))

    def stop(self) -> None:
        self.stopping.set()
        if self.is_alive():
            self.join(timeout=5)


def wait_for(condition, what: str, timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def signs_above(net, address: str, height: int) -> bool:
    """Whether validator 4 signs through its signer again above ``height``.

    Among the ten newest blocks, one it proposed is committed (the others
    accepted its signed proposal), and one of its own certificates holds its
    own precommit.
    """
    def newest(index: int) -> range:
        top = net.status(index)["height"]
        return range(max(height + 1, top - 9), top + 1)

    return (any(proposed_by(net, 0, h, address) for h in newest(0))
            and any(in_certificate(net, 3, h, address) for h in newest(3)))


def test_a_validator_with_a_remote_signer_survives_its_loss_and_a_restored_backup(tmp_path):
    network = make_network(tmp_path / "net", validators=4)
    address = read_key_file(network.validator_key_files[3]).address
    signer = SignerProcess(network, 3)
    data_dir = load_config(network.config_files[3]).node.data_dir
    wallets = [Wallet(path, network.genesis.chain_id) for path in network.bank_key_files]
    with running(network, start=False) as net:
        load = TransferLoad(net, wallets, nodes=(0, 1, 2))
        heights = Heights(net)
        try:
            signer.start()
            net.start()
            net.wait_ready()
            net.wait_height(2, timeout_s=TIMEOUT_S)
            load.start()
            heights.start()
            wait_for(lambda: signs_above(net, address, 1), "validator4's proposals commit")

            # 1. The signer dies and comes back; the network keeps committing throughout.
            signer.kill()
            killed_at = net.status(0)["height"]
            wait_for(lambda: net.status(0)["height"] >= killed_at + 5, "the others commit without the signer")
            assert net.alive(3), f"validator4 halted without its signer:\n{node_log(net, 3)}"
            assert "remote_signer.unlinked" in full_log(net, 3) or "remote_signer.unavailable" in full_log(net, 3)
            restarted_at = net.status(0)["height"]
            signer.start()
            wait_for(lambda: full_log(net, 3).count("remote_signer.linked") >= 2, "validator4 relinks")
            wait_for(lambda: signs_above(net, address, restarted_at), "validator4 votes again")
            assert heights.longest_gap() < MAX_COMMIT_GAP_S, heights.samples

            # 2. A restored backup of validator4's data directory: the signer refuses what it signed.
            net.stop(3)
            backup = tmp_path / "backup"
            shutil.copytree(data_dir, backup)
            stopped_at = net.status(0)["height"]
            net.start(3)
            net.wait_ready(indices=[3])
            wait_for(lambda: signs_above(net, address, stopped_at + 3), "validator4 signs past its backup")
            net.stop(3)
            shutil.rmtree(data_dir)
            shutil.copytree(backup, data_dir)
            path = network.config_files[3]
            config = load_config(path)
            path.write_text(render_config(dataclasses.replace(
                config, consensus=dataclasses.replace(config.consensus, timeout_propose_ms=1)), path.parent))
            restored_at = net.status(0)["height"]
            net.start(3)
            net.wait_ready(indices=[3])
            wait_for(lambda: "event=signer.refused" in signer.text(), "the signer refuses the restored validator")
            wait_for(lambda: "remote_signer.refused" in full_log(net, 3), "the validator logs the refusal")
            wait_for(lambda: signs_above(net, address, restored_at), "the restored validator votes again")
            load.stop()
            heights.stop()
            assert not load.refused, load.refused[:3]
            for index in range(4):
                assert net.status(index)["evidence"] == [], f"validator{index + 1} recorded evidence"
                assert "consensus.evidence" not in full_log(net, index)
            top = min(net.status(i)["height"] for i in range(4))
            assert len({net.client(i).block(top)["app_hash"] for i in range(4)}) == 1
        finally:
            load.stop()
            heights.stop()
            signer.stop()
