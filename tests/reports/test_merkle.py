"""The published reports' Merkle tree: RFC 6962's (the same root as the sealer's, built another way), every leaf's
proof verifies, and any altered amount, donor, order or sibling fails — in the ledger's code and in the standalone
script alike."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.books.integrity import merkle_root as sealer_root
from ledger.reports.merkle import GiftLeaf, inclusion_path, index_of, root, verify_inclusion

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "verify_inclusion.py"


def standalone():
    spec = importlib.util.spec_from_file_location("verify_inclusion", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gifts(count: int) -> list[GiftLeaf]:
    return [GiftLeaf(1000 + n, 7, 3 + n % 2, None if n % 5 == 0 else 40 + n % 7, 100 * (n + 1), "CNY",
                     dt.date(2026, 1, 1) + dt.timedelta(days=n)) for n in range(count)]


@pytest.mark.parametrize("size", [*range(1, 18), 31, 32, 33, 100])
def test_every_gifts_proof_verifies_and_the_root_is_rfc_6962s(size):
    leaves = [gift.digest() for gift in gifts(size)]
    top = root(leaves)
    script = standalone()

    assert top == sealer_root(leaves)  # the sealer splits at powers of two; this tree carries odd nodes up
    for index, leaf in enumerate(leaves):
        path = inclusion_path(leaves, index)
        assert verify_inclusion(leaf, index, size, path, top)
        assert script.root_from_path(leaf, index, size, path) == top
        if size > 1:
            assert not verify_inclusion(leaf, (index + 1) % size, size, path, top)  # another place
        # (a path alone does not always fix the tree's size: the proof is held to the size the report publishes)
        assert not verify_inclusion(leaf, index, 0, path, top) and not verify_inclusion(leaf, size, size, path, top)


@given(st.integers(min_value=2, max_value=60), st.data())
def test_an_altered_amount_donor_or_order_never_verifies(size, data):
    originals = gifts(size)
    leaves = [gift.digest() for gift in originals]
    top = root(leaves)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    gift = originals[index]
    path = inclusion_path(leaves, index)
    altered = [
        GiftLeaf(gift.donation_id, gift.organisation_id, gift.fund_id, gift.donor_id, gift.amount_minor + 1,
                 gift.currency, gift.received_on),
        GiftLeaf(gift.donation_id, gift.organisation_id, gift.fund_id, (gift.donor_id or 0) + 1, gift.amount_minor,
                 gift.currency, gift.received_on),
        GiftLeaf(gift.donation_id, gift.organisation_id, gift.fund_id, gift.donor_id, gift.amount_minor, "USD",
                 gift.received_on),
    ]
    for changed in altered:
        assert not verify_inclusion(changed.digest(), index, size, path, top)
    swapped = list(leaves)
    other = (index + 1) % size
    swapped[index], swapped[other] = swapped[other], swapped[index]
    assert root(swapped) != top  # the order is part of what is published
    if path:
        bent = [bytes(32), *path[1:]]
        assert not verify_inclusion(leaves[index], index, size, bent, top)


def test_a_leaf_is_found_only_where_a_whole_leaf_starts():
    leaves = [gift.digest() for gift in gifts(9)]
    blob = b"".join(leaves)

    assert [index_of(blob, leaf) for leaf in leaves] == list(range(9))
    assert index_of(blob, blob[5:37]) is None  # bytes that straddle two leaves are no leaf
    assert index_of(blob, GiftLeaf(1, 1, 1, None, 1, "CNY", dt.date(2026, 1, 1)).digest()) is None
