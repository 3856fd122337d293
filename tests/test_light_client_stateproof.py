"""The light client's state proof check (node/lightclient/stateproof.py) against documents as the API renders
them: a served document verifies, and a change to any one field of it is caught.

The documents come from the API's own ``state_proof_doc`` over a real state tree, and the certifying header
is a real header whose ``previous_app_hash`` is the tree's root, so what passes here is what a node serves.
"""

from __future__ import annotations

import copy
import struct

import msgpack
import pytest

from node.api.backend import StateProofView
from node.api.proofs import state_proof_doc
from node.core.block import Header
from node.ledger import layout
from node.ledger.tree import StateTree
from node.lightclient.stateproof import (
    ProvenAccount,
    StateProofError,
    account_key,
    decode_account,
    decode_order,
    order_key,
    verify_state_document,
)

HEIGHT = 41
ALICE, BOB, CAROL = b"\x11" * 32, b"\x22" * 32, b"\x33" * 32
ALICE_VALUE = struct.pack(">QQBBIQ", 150_000, 3, 1, 3, 20_425, 0)
ORDER_VALUE = msgpack.packb([9, 3, b"", "Pervomaisky District Court", "2-1234/26", "2026-11-30", b"\x07" * 32],
                            use_bin_type=True)
# Enough neighbours that some share a level-3 node with Alice, so siblings are not all empty.
RECORDS = {account_key(ALICE): ALICE_VALUE, order_key(ALICE, 40, 2): ORDER_VALUE, b"s": b"\x00" * 32,
           **{account_key(bytes([n]) * 32): struct.pack(">QQBBIQ", n, 0, 0, 0, 0, 0) for n in range(40, 240)}}


def header(height: int, app_hash: bytes) -> Header:
    return Header("som-test", height, 1_700_000_000_000, b"\x03" * 32, b"\x01" * 32, app_hash, b"\x02" * 32,
                  b"\x04" * 32, b"\x05" * 32, 0)


@pytest.fixture(scope="module")
def tree() -> StateTree:
    return StateTree.build(RECORDS.items())


def served(tree: StateTree, key: bytes) -> dict:
    view = StateProofView(HEIGHT, key, RECORDS.get(key), tree.root, tree.proof(key))
    return state_proof_doc(view)


def headers(tree: StateTree) -> dict[int, Header]:
    return {HEIGHT: header(HEIGHT, b"\x09" * 32), HEIGHT + 1: header(HEIGHT + 1, tree.root)}


def test_a_served_account_document_verifies_and_decodes(tree):
    record = verify_state_document(served(tree, account_key(ALICE)), account_key(ALICE), headers(tree))
    assert (record.height, record.value, record.app_hash) == (HEIGHT, ALICE_VALUE, tree.root)
    assert decode_account(record.value) == ProvenAccount(150_000, 3, 1, 3, 20_425, 0)


def test_a_served_absence_verifies(tree):
    record = verify_state_document(served(tree, account_key(BOB)), account_key(BOB), headers(tree))
    assert record.value is None


def test_a_served_order_document_verifies_and_decodes(tree):
    key = order_key(ALICE, 40, 2)
    assert key == layout.order_key(ALICE, 40, 2), "the light client's key is the ledger's"
    record = verify_state_document(served(tree, key), key, headers(tree))
    order = decode_order(key, record.value)
    assert (order.height, order.index, order.kind, order.detail, order.number) == (40, 2, 9, 3, "2-1234/26")


def flip_hex(text: str, at: int = 0) -> str:
    return text[:at] + ("0" if text[at] != "0" else "1") + text[at + 1:]


def tamperings(document: dict) -> list[tuple[str, dict]]:
    """Each single-field change of a document: (what changed, the changed document)."""
    changed = []

    def variant(name, change):
        doc = copy.deepcopy(document)
        change(doc)
        changed.append((name, doc))

    if document["value"] is None:
        variant("value (a claim of presence)", lambda d: d.update(value=ALICE_VALUE.hex()))
    else:
        variant("value", lambda d: d.update(value=flip_hex(d["value"], 5)))
        variant("value dropped (a claim of absence)", lambda d: d.update(value=None))
    variant("app_hash", lambda d: d.update(app_hash=flip_hex(d["app_hash"], 7)))
    variant("height", lambda d: d.update(height=d["height"] - 1))
    variant("certified_by", lambda d: d.update(certified_by=d["certified_by"] + 1))
    variant("height and certified_by together", lambda d: d.update(height=d["height"] - 1,
                                                                   certified_by=d["certified_by"] - 1))
    variant("key", lambda d: d.update(key=flip_hex(d["key"], 3)))
    for index in range(len(document["proof"]["entries"])):
        variant(f"entry {index}", lambda d, i=index: d["proof"]["entries"].__setitem__(
            i, flip_hex(d["proof"]["entries"][i], 70)))
    if document["proof"]["entries"]:
        variant("an entry dropped", lambda d: d["proof"]["entries"].pop())
    variant("an entry added", lambda d: d["proof"]["entries"].append(d["key"][:8] + "00" * 60))
    for level in range(4):
        for position in (0, 14):
            variant(f"sibling {position} of level {level}", lambda d, lv=level, p=position: d["proof"]["siblings"][
                lv].__setitem__(p, flip_hex(d["proof"]["siblings"][lv][p], 11)))
    variant("a level of siblings dropped", lambda d: d["proof"]["siblings"].pop())
    variant("a sibling not hex", lambda d: d["proof"]["siblings"][0].__setitem__(0, "zz" * 32))
    return changed


@pytest.mark.parametrize("who", [ALICE, BOB], ids=["present", "absent"])
def test_changing_any_one_field_is_caught(tree, who):
    key = account_key(who)
    document = served(tree, key)
    verify_state_document(document, key, headers(tree))
    cases = tamperings(document)
    assert len(cases) > 15
    for name, doc in cases:
        with pytest.raises(StateProofError):
            verify_state_document(doc, key, headers(tree))
            pytest.fail(f"changing the {name} went unnoticed")


def test_the_proof_must_lead_to_the_verified_header_not_to_its_own_app_hash(tree):
    """A document consistent in itself (another state's root and proof) fails against the verified header."""
    other = StateTree.build({**RECORDS, account_key(ALICE): struct.pack(">QQBBIQ", 10**9, 3, 1, 0, 0, 0)}.items())
    key = account_key(ALICE)
    view = StateProofView(HEIGHT, key, struct.pack(">QQBBIQ", 10**9, 3, 1, 0, 0, 0), other.root, other.proof(key))
    with pytest.raises(StateProofError, match="previous_app_hash"):
        verify_state_document(state_proof_doc(view), key, headers(tree))


def test_a_height_the_client_did_not_follow_is_refused(tree):
    key = account_key(ALICE)
    with pytest.raises(StateProofError, match="not among the headers"):
        verify_state_document(served(tree, key), key, {HEIGHT: header(HEIGHT, tree.root)})


def test_another_key_is_refused(tree):
    with pytest.raises(StateProofError, match="key"):
        verify_state_document(served(tree, account_key(ALICE)), account_key(CAROL), headers(tree))
