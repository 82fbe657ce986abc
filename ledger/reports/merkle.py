"""The Merkle tree over a published report's gifts, and inclusion proofs a donor can check without the server.

The algorithm (also written out in the README and in ``scripts/verify_inclusion.py``, which repeats it so that it
runs with nothing but Python):

- A gift's **leaf** is SHA-256 over the byte 0x00 and its fields joined by the unit separator 0x1F, UTF-8:
  ``fundledger-gift-v1``, the donation's id, the organisation's id, the fund's id, the donor's id (or
  ``anonymous``), the amount in minor units, the currency, the date received (YYYY-MM-DD). These fields never change
  once a gift is recorded (a refund is a record of its own), so the leaf can be recomputed at any time.
- The leaves are in the order of the period's gifts by date received, then id; the **tree** is RFC 6962's (RFC 9162
  §2.1.1): an interior node is SHA-256 over 0x01, its left child and its right child, and a level with an odd node
  out carries it up unchanged (the same tree as splitting at the largest power of two below the size).
- An **inclusion proof** is the leaf's index, the tree's size and the sibling hashes from the leaf up; it is checked
  as RFC 9162 §2.1.3.2 says. Any change of a field, of the order or of a sibling gives another root.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

LEAF_VERSION = "fundledger-gift-v1"
HASH_SIZE = 32


@dataclass(frozen=True, slots=True)
class GiftLeaf:
    donation_id: int
    organisation_id: int
    fund_id: int
    donor_id: int | None
    amount_minor: int
    currency: str
    received_on: dt.date

    def fields(self) -> list[str]:
        return [LEAF_VERSION, str(self.donation_id), str(self.organisation_id), str(self.fund_id),
                "anonymous" if self.donor_id is None else str(self.donor_id), str(self.amount_minor), self.currency,
                self.received_on.isoformat()]

    def digest(self) -> bytes:
        return leaf_hash(self.fields())


def leaf_hash(fields: Sequence[str]) -> bytes:
    return hashlib.sha256(b"\x00" + "\x1f".join(fields).encode()).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, the leaves first and the root last (an odd node out goes up unchanged)."""
    built = [list(leaves)]
    while len(built[-1]) > 1:
        below = built[-1]
        above = [_node(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
        if len(below) % 2:
            above.append(below[-1])
        built.append(above)
    return built


def root(leaves: Sequence[bytes]) -> bytes:
    """The tree's root; an empty tree's is SHA-256 of nothing (RFC 6962)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    return levels(leaves)[-1][0]


def split_leaves(blob: bytes) -> list[bytes]:
    return [blob[i:i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]


def index_of(blob: bytes, leaf: bytes) -> int | None:
    """Where a leaf sits in the stored leaves (32 bytes each), or None."""
    at = blob.find(leaf)
    while at != -1 and at % HASH_SIZE:
        at = blob.find(leaf, at + 1)
    return None if at == -1 else at // HASH_SIZE


def inclusion_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The sibling hashes from the leaf up (a level where the node has no sibling adds none)."""
    path = []
    for level in levels(leaves)[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        index //= 2
    return path


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], expected_root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: whether ``leaf`` at ``index`` of a tree of ``size`` leaves has ``expected_root``."""
    if not 0 <= index < size:
        return False
    fn, sn, result = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = _node(sibling, result)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = _node(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and result == expected_root
