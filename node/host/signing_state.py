"""Durable storage of the consensus signing state.

The engine emits ``PersistSigningState`` before every message it signs; the
runtime writes it here and only then lets the message leave the process.  The
write is atomic (temporary file, fsync, rename, fsync of the directory), so
after a crash the file holds either the old or the new state, never a torn
one, and a restarted validator cannot sign twice at one height/round/step.

Beside the state it keeps this validator's latest precommit for a value at
the current height, and (in ``<name>.proposal``) the proposal that precommit
was for: fed back to the engine after a restart they restore the lock the
paper's lines 36-43 took, and the locked value itself, so a validator that
crashed between precommitting a block and writing it can still commit it,
even when no peer holds the proposal any more.  The proposal file is written
before the state that refers to it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from consensus.events import SigningState, Step
from consensus.messages import MessageType, Proposal, Vote
from node.p2p.framing import WireError
from node.p2p.wire import decode as decode_message
from node.p2p.wire import encode as encode_message


class SigningStateError(ValueError):
    """The signing state file exists but cannot be trusted."""


class SigningStateFile:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.proposal_path = self.path.with_suffix(".proposal")
        self._written_proposal: bytes | None = None

    def load(self) -> tuple[SigningState | None, Vote | None, Proposal | None]:
        """The last persisted state (None for a validator that never signed), precommit and its proposal."""
        try:
            text = self.path.read_text(encoding="ascii")
        except FileNotFoundError:
            return None, None, None
        except (OSError, UnicodeDecodeError) as exc:
            raise SigningStateError(f"signing state {self.path} is unreadable: {exc}") from exc
        try:
            data = json.loads(text)
            state = SigningState(int(data["height"]), int(data["round"]), Step(int(data["step"])))
            precommit = _decode_precommit(data.get("precommit"))
        except (ValueError, KeyError, TypeError) as exc:
            raise SigningStateError(
                f"signing state {self.path} is corrupt ({exc}); refusing to sign: do not restore an old copy; see docs/operators.md, section 9"
            ) from exc
        if state.height < 0 or state.round < 0:
            raise SigningStateError(f"signing state {self.path} holds a negative height or round")
        return state, precommit, self._load_proposal(precommit)

    def _load_proposal(self, precommit: Vote | None) -> Proposal | None:
        """The proposal the precommit was for; a missing or mismatched one is simply not offered."""
        if precommit is None:
            return None
        try:
            proposal = decode_message(self.proposal_path.read_bytes())
        except (OSError, WireError):
            return None
        if (not isinstance(proposal, Proposal) or proposal.height != precommit.height
                or proposal.value_id != precommit.value_id):
            return None
        return proposal

    def save(self, state: SigningState, precommit: Vote | None = None, proposal: Proposal | None = None) -> None:
        """Durably replace the stored state (after the proposal, if new); returns once it is on disk."""
        if proposal is not None:
            frame = encode_message(proposal)
            if frame != self._written_proposal:
                _write_atomically(self.proposal_path, frame)
                self._written_proposal = frame
        document: dict = {"height": state.height, "round": state.round, "step": int(state.step)}
        if precommit is not None:
            assert precommit.type is MessageType.PRECOMMIT and precommit.value_id is not None
            document["precommit"] = {
                "height": precommit.height, "round": precommit.round, "value_id": precommit.value_id.hex(),
                "validator": precommit.validator.hex(), "signature": precommit.signature.hex(),
            }
        _write_atomically(self.path, json.dumps(document).encode("ascii"))


def _write_atomically(path: Path, body: bytes) -> None:
    """Temporary file, fsync, rename, fsync of the directory: the old or the new content, never a torn one."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _decode_precommit(data: object) -> Vote | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError("precommit must be an object")
    return Vote(MessageType.PRECOMMIT, int(data["height"]), int(data["round"]), bytes.fromhex(data["value_id"]),
                bytes.fromhex(data["validator"]), bytes.fromhex(data["signature"]))
