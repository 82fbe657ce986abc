"""Properties of the matches kept in the database, over random sequences of matching and unmatching by hand on both
engines: no line is matched for more than its amount (a live match's lines and entries sum alike, each line and
entry in one live match at most), a refused match changes nothing, an unmatch restores exactly the state before its
match, and importing the statement again changes nothing."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from ledger.core.errors import LedgerError
from ledger.db.models import MatchedEntry, ReconciliationMatch, StatementLine
from ledger.reconciliation import matches
from tests.reconciliation.test_imports import account, upload
from tests.reconciliation.test_matching import gift

AMOUNTS = st.sampled_from([1_000, 2_500, 4_000])
STEPS = st.lists(st.tuples(st.sampled_from(["match", "unmatch"]), st.sets(st.integers(0, 3), min_size=1, max_size=2),
                           st.sets(st.integers(0, 3), min_size=1, max_size=2)), min_size=1, max_size=6)


def state(world, bank: int, line_ids: list[int]) -> tuple:
    """Which live match holds each line, and the entries matched on the account."""
    with world.db.read() as session:
        held = {row.id: row.match_id for row in session.execute(
            select(StatementLine.id, StatementLine.match_id).where(StatementLine.id.in_(line_ids)))}
        entries = {row.entry_id: row.match_id for row in session.execute(
            select(MatchedEntry.entry_id, MatchedEntry.match_id).where(MatchedEntry.account_id == bank))}
    return held, entries


def check_within_amounts(world, bank: int) -> None:
    with world.db.read() as session:
        for kept in session.scalars(select(ReconciliationMatch).where(ReconciliationMatch.account_id == bank,
                                                                      ReconciliationMatch.unmatched_at.is_(None))):
            banked = session.scalar(select(func.sum(StatementLine.amount_minor))
                                    .where(StatementLine.match_id == kept.id))
            entries = session.scalars(select(MatchedEntry.entry_id).where(MatchedEntry.match_id == kept.id)).all()
            assert banked == kept.amount_minor and entries, kept.id


def statement_of(amounts: list[int]) -> bytes:
    marker = uuid.uuid4().hex[:10]
    rows = [f"2026-10-0{day + 1},{amount / 100:.2f},gift {marker},payer,{marker}-{day}"
            for day, amount in enumerate(amounts)]
    return ("date,amount,reference,counterparty,id\n" + "\n".join(rows) + "\n").encode()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(AMOUNTS, min_size=4, max_size=4), entries=st.lists(AMOUNTS, min_size=4, max_size=4),
       steps=STEPS)
def test_matching_and_unmatching_by_hand_keep_every_line_within_its_amount(world, lines, entries, steps):
    bank = account(world, "1002")
    entry_ids = [gift(world, amount, f"2026-10-0{day + 1}") for day, amount in enumerate(entries)]
    content = statement_of(lines)
    assert upload(world, "org_admin", content, "s.csv", account_id=bank, format="csv",
                  mapping="generic").status_code == 201
    with world.db.read() as session:
        line_ids = list(session.scalars(select(StatementLine.id).where(StatementLine.account_id == bank)
                                        .order_by(StatementLine.id.desc()).limit(4)))[::-1]
    kept: list[tuple[int, tuple]] = []  # each live match of this run, with the state before it

    for action, line_picks, entry_picks in steps:
        before = state(world, bank, line_ids)
        try:
            if action == "match":
                picked = ([line_ids[i] for i in sorted(line_picks)], [entry_ids[i] for i in sorted(entry_picks)])
                made = world.db.write(lambda session, picked=picked: matches.match(
                    session, world.org, bank, *picked, "property"))
                kept.append((made.id, before))
            elif kept:
                match_id, earlier = kept.pop()
                world.db.write(lambda session, match_id=match_id: matches.unmatch(session, world.org, match_id,
                                                                                   "property"))
                assert state(world, bank, line_ids) == earlier  # exactly as before the match
        except LedgerError:
            assert state(world, bank, line_ids) == before  # refused: nothing changed
        check_within_amounts(world, bank)

    settled = state(world, bank, line_ids)
    again = upload(world, "org_admin", content, "s.csv", account_id=bank, format="csv", mapping="generic")
    assert again.status_code == 201 and again.json["new_line_count"] == 0
    assert state(world, bank, line_ids) == settled
