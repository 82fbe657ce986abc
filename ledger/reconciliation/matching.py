"""Statement lines matched to the ledger's entries on the same account: pure (lines and items in, proposals out).

A **line** is the bank's (money in positive); an **item** is one entry's net effect on the account (its postings
debiting the account less those crediting it, over every fund: a transfer between two funds' bank balances nets to
nothing and is no item). Rules, in order:

1. **One to one**: the same amount within ``window`` days. Scored 100, less 10 a day apart, plus 20 when a word of
   the line (its reference or counterparty: a payer's name, a payout's id) is in the entry's description.
2. **One line, several items** (a bank's daily deposit of several gifts; a processor payout to its bank deposit
   when the ledger holds its parts): items of the line's sign within the window summing exactly to it, at most
   ``MAX_PARTS``. **Several lines, one item**: the same the other way.

Automatic matching takes a proposal only when it is the best of both its line's and its items' proposals and no other
proposal ties with it (an ambiguous line waits for a person). Nothing is matched for more than it is: a match's
lines and items sum to the same amount, and each line and item is in one match at most.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

WINDOW_DAYS = 3
MAX_PARTS = 4
MAX_CANDIDATES = 12  # items (or lines) in a window a sum is looked for among
_WORDS = re.compile(r"[\w\u4e00-\u9fff]{2,}")


@dataclass(frozen=True, slots=True)
class Line:
    id: int
    day: dt.date
    amount_minor: int
    text: str


@dataclass(frozen=True, slots=True)
class Item:
    id: int
    day: dt.date
    amount_minor: int
    text: str


@dataclass(frozen=True, slots=True)
class Proposal:
    line_ids: tuple[int, ...]
    item_ids: tuple[int, ...]
    score: int
    rule: str  # one_to_one, one_line_many_items, many_lines_one_item


def _words(text: str) -> set[str]:
    return {word.casefold() for word in _WORDS.findall(text)}


def _score(line: Line, item: Item) -> int:
    shared = _words(line.text) & _words(item.text)
    return 100 - 10 * abs((line.day - item.day).days) + (20 if shared else 0)


def propose(lines: Sequence[Line], items: Sequence[Item], window: int = WINDOW_DAYS) -> list[Proposal]:
    """Every proposal for the unmatched lines and items, best first."""
    by_amount: dict[int, list[Item]] = defaultdict(list)
    for item in items:
        by_amount[item.amount_minor].append(item)
    proposals = []
    paired_lines, paired_items = set(), set()
    for line in lines:
        for item in by_amount.get(line.amount_minor, ()):
            if abs((line.day - item.day).days) <= window:
                proposals.append(Proposal((line.id,), (item.id,), _score(line, item), "one_to_one"))
                paired_lines.add(line.id)
                paired_items.add(item.id)
    loose_lines = [line for line in lines if line.id not in paired_lines]
    loose_items = [item for item in items if item.id not in paired_items]
    proposals += _sums(loose_lines, loose_items, window, one_line=True)
    proposals += _sums(loose_items, loose_lines, window, one_line=False)
    return sorted(proposals, key=lambda proposal: (-proposal.score, proposal.line_ids, proposal.item_ids))


def _sums(singles: Sequence, many: Sequence, window: int, *, one_line: bool) -> list[Proposal]:
    """Each single (a line, or an item) matched by a few of the others of its sign in the window summing to it."""
    by_day = sorted(many, key=lambda other: other.day)
    found = []
    for single in singles:
        near = [other for other in by_day if abs((other.day - single.day).days) <= window
                and (other.amount_minor > 0) == (single.amount_minor > 0)
                and abs(other.amount_minor) < abs(single.amount_minor)][:MAX_CANDIDATES]
        for size in range(2, MAX_PARTS + 1):
            hits = [parts for parts in itertools.combinations(near, size)
                    if sum(part.amount_minor for part in parts) == single.amount_minor]
            if hits:
                for parts in hits:
                    ids = tuple(sorted(part.id for part in parts))
                    score = 80 - 10 * max(abs((part.day - single.day).days) for part in parts) - 5 * size
                    found.append(Proposal((single.id,), ids, score, "one_line_many_items") if one_line
                                 else Proposal(ids, (single.id,), score, "many_lines_one_item"))
                break  # the fewest parts that make the sum
    return found


def automatic(proposals: Iterable[Proposal]) -> list[Proposal]:
    """The proposals to take without asking: each the best for every line and item in it, with no tie, and not
    sharing a line or an item with one taken before."""
    proposals = list(proposals)
    best_of: dict[tuple[str, int], list[int]] = defaultdict(list)
    for proposal in proposals:
        for key in _keys(proposal):
            best_of[key].append(proposal.score)
    taken, used = [], set()
    for proposal in proposals:  # (best first)
        keys = _keys(proposal)
        if used & set(keys):
            continue
        if all(max(best_of[key]) == proposal.score and best_of[key].count(proposal.score) == 1 for key in keys):
            taken.append(proposal)
            used.update(keys)
    return taken


def _keys(proposal: Proposal) -> list[tuple[str, int]]:
    return [("line", line_id) for line_id in proposal.line_ids] + [("item", item_id) for item_id in proposal.item_ids]
