"""docs/protocol.md §16.4, the worked state proof, recomputed from the text of the document.

Every hex string of the section must be what the definitions give, and the
node's tree and proofs must agree with them: a drift of the code or the doc
fails here.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from node.core.state_proof import empty_root, verify
from node.ledger import layout as k
from node.ledger.tree import StateTree
from tests.state_reference import EMPTY, reference_root

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def section() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index("### 16.4 Worked example"):]


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


ACCOUNT_KEY = k.account_key(bytes([0x11]) * 32)
ACCOUNT_VALUE = k.ACCOUNT_VALUE.pack(150_000, 3, 1, 0, 20425, 0)
SUPPLY_VALUE = k.encode_supply(1_000_000, 0)
RECORDS = {ACCOUNT_KEY: ACCOUNT_VALUE, b"s": SUPPLY_VALUE}


def node(children: list[bytes]) -> bytes:
    return sha(b"\x01" + b"".join(children))


def test_every_hex_of_the_worked_example_is_recomputed():
    text = section()
    account_hash, supply_hash = sha(ACCOUNT_KEY), sha(b"s")
    account_bucket = sha(b"\x00" + account_hash + sha(ACCOUNT_VALUE))
    supply_bucket = sha(b"\x00" + supply_hash + sha(SUPPLY_VALUE))
    # The path of bucket b25b, from the definitions: one non-empty child at each level.
    level3 = node([account_bucket if i == 0xB else EMPTY[4] for i in range(16)])
    level2 = node([level3 if i == 0x5 else EMPTY[3] for i in range(16)])
    level1_b = node([level2 if i == 0x2 else EMPTY[2] for i in range(16)])
    # Bucket 043a: child a of level-3 node 043, child 3 of level-2 node 04, child 4 of level-1 node 0.
    level1_0 = node([node([node([supply_bucket if i == 0xA else EMPTY[4] for i in range(16)])
                           if j == 0x3 else EMPTY[3] for j in range(16)]) if m == 0x4 else EMPTY[2]
                     for m in range(16)])
    root = node([level1_0 if i == 0 else level1_b if i == 0xB else EMPTY[1] for i in range(16)])
    expected = {
        ACCOUNT_KEY.hex(), ACCOUNT_VALUE.hex(), SUPPLY_VALUE.hex(),
        account_hash.hex(), supply_hash.hex(), sha(ACCOUNT_VALUE).hex(), sha(SUPPLY_VALUE).hex(),
        account_bucket.hex(), supply_bucket.hex(), EMPTY[4].hex(), EMPTY[3].hex(), EMPTY[2].hex(), EMPTY[1].hex(),
        level3.hex(), level2.hex(), level1_b.hex(), level1_0.hex(), root.hex(),
        sha(k.account_key(bytes([0x22]) * 32)).hex(),
    }
    shown = set(re.findall(r"`([0-9a-f]{32,})`|^\s+app hash\s+([0-9a-f]{64})$", text, re.M))
    shown_hex = {a or b for a, b in shown}
    assert shown_hex == expected
    assert root == reference_root(RECORDS) == StateTree.build(RECORDS.items()).root
    assert f"bucket 48,175 (`{sha(k.account_key(bytes([0x22]) * 32))[:2].hex()}`)" in text
    assert "45,659 (`b25b`)" in text and "1,082 (`043a`)" in text


def test_the_empty_root_and_the_proofs_of_the_example():
    assert empty_root().hex() in DOC.read_text(encoding="utf-8")
    tree = StateTree.build(RECORDS.items())
    proof = tree.proof(ACCOUNT_KEY)
    assert proof.entries == (sha(ACCOUNT_KEY) + sha(ACCOUNT_VALUE),)
    assert proof.siblings[:3] == ((EMPTY[4],) * 15, (EMPTY[3],) * 15, (EMPTY[2],) * 15)
    assert proof.siblings[3][0] != EMPTY[1] and proof.siblings[3][1:] == (EMPTY[1],) * 14
    verify(tree.root, ACCOUNT_KEY, ACCOUNT_VALUE, proof)
    absent = k.account_key(bytes([0x22]) * 32)
    assert tree.proof(absent).entries == ()
    verify(tree.root, absent, None, tree.proof(absent))
