"""The remote signer's double-sign guard: what it agrees to sign, and its persistent high-water mark.

The signer signs only two kinds of bytes, each recognised by its domain tag
and parsed field by field: consensus messages of its chain
(docs/protocol.md §10), and peer handshake transcripts of its chain that name
its own key in the role it signs as (node/p2p/handshake.py).  Anything else
(a transaction, a governance approval, bytes of another chain) is refused:
a link to the signer is not a licence to sign whatever a compromised
validator asks.

For consensus messages it keeps the last (height, round, step) it signed,
with the bytes and the signature, in a file it writes durably *before* the
signature leaves it.  It signs only above that mark; at the mark itself it
hands back the signature it already made when asked for the identical bytes
(a validator that crashed before logging its vote asks again), and refuses
everything else.  This holds whatever the validator remembers: a validator
restored from an old backup asks for heights it has signed already and is
refused, so it can never equivocate.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from consensus.events import SigningState, Step
from consensus.messages import CONSENSUS_DOMAIN, VALUE_ID_SIZE, MessageType
from node.p2p.handshake import HANDSHAKE_DOMAIN, Role

STATE_TYPE = "somnode-signer-state-v1"
_CONSENSUS_FIELDS = struct.Struct(">BQIq")
_STEPS = {MessageType.PROPOSAL: Step.PROPOSE, MessageType.PREVOTE: Step.PREVOTE,
          MessageType.PRECOMMIT: Step.PRECOMMIT}
_KEY, _HASH, _NONCE = 32, 32, 32


class NotAllowed(ValueError):
    """Bytes the signer never signs; the message says what they are not."""


class StateFileError(Exception):
    """The high-water mark file is missing, unreadable or damaged: the signer does not start without it."""


@dataclass(frozen=True, slots=True)
class ConsensusRequest:
    """A proposal or vote to sign, at (height, round, step)."""

    state: SigningState
    message: bytes


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    """A peer handshake transcript: proves the validator's identity on a link, decides nothing."""

    message: bytes


def _chain_prefix(domain: bytes, chain_id: str) -> bytes:
    chain = chain_id.encode("utf-8")
    return domain + bytes([len(chain)]) + chain


def classify(message: bytes, chain_id: str, public_key: bytes) -> ConsensusRequest | HandshakeRequest:
    """What ``message`` is, if it is something the signer for ``public_key`` on ``chain_id`` signs."""
    consensus = _chain_prefix(CONSENSUS_DOMAIN, chain_id)
    if message.startswith(consensus):
        body = message[len(consensus):]
        if len(body) != _CONSENSUS_FIELDS.size + 1 + VALUE_ID_SIZE:
            raise NotAllowed("a consensus message of the wrong length")
        kind, height, round, valid_round = _CONSENSUS_FIELDS.unpack_from(body)
        flag, vid = body[_CONSENSUS_FIELDS.size], body[_CONSENSUS_FIELDS.size + 1:]
        if kind not in _STEPS:
            raise NotAllowed(f"consensus message type {kind} is unknown")
        if flag not in (0, 1) or (flag == 0 and vid != bytes(VALUE_ID_SIZE)):
            raise NotAllowed("a malformed value id")
        if kind == MessageType.PROPOSAL and (flag == 0 or not -1 <= valid_round < round):
            raise NotAllowed("a proposal must name a value and a valid round below its round")
        if kind != MessageType.PROPOSAL and valid_round != -1:
            raise NotAllowed("a vote carries valid round -1")
        return ConsensusRequest(SigningState(height, round, _STEPS[MessageType(kind)]), message)
    handshake = _chain_prefix(HANDSHAKE_DOMAIN, chain_id)
    if message.startswith(handshake):
        body = message[len(handshake):]
        if len(body) != _HASH + 2 * _KEY + 2 * _NONCE + 1:
            raise NotAllowed("a handshake transcript of the wrong length")
        initiator, responder = body[_HASH:_HASH + _KEY], body[_HASH + _KEY:_HASH + 2 * _KEY]
        role = body[-1]
        if role not in (Role.INITIATOR, Role.RESPONDER):
            raise NotAllowed(f"handshake role {role} is unknown")
        if (initiator if role == Role.INITIATOR else responder) != public_key:
            raise NotAllowed("a handshake transcript that does not name this key in the role it signs as")
        return HandshakeRequest(message)
    raise NotAllowed("neither a consensus message nor a handshake transcript of this chain")


@dataclass(frozen=True, slots=True)
class Mark:
    """The last consensus message signed: where it was, its bytes and its signature."""

    state: SigningState
    message: bytes
    signature: bytes


class HighWaterMark:
    """The persistent mark, in one small JSON file replaced atomically (write, fsync, rename, fsync)."""

    def __init__(self, path: Path, chain_id: str, mark: Mark | None) -> None:
        self.path = path
        self.chain_id = chain_id
        self.mark = mark
        # One write at a time, in the order the mark moved: a write whose caller was cancelled (a
        # superseded link) still finishes before the next one starts.
        self._writing = threading.Lock()

    @classmethod
    def create(cls, path: Path, chain_id: str, floor: int = 0) -> HighWaterMark:
        """A new state file; ``floor`` > 0 bars every height up to it (a signer whose file was lost)."""
        if path.exists():
            raise StateFileError(f"{path} already exists; a signer's state file is never replaced")
        mark = None if floor == 0 else Mark(SigningState.barring(floor), b"", b"")
        state = cls(path, chain_id, mark)
        state._write()
        return state

    @classmethod
    def load(cls, path: Path, chain_id: str) -> HighWaterMark:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StateFileError(f"{path} does not exist") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StateFileError(f"{path} is unreadable: {exc}") from None
        try:
            if data["type"] != STATE_TYPE:
                raise ValueError(f"type must be {STATE_TYPE!r}")
            if data["chain_id"] != chain_id:
                raise ValueError(f"it belongs to chain {data['chain_id']!r}, not {chain_id!r}")
            mark = data["mark"]
            if mark is None:
                return cls(path, chain_id, None)
            state = SigningState(int(mark["height"]), int(mark["round"]), Step[mark["step"].upper()])
            return cls(path, chain_id, Mark(state, bytes.fromhex(mark["message"]), bytes.fromhex(mark["signature"])))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StateFileError(f"{path} is damaged: {exc}") from None

    def check(self, request: ConsensusRequest) -> bytes | None:
        """None: above the mark, may be signed.  The signature already made: the identical message at the
        mark.  Raises ``Refused`` for anything else at or below the mark."""
        mark = self.mark
        if mark is None or mark.state.allows(request.state.height, request.state.round, request.state.step):
            return None
        if request.state == mark.state and request.message == mark.message:
            return mark.signature
        raise Refused(mark.state, request.state)

    def advance(self, request: ConsensusRequest, signature: bytes) -> None:
        """Record ``request`` as signed, durably, before its signature is handed out.  Checked again
        here: the mark may have moved since ``check`` (a superseded link's last write); ``Refused``
        then, as from ``check``."""
        with self._writing:
            if self.check(request) is not None:
                return  # the identical message is recorded already (Ed25519 signs it identically)
            self.mark = Mark(request.state, request.message, signature)
            self._write()

    def _write(self) -> None:
        mark = self.mark
        body = {"type": STATE_TYPE, "chain_id": self.chain_id, "mark": None if mark is None else {
            "height": mark.state.height, "round": mark.state.round, "step": mark.state.step.name.lower(),
            "message": mark.message.hex(), "signature": mark.signature.hex()}}
        temporary = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, (json.dumps(body, indent=2) + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


class Refused(Exception):
    """A consensus message at or below the high-water mark that is not the one signed there."""

    def __init__(self, mark: SigningState, asked: SigningState) -> None:
        super().__init__(f"asked for {_text(asked)}, at or below the high-water mark {_text(mark)}")
        self.mark = mark
        self.asked = asked


def _text(state: SigningState) -> str:
    return f"{state.height}/{state.round}/{state.step.name.lower()}"


def state_text(state: SigningState | None) -> str:
    return "none" if state is None else _text(state)
