"""Matches kept: statement lines and the entries they are, on one account of money, and the reconciliation report.

The ledger's side of an account is its **items**: each entry's net effect on the account over every fund (a transfer
between funds' bank balances nets to nothing and is no item); an entry reversed and its reversal cancel and are
left out. A match holds lines and items of equal sums; each line and each entry is in one live match at most
(``statement_lines.match_id``; ``matched_entries``' key), so nothing is matched for more than it is. Unmatching
ends the match (kept, with who and when) and frees its lines and entries, exactly as before it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import bindparam, exists, func, insert, select, union_all, update
from sqlalchemy.orm import Session, aliased

from ledger.books.adjustments import Line as AdjustmentLine
from ledger.books.adjustments import ManualEntry, post_manual_entry
from ledger.books.organisations import get_organisation
from ledger.core.errors import ConcurrentWrite, InvalidInput, InvalidState, NotFound
from ledger.db.models import BankStatement, Entry, MatchedEntry, Posting, ReconciliationMatch, StatementLine
from ledger.db.types import utc_now
from ledger.giving.donations import GiftRecord, record_donation
from ledger.reconciliation.imports import money_account
from ledger.reconciliation.matching import Item, Line, Proposal, automatic, propose


def ledger_items(session: Session, organisation_id: int, account_id: int, *, unmatched: bool = True,
                 end: dt.date | None = None) -> list[Item]:
    """The account's items (see the module's docstring), oldest first: in the books' currency, as its statements are
    (a fund kept in another currency is not reconciled against them)."""
    currency = get_organisation(session, organisation_id).base_currency
    sides = union_all(
        select(Posting.entry_id, Posting.amount_minor.label("amount"))
        .where(Posting.organisation_id == organisation_id, Posting.debit_account_id == account_id,
               Posting.currency == currency),
        select(Posting.entry_id, (-Posting.amount_minor).label("amount"))
        .where(Posting.organisation_id == organisation_id, Posting.credit_account_id == account_id,
               Posting.currency == currency)).subquery()
    reversal = aliased(Entry)
    query = (select(Entry.id, Entry.effective_date, Entry.description, func.sum(sides.c.amount).label("net"))
             .join(sides, sides.c.entry_id == Entry.id)
             .where(Entry.reverses_entry_id.is_(None), ~exists().where(reversal.reverses_entry_id == Entry.id))
             .group_by(Entry.id, Entry.effective_date, Entry.description)
             .having(func.sum(sides.c.amount) != 0).order_by(Entry.effective_date, Entry.id))
    if unmatched:
        query = query.where(~exists().where(MatchedEntry.account_id == account_id, MatchedEntry.entry_id == Entry.id))
    if end is not None:
        query = query.where(Entry.effective_date <= end)
    return [Item(row.id, row.effective_date, int(row.net), row.description) for row in session.execute(query)]


def bank_lines(session: Session, organisation_id: int, account_id: int, *, unmatched: bool = True,
               end: dt.date | None = None) -> list[Line]:
    query = select(StatementLine).where(StatementLine.organisation_id == organisation_id,
                                        StatementLine.account_id == account_id)
    if unmatched:
        query = query.where(StatementLine.match_id.is_(None))
    if end is not None:
        query = query.where(StatementLine.booked_on <= end)
    return [Line(line.id, line.booked_on, line.amount_minor,
                 " ".join(filter(None, (line.reference, line.counterparty, line.description))))
            for line in session.scalars(query.order_by(StatementLine.booked_on, StatementLine.id))]


def suggestions(session: Session, organisation_id: int, account_id: int) -> list[Proposal]:
    money_account(session, organisation_id, account_id)
    return propose(bank_lines(session, organisation_id, account_id), ledger_items(session, organisation_id,
                                                                                   account_id))


@dataclass(frozen=True, slots=True)
class AutoMatched:
    """What automatic matching did: how many matches, by rule, and how many lines and entries they hold."""

    matches: int
    by_rule: dict[str, int]
    lines: int
    entries: int


def auto_match(session: Session, organisation_id: int, account_id: int, matched_by: str) -> AutoMatched:
    """Takes every unambiguous proposal (``ledger.reconciliation.matching.automatic``), written in bulk and in
    chunks: a statement of a hundred thousand lines is matched in a few dozen statements and little memory."""
    money_account(session, organisation_id, account_id)
    lines = bank_lines(session, organisation_id, account_id)
    taken = automatic(propose(lines, ledger_items(session, organisation_id, account_id)))
    amounts = {line.id: line.amount_minor for line in lines}
    del lines
    now = utc_now()
    for start in range(0, len(taken), AUTO_CHUNK):
        _keep_chunk(session, organisation_id, account_id, taken[start:start + AUTO_CHUNK], amounts, now, matched_by)
    by_rule: dict[str, int] = {}
    for proposal in taken:
        by_rule[proposal.rule] = by_rule.get(proposal.rule, 0) + 1
    return AutoMatched(len(taken), by_rule, sum(len(p.line_ids) for p in taken), sum(len(p.item_ids) for p in taken))


AUTO_CHUNK = 5_000


def _keep_chunk(session: Session, organisation_id: int, account_id: int, chunk: list[Proposal], amounts: dict,
                now: dt.datetime, matched_by: str) -> None:
    matches_table, lines_table = ReconciliationMatch.__table__, StatementLine.__table__
    kept = insert(matches_table).returning(matches_table.c.id, sort_by_parameter_order=True)
    ids = session.connection().execute(kept, [{"organisation_id": organisation_id, "account_id": account_id,
                                         "rule": proposal.rule,
                                         "amount_minor": sum(amounts[line_id] for line_id in proposal.line_ids),
                                         "line_ids": json.dumps(sorted(proposal.line_ids)),
                                         "entry_ids": json.dumps(sorted(proposal.item_ids)), "created_at": now,
                                         "created_by": matched_by} for proposal in chunk]).scalars().all()
    session.connection().execute(insert(MatchedEntry.__table__), [
        {"account_id": account_id, "entry_id": entry_id, "match_id": match_id, "organisation_id": organisation_id}
        for match_id, proposal in zip(ids, chunk, strict=True) for entry_id in proposal.item_ids])
    wanted = [{"line": line_id, "match": match_id}
              for match_id, proposal in zip(ids, chunk, strict=True) for line_id in proposal.line_ids]
    session.connection().execute(
        update(lines_table).where(lines_table.c.id == bindparam("line"), lines_table.c.match_id.is_(None))
        .values(match_id=bindparam("match")), wanted)
    linked = session.scalar(select(func.count()).select_from(StatementLine).where(
        StatementLine.match_id.between(min(ids), max(ids)), StatementLine.account_id == account_id,
        StatementLine.match_id.in_(select(ReconciliationMatch.id).where(  # (this call's: their moment is ``now``)
            ReconciliationMatch.id.between(min(ids), max(ids)), ReconciliationMatch.created_at == now))))
    if linked != len(wanted):  # a concurrent match took a line: refuse, and let the caller start again
        raise ConcurrentWrite("a line was matched meanwhile", field="account_id")


def match(session: Session, organisation_id: int, account_id: int, line_ids: list[int], entry_ids: list[int],
          matched_by: str) -> ReconciliationMatch:
    """A person's match: the lines (still unmatched, of the account) and the entries (items of the account, still
    unmatched) must sum alike."""
    money_account(session, organisation_id, account_id)
    if not line_ids or not entry_ids or len(set(line_ids)) != len(line_ids) or len(set(entry_ids)) != len(entry_ids):
        raise InvalidInput("name one line and one entry at least, each once", field="line_ids")
    lines = {line.id: line for line in bank_lines(session, organisation_id, account_id)}
    items = {item.id: item for item in ledger_items(session, organisation_id, account_id)}
    for name, wanted, found in (("line_ids", line_ids, lines), ("entry_ids", entry_ids, items)):
        missing = [value for value in wanted if value not in found]
        if missing:
            raise InvalidState(f"{missing[0]} is not an unmatched {name[:-4]} of account {account_id}", field=name)
    banked = sum(lines[line_id].amount_minor for line_id in line_ids)
    booked = sum(items[entry_id].amount_minor for entry_id in entry_ids)
    if banked != booked:
        raise InvalidInput(f"the lines come to {banked} and the entries to {booked}: a match must be exact",
                           field="entry_ids")
    rule = "manual" if len(line_ids) == len(entry_ids) == 1 else "manual_split"
    return _keep(session, organisation_id, account_id, line_ids, entry_ids, rule, matched_by)


def _keep(session: Session, organisation_id: int, account_id: int, line_ids: list[int], entry_ids: list[int],
          rule: str, matched_by: str) -> ReconciliationMatch:
    amount = session.scalar(select(func.sum(StatementLine.amount_minor)).where(StatementLine.id.in_(line_ids)))
    kept = ReconciliationMatch(organisation_id=organisation_id, account_id=account_id, rule=rule,
                               amount_minor=int(amount), line_ids=json.dumps(sorted(line_ids)),
                               entry_ids=json.dumps(sorted(entry_ids)), created_at=utc_now(), created_by=matched_by)
    session.add(kept)
    session.flush()
    session.add_all(MatchedEntry(account_id=account_id, entry_id=entry_id, match_id=kept.id,
                                 organisation_id=organisation_id) for entry_id in entry_ids)
    for line in session.scalars(select(StatementLine).where(StatementLine.id.in_(line_ids))):
        if line.match_id is not None:  # (read unmatched a moment ago: a concurrent match took it)
            raise InvalidState(f"line {line.id} was matched meanwhile", field="line_ids")
        line.match_id = kept.id
    session.flush()
    return kept


def unmatch(session: Session, organisation_id: int, match_id: int, unmatched_by: str) -> ReconciliationMatch:
    kept = session.get(ReconciliationMatch, match_id)
    if kept is None or kept.organisation_id != organisation_id:
        raise NotFound(f"match {match_id} does not exist", field="match_id")
    if kept.unmatched_at is not None:
        raise InvalidState(f"match {match_id} was undone already", field="match_id")
    for line in session.scalars(select(StatementLine).where(StatementLine.match_id == match_id)):
        line.match_id = None
    for matched in session.scalars(select(MatchedEntry).where(MatchedEntry.match_id == match_id)):
        session.delete(matched)
    kept.unmatched_at, kept.unmatched_by = utc_now(), unmatched_by
    session.flush()
    return kept


@dataclass(frozen=True, slots=True)
class Report:
    """An account's reconciliation through ``end``: the bank's balance (the latest statement's closing balance
    through then, if one states it), the books' (every item through then), the lines and items left unmatched on each
    side, and what of the difference they do not explain (nothing, when the account reconciles)."""

    account_id: int
    start: dt.date
    end: dt.date
    bank_closing_minor: int | None
    books_closing_minor: int
    matched_lines: int
    matched_minor: int
    unmatched_lines: list[Line]
    unmatched_items: list[Item]
    unexplained_minor: int | None

    @property
    def reconciled(self) -> bool:
        return self.unexplained_minor == 0


def report(session: Session, organisation_id: int, account_id: int, start: dt.date, end: dt.date) -> Report:
    """The bank reconciliation's identity: the bank's closing balance, less what only the bank has, plus what only
    the books have, is the books' balance (the statements are taken to start where the books did)."""
    money_account(session, organisation_id, account_id)
    books = sum(item.amount_minor for item in ledger_items(session, organisation_id, account_id, unmatched=False,
                                                             end=end))
    stated = session.scalars(select(BankStatement.closing_minor).where(
        BankStatement.account_id == account_id, BankStatement.closing_minor.is_not(None),
        BankStatement.period_end <= end).order_by(BankStatement.period_end.desc(), BankStatement.id.desc())
        .limit(1)).first()
    lines = bank_lines(session, organisation_id, account_id, end=end)
    items = ledger_items(session, organisation_id, account_id, end=end)
    matched = session.execute(select(func.count(), func.coalesce(func.sum(StatementLine.amount_minor), 0)).where(
        StatementLine.account_id == account_id, StatementLine.match_id.is_not(None),
        StatementLine.booked_on >= start, StatementLine.booked_on <= end)).one()
    unexplained = None if stated is None else \
        (stated - books) - (sum(line.amount_minor for line in lines) - sum(item.amount_minor for item in items))
    return Report(account_id, start, end, stated, books, int(matched[0]), int(matched[1]),
                  [line for line in lines if line.day >= start], [item for item in items if item.day >= start],
                  unexplained)



REPORT_COLUMNS = ["section", "item", "id", "day", "amount_minor", "text"]


def report_rows(found: Report) -> list[dict]:
    """The report as one table's rows (the API's CSV and the manager's): its summary, then each side's items."""
    summary = [("bank_closing_minor", found.bank_closing_minor), ("books_closing_minor", found.books_closing_minor),
               ("matched_lines", found.matched_lines), ("matched_minor", found.matched_minor),
               ("unexplained_minor", found.unexplained_minor), ("reconciled", found.reconciled)]
    rows = [{"section": "summary", "item": name, "amount_minor": "" if value is None else value}
            for name, value in summary]
    rows += [{"section": "bank_only", "item": "line", "id": line.id, "day": line.day, "amount_minor": line.amount_minor,
              "text": line.text} for line in found.unmatched_lines]
    rows += [{"section": "books_only", "item": "entry", "id": item.id, "day": item.day,
              "amount_minor": item.amount_minor, "text": item.text} for item in found.unmatched_items]
    return rows


@dataclass(frozen=True, slots=True)
class FromLine:
    """What a line the books lack is: a ``gift`` (money in, recorded as a bank gift to ``fund_id``, from
    ``donor_id`` if known) or an ``entry`` against ``account_id`` (a bank fee to an expense account, interest to a
    revenue account), in ``fund_id``."""

    kind: str
    fund_id: int
    account_id: int | None = None
    donor_id: int | None = None
    description: str = ""


def entry_from_line(session: Session, organisation_id: int, line_id: int, made: FromLine,
                    recorded_by: str) -> ReconciliationMatch:
    """Records what the line is, through the ledger's own recipes (a gift through the gifts' record, anything else
    as a manual entry, with every rule of each), dated the day the bank booked it, and matches the line to it. The
    entry's key is the line's: asked twice, the line gets one entry."""
    line = session.get(StatementLine, line_id)
    if line is None or line.organisation_id != organisation_id:
        raise NotFound(f"statement line {line_id} does not exist", field="line_id")
    if line.match_id is not None:
        raise InvalidState(f"line {line_id} is matched already", field="line_id")
    key = f"statement-line-{line.id}"
    text = made.description.strip() or " ".join(filter(None, (line.description, line.counterparty,
                                                               line.reference)))[:500] or "bank statement line"
    if made.kind == "gift":
        if line.amount_minor < 0:
            raise InvalidInput("a gift is money in: this line is money out", field="kind")
        entry_id = record_donation(session, organisation_id, GiftRecord(
            made.fund_id, line.amount_minor, line.currency, "bank", line.booked_on, made.donor_id,
            reference=(line.bank_id or line.reference)[:200], description=text, account_id=line.account_id),
            idempotency_key=key, recorded_by=recorded_by).entry_id
    elif made.kind == "entry":
        if made.account_id is None:
            raise InvalidInput("is required for an entry", field="account_id")
        money_in = line.amount_minor > 0
        sides = [(line.account_id, "debit" if money_in else "credit"), (made.account_id, "credit" if money_in
                                                                          else "debit")]
        entry_id = post_manual_entry(session, organisation_id, ManualEntry(line.booked_on, text, [
            AdjustmentLine(account_id, made.fund_id, side, abs(line.amount_minor), line.currency)
            for account_id, side in sides]), idempotency_key=key, recorded_by=recorded_by).id
    else:
        raise InvalidInput("must be gift or entry", field="kind")
    return _keep(session, organisation_id, line.account_id, [line.id], [entry_id], "created", recorded_by)
