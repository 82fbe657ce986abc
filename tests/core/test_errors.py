"""Every refusal is documented: each domain error says, in its docstring, what it refuses, and has a stable code
of its own that the API's problem documents carry."""

from __future__ import annotations

import inspect

from ledger.core import errors


def _domain_errors() -> list[type[errors.LedgerError]]:
    return [value for value in vars(errors).values()
            if inspect.isclass(value) and issubclass(value, errors.LedgerError)]


def test_every_domain_error_is_documented_and_has_a_code_of_its_own():
    found = _domain_errors()

    assert len(found) >= 20
    for error in found:
        assert error.__dict__.get("__doc__"), f"{error.__name__} says nothing of what it refuses"
    codes = [error.code for error in found]
    assert len(codes) == len(set(codes)), "two errors share a code"
