"""The public answers' cache: an answer is given again only at its version or to a reader who read an older one,
never past its age when it has a version; a report's files (no version) are kept for good."""

from __future__ import annotations

import time

from api.edge import public_cache
from api.edge.public_cache import Kept, PublicCache


def kept(version, made_at=None) -> Kept:
    return Kept(version, time.monotonic() if made_at is None else made_at, b"body", 200, (), None)


def test_an_answer_holds_for_its_version_and_for_readers_of_an_older_one_only():
    cache = PublicCache()
    cache.put(("page",), kept((10, 3)))

    assert cache.get(("page",), (10, 3)) is not None
    assert cache.get(("page",), (9, 3)) is not None  # a reader who read before the newest entry: newer is fine
    assert cache.get(("page",), (None, 3)) is not None
    assert cache.get(("page",), (10, 4)) is None  # something changed since it was made
    assert cache.get(("page",), (10, 3)) is None  # (and it was dropped)


def test_an_answer_with_a_version_ages_out_and_one_without_does_not(monkeypatch):
    cache = PublicCache()
    old = time.monotonic() - public_cache.MAX_AGE_SECONDS - 1
    cache.put(("page",), kept((1, 1), made_at=old))
    cache.put(("report",), kept(None, made_at=old))

    assert cache.get(("page",), (1, 1)) is None
    assert cache.get(("report",), None) is not None


def test_the_least_recently_used_answer_goes_first(monkeypatch):
    monkeypatch.setattr(public_cache, "MAX_ANSWERS", 2)
    cache = PublicCache()
    cache.put(("a",), kept((1, 1)))
    cache.put(("b",), kept((1, 1)))
    cache.get(("a",), (1, 1))
    cache.put(("c",), kept((1, 1)))

    assert cache.get(("b",), (1, 1)) is None and cache.get(("a",), (1, 1)) is not None
