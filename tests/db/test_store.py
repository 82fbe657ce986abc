"""The posting hot path's own statements: sent through a raw cursor with PostgreSQL's own placeholders, so that psycopg
never parses them again (a statement over 4 KiB, as the one that posts a gift is, would be parsed on every execution:
more than a quarter of a millisecond, measured). The conversion must be exactly psycopg's."""

from __future__ import annotations

import datetime as dt

import pytest
from psycopg._queries import _query2pg_nocache

from ledger.core.recipes import offline_donation
from ledger.db.store import (
    _MOVE_MONTHS,
    _POSTGRES_DAYS,
    _POSTGRES_LOOKUP,
    _POSTGRES_WRITE,
    Batch,
    _balances_sql,
    _checked_single_entry,
    _days_parameters,
    _deltas,
    _months_parameters,
    _positional,
    _postgres_write,
)
from tests.core.test_recipes import CHART, FUND, PARTICULARS, cny


def gift_batch() -> Batch:
    draft = offline_donation(CHART, FUND, cny(100), "bank", PARTICULARS)
    return Batch.of([draft], [draft.digest()], dt.datetime.now(dt.UTC), lambda lookup: None, lambda ids: None,
                    lambda days: None, dict)


@pytest.mark.parametrize("sql", [_checked_single_entry(gift_batch())[0], _checked_single_entry(gift_batch(), False)[0],
                                 _balances_sql(2), _POSTGRES_DAYS, _POSTGRES_WRITE, _POSTGRES_LOOKUP, _MOVE_MONTHS],
                         ids=["one entry", "one entry without balances", "balances apart", "days", "write", "lookup",
                              "months moved"])
def test_each_statement_is_converted_to_positional_placeholders_as_psycopg_itself_would(sql):
    statement, names = _positional(sql)
    expected, _, order, _ = _query2pg_nocache(sql.encode(), "utf-8")

    assert statement == expected
    assert list(names) == order


def test_every_parameter_a_statement_names_is_given_and_none_is_left_over():
    batch = gift_batch()
    for sql, parameters in (_checked_single_entry(batch), _checked_single_entry(batch, False),
                            (_POSTGRES_DAYS, _days_parameters(batch)), _postgres_write(batch),
                            (_MOVE_MONTHS, _months_parameters(batch, {d[:3] for d in _deltas(batch.postings)}))):
        assert set(_positional(sql)[1]) == set(parameters)


def test_a_stray_percent_sign_is_refused_rather_than_sent():
    with pytest.raises(AssertionError, match="placeholder"):
        _positional("SELECT 1 WHERE 'a' LIKE '%'")
