"""The posting hot path's own limits: the one statement that posts a gift must stay small enough for psycopg to
cache its parsing and prepare it, or every gift pays a parse (a third of the single-entry throughput, measured)."""

from __future__ import annotations

import datetime as dt

from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH, MAX_CACHED_STATEMENT_PARAMS

from ledger.core.recipes import offline_donation
from ledger.db.store import (
    _POSTGRES_DAYS,
    Batch,
    _checked_single_entry_sql,
    _days_parameters,
    _single_entry_parameters,
)
from tests.core.test_recipes import CHART, FUND, PARTICULARS, cny


def test_the_statement_that_posts_a_gift_is_one_psycopg_caches_and_prepares():
    draft = offline_donation(CHART, FUND, cny(100), "bank", PARTICULARS)
    batch = Batch.of([draft], [draft.digest()], dt.datetime.now(dt.UTC), lambda lookup: None, lambda ids: None,
                     lambda days: None, dict)
    parameters, delta_count = _single_entry_parameters(batch.entries[0], batch.postings)

    assert (len(batch.postings), delta_count) == (1, 2)
    assert len(_checked_single_entry_sql(1, 2).encode()) <= MAX_CACHED_STATEMENT_LENGTH
    assert len(parameters) + 4 <= MAX_CACHED_STATEMENT_PARAMS  # and the lookup's four: ids, counts
    # The statement that then writes the entry's days (pipelined with it) is cached too.
    assert len(_POSTGRES_DAYS.encode()) <= MAX_CACHED_STATEMENT_LENGTH
    assert len(_days_parameters(batch)) <= MAX_CACHED_STATEMENT_PARAMS
