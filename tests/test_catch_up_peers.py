"""Which peer catch-up asks: the furthest ahead of those that keep the next block, never an observer."""

from __future__ import annotations

from node.host.catchup import CatchUp
from node.p2p.handshake import Role
from node.p2p.transport import PeerInfo

VALIDATOR, PRUNED, OBSERVER = bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32


class Source:
    def __init__(self, *peers: PeerInfo) -> None:
        self._peers = peers

    def peers(self) -> tuple[PeerInfo, ...]:
        return self._peers

    async def request_blocks(self, peer, from_height, to_height):
        raise AssertionError("not asked here")


def best(*peers: PeerInfo, committed: int = 10) -> tuple[bytes, int] | None:
    catch_up = CatchUp(Source(*peers), validity=None, committed_height=lambda: committed,  # type: ignore[arg-type]
                       deliver=None, on_fatal=lambda exc: None)  # type: ignore[arg-type]
    return catch_up._best_peer(committed)


def test_an_observer_claiming_any_height_is_never_the_peer_caught_up_from():
    validator = PeerInfo(VALIDATOR, Role.INITIATOR, "v", 20, 1)
    observer = PeerInfo(OBSERVER, Role.RESPONDER, "o", 10**9, 1, True)
    assert best(validator, observer) == (VALIDATOR, 20)
    assert best(observer) is None


def test_a_peer_that_pruned_the_next_block_is_passed_over():
    keeper = PeerInfo(VALIDATOR, Role.INITIATOR, "v", 20, 1)
    pruned = PeerInfo(PRUNED, Role.INITIATOR, "p", 30, 15)
    assert best(keeper, pruned) == (VALIDATOR, 20)
    assert best(pruned) is None
