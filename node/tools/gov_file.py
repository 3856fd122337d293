"""The file a governance action travels in while the board signs it, offline, one member at a time.

JSON, so a member can read it before signing and pass it on by any means:

    {
      "type": "somnode-governance-v1",
      "chain_id": "som-localnet",
      "transaction": "<hex of the unsigned transaction's msgpack array>",
      "action": {...the action, in words and fields, for people...},
      "approvals": [{"address": "som1…", "signature": "<hex>"}, ...]
    }

``transaction`` is what is signed (with the chain id, as
node/core/governance.py says); ``action`` is derived from it and checked
against it on every load, so a file edited by hand is refused rather than
signed as something its reader did not see.  Approvals, and a rotation's
proof, are verified on load too: a file never carries a signature that does
not verify.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from node.core.actions import RotateValidatorKey, describe, proof_bytes
from node.core.address import AddressError, decode_address, encode_address
from node.core.governance import GovernanceTransaction, SignedGovernance, decode_unsigned
from node.core.keys import Key, verify_signature
from node.core.tx import TxDecodeError

FILE_TYPE = "somnode-governance-v1"


class GovernanceFileError(ValueError):
    """The file is not a governance action this node can trust; the message says why."""


@dataclass(frozen=True, slots=True)
class PendingAction:
    """A governance transaction and the approvals gathered so far."""

    chain_id: str
    tx: GovernanceTransaction
    approvals: tuple[tuple[bytes, bytes], ...]

    def approved(self, key: Key) -> PendingAction:
        approval = self.tx.approve(key, self.chain_id)
        others = tuple(a for a in self.approvals if a[0] != key.public_key)
        return PendingAction(self.chain_id, self.tx, tuple(sorted((*others, approval))))

    def merged(self, other: PendingAction) -> PendingAction:
        if (other.chain_id, other.tx) != (self.chain_id, self.tx):
            raise GovernanceFileError("the files hold different actions; only copies of one action combine")
        return PendingAction(self.chain_id, self.tx, tuple(sorted(set(self.approvals) | set(other.approvals))))

    def signed(self) -> SignedGovernance:
        return self.tx.signed(self.approvals)

    def to_json(self) -> str:
        document = {
            "type": FILE_TYPE,
            "chain_id": self.chain_id,
            "transaction": self.tx.unsigned_bytes().hex(),
            "action": {"description": describe(self.tx.action), "sequence": self.tx.sequence,
                       "expiry_height": self.tx.expiry_height},
            "approvals": [{"address": encode_address(key), "signature": signature.hex()}
                          for key, signature in self.approvals],
        }
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def read_action(path: Path) -> PendingAction:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GovernanceFileError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GovernanceFileError(f"{path} is not a governance file: {exc}") from None
    if not isinstance(document, dict) or document.get("type") != FILE_TYPE:
        raise GovernanceFileError(f"{path} is not a governance file (type must be {FILE_TYPE!r})")
    try:
        chain_id = document["chain_id"]
        tx = decode_unsigned(bytes.fromhex(document["transaction"]))
        approvals = tuple(sorted((decode_address(a["address"]), bytes.fromhex(a["signature"]))
                                 for a in document["approvals"]))
    except (KeyError, TypeError, ValueError, AddressError, TxDecodeError) as exc:
        raise GovernanceFileError(f"{path} holds a damaged governance action: {exc}") from None
    words = document.get("action")
    if not isinstance(chain_id, str) or not isinstance(words, dict) or words.get("description") != describe(tx.action):
        raise GovernanceFileError(f"{path}: the action in words does not match the transaction; "
                                  "do not sign a file edited by hand")
    message = tx.signing_bytes(chain_id)
    for key, signature in approvals:
        if not verify_signature(key, message, signature):
            raise GovernanceFileError(f"{path}: the approval of {encode_address(key)} does not verify")
    action = tx.action
    if isinstance(action, RotateValidatorKey) and not verify_signature(
            action.new_key, proof_bytes(chain_id, action.old_key, action.new_key), action.proof):
        raise GovernanceFileError(f"{path}: the new key's proof does not verify (built for another chain?)")
    return PendingAction(chain_id, tx, approvals)


def write_action(path: Path, action: PendingAction, *, replace: bool = False) -> None:
    """Write ``action`` to ``path``; a new file unless ``replace`` (a signer updating its copy)."""
    text = action.to_json()
    if replace:
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    else:
        with open(path, "x", encoding="utf-8") as out:
            out.write(text)
