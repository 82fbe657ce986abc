"""The public pages' answers kept in each worker's memory, each with the organisation's version it was made at.

A crowd reading one fund's page costs one indexed read each (``ledger.reports.public.public_version``: the
organisation's newest entry and its public version), not a page's dozen: the answer made for the first reader is
given again while the version stays the same. Every gift, refund, grant step or transfer posts an entry; every
other change a page shows (the organisation, a fund, an account, a donor edited; a report published) raises the
public version by a trigger. So a kept answer is exact, but for one race: an entry committed after a later one
(PostgreSQL hands ids out before commit) leaves the newest id unchanged; ``MAX_AGE_SECONDS`` bounds how long an
answer can be kept through that. A published report's files never change and are kept without a version.

Kept per application (``app.extensions``), bounded (least recently used out first), thread-safe (gthread
workers). The key is the path, the query and the language, and the day (a chart's twelve months move with it).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from flask import Response, current_app, request

MAX_AGE_SECONDS = 5
MAX_ANSWERS = 512


@dataclass(frozen=True, slots=True)
class Kept:
    version: object
    made_at: float
    body: bytes
    status: int
    headers: tuple[tuple[str, str], ...]
    updated_at: dt.datetime | None


class PublicCache:
    def __init__(self) -> None:
        self.answers: OrderedDict[tuple, Kept] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple, version: object) -> Kept | None:
        with self.lock:
            kept = self.answers.get(key)
            if kept is None:
                return None
            if kept.version != version or (version is not None and
                                           time.monotonic() - kept.made_at > MAX_AGE_SECONDS):
                del self.answers[key]
                return None
            self.answers.move_to_end(key)
            return kept

    def put(self, key: tuple, kept: Kept) -> None:
        with self.lock:
            self.answers[key] = kept
            self.answers.move_to_end(key)
            while len(self.answers) > MAX_ANSWERS:
                self.answers.popitem(last=False)


def _cache() -> PublicCache:
    return current_app.extensions.setdefault("public_cache", PublicCache())


def kept_or_made(version: object, language: str,
                 make: Callable[[], tuple[Response, dt.datetime | None]]) -> tuple[Response, dt.datetime | None]:
    """The answer kept for this request at ``version`` (None: an answer that never changes), else ``make()``'s
    (a response and the moment the books last changed), kept for the next reader. Only 200s are kept."""
    key = (request.path, tuple(sorted(request.args.items(multi=True))), language, dt.datetime.now(dt.UTC).date())
    cache = _cache()
    kept = cache.get(key, version)
    if kept is not None:
        response = current_app.response_class(kept.body, status=kept.status, headers=list(kept.headers))
        return response, kept.updated_at
    response, updated_at = make()
    if response.status_code == 200:
        cache.put(key, Kept(version, time.monotonic(), response.get_data(), response.status_code,
                            tuple(response.headers.items()), updated_at))
    return response, updated_at
