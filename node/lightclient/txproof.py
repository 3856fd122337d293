"""Verifying a transaction proof (``GET /v1/txs/{hash}/proof``, docs/protocol.md §12.6).

A proof shows that a transaction is in block h and how it ended, from two
certified headers: the header of h (whose ``tx_root`` holds the transaction)
and the header of h + 1 (whose ``previous_results_hash`` holds its result).
The caller supplies the validator sets of h and h + 1 it trusts (followed from
the genesis); every hash, path and signature in the document is checked
against them here, so a node that serves a wrong proof is caught, not believed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from consensus.certificate import CertificateError, CommitCertificate, verify_certificate
from consensus.validators import ValidatorSet
from node.core.block import BlockDecodeError, Header, decode_header
from node.core.certificate import decode_certificate
from node.core.results import LEAF_SIZES
from node.core.rfc6962 import InclusionError, verify_inclusion
from node.core.validator_set import validators_hash
from node.lightclient.documents import Ed25519, from_hex, hex_field, integer

_MAX_PATH = 64


class TxProofError(ValueError):
    """The proof does not show what it claims; the message names the failing check."""


@dataclass(frozen=True, slots=True)
class ProvenTx:
    """What a verified proof establishes: the transaction, where it is, and how it ended."""

    height: int
    index: int
    tx: bytes
    tx_hash: bytes
    code: int  # the receipt code's byte (docs/ledger.md)
    waterfall: tuple[int, int, bytes] | None  # (credited, passed on, linked account)


def verify_tx_proof(document: Mapping[str, object], chain_id: str, validators_at_h: ValidatorSet,
                    validators_at_h_plus_1: ValidatorSet) -> ProvenTx:
    """Check ``document`` step by step (docs/protocol.md §12.6); raise ``TxProofError`` at the first
    mismatch."""
    height = integer(document, "height", TxProofError)
    index = integer(document, "index", TxProofError)
    tx = hex_field(document, "tx", TxProofError)
    header_bytes = hex_field(document, "header", TxProofError)
    results_header_bytes = hex_field(document, "results_header", TxProofError)
    result = hex_field(document, "result", TxProofError)
    # 1. Header h is the one its certificate decides, by the validators of h.
    header = _header(header_bytes, "header", chain_id, height)
    header_hash = hashlib.sha256(header_bytes).digest()
    _certified(hex_field(document, "certificate", TxProofError), "certificate", header_hash, height,
               validators_at_h, chain_id)
    # 2. The transaction is leaf ``index`` of header h's tx_root.
    _included(header.tx_root, header.tx_count, index, tx, _path(document, "tx_path"), "tx_path", "tx_root")
    # 3. Header h + 1 follows header h, names the set the caller gave for h + 1, and is certified by it.
    results_header = _header(results_header_bytes, "results_header", chain_id, height + 1)
    if results_header.previous_block_hash != header_hash:
        raise TxProofError("results_header: its previous_block_hash is not the hash of header")
    if header.next_validators_hash != validators_hash(tuple((v.public_key, v.power) for v in validators_at_h_plus_1)):
        raise TxProofError("header: next_validators_hash does not name the validator set given for height h + 1")
    _certified(hex_field(document, "results_certificate", TxProofError), "results_certificate",
               hashlib.sha256(results_header_bytes).digest(), height + 1, validators_at_h_plus_1, chain_id)
    # 4. The result is this transaction's, and leaf ``index`` of header h + 1's previous_results_hash.
    tx_hash = hashlib.sha256(tx).digest()
    if len(result) not in LEAF_SIZES or result[:32] != tx_hash:
        raise TxProofError("result: not a result leaf of this transaction (tx_hash || code [|| waterfall])")
    _included(results_header.previous_results_hash, header.tx_count, index, result,
              _path(document, "result_path"), "result_path", "previous_results_hash")
    waterfall = None
    if len(result) > 33:
        waterfall = (int.from_bytes(result[33:41], "big"), int.from_bytes(result[41:49], "big"), result[49:])
    return ProvenTx(height, index, tx, tx_hash, result[32], waterfall)


def _header(raw: bytes, field: str, chain_id: str, height: int) -> Header:
    try:
        header = decode_header(raw)
    except BlockDecodeError as exc:
        raise TxProofError(f"{field}: {exc}") from None
    if header.chain_id != chain_id:
        raise TxProofError(f"{field}: chain {header.chain_id!r}, not {chain_id!r}")
    if header.height != height:
        raise TxProofError(f"{field}: height {header.height}, expected {height}")
    return header


def _certified(raw: bytes, field: str, header_hash: bytes, height: int, validators: ValidatorSet,
               chain_id: str) -> None:
    try:
        certificate: CommitCertificate = decode_certificate(raw)
        verify_certificate(certificate, validators, chain_id, Ed25519(), height=height, value_id=header_hash)
    except (CertificateError, ValueError) as exc:
        raise TxProofError(f"{field}: {exc}") from None


def _included(root: bytes, size: int, index: int, leaf: bytes, path: Sequence[bytes], field: str,
              names: str) -> None:
    try:
        verify_inclusion(root, size, index, leaf, path)
    except InclusionError as exc:
        raise TxProofError(f"{field}: does not prove the leaf under the header's {names}: {exc}") from None


def _path(document: Mapping[str, object], field: str) -> list[bytes]:
    value = document.get(field)
    if not isinstance(value, list) or len(value) > _MAX_PATH:
        raise TxProofError(f"{field}: must be a list of at most {_MAX_PATH} hex hashes")
    return [from_hex(node, field, TxProofError) for node in value]
