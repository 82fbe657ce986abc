"""The public pages' answers kept in each worker's memory, each with the organisation's version it was made at.

A crowd reading one fund's page costs one indexed read each (``ledger.reports.public.public_version``: the
organisation's newest entry and its public version), not a page's dozen: the answer made for the first reader is
given again while the version stays the same. Every gift, refund, grant step or transfer posts an entry; every
other change a page shows (the organisation, a fund, an account, a donor edited; a report published) raises the
public version by a trigger. So a kept answer is exact, but for one race: an entry committed after a later one
(PostgreSQL hands ids out before commit) leaves the newest id unchanged; ``MAX_AGE_SECONDS`` bounds how long an
answer can be kept through that. A published report's files never change and are kept without a version.

``FUNDLEDGER_PUBLIC_CACHE=0`` makes every answer afresh (the benchmark compares both). Kept per application
(``app.extensions``), bounded (least recently used out first), thread-safe (gthread
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


def _as_new(kept: object, asked: object) -> bool:
    """Whether an answer kept at one version holds for a reader who read another: the same, or a later one (each
    part of a version only grows; a reader may be given what is newer than what it read, never older)."""
    if kept is None or asked is None:
        return kept is asked
    return all((made if made is not None else -1) >= (read if read is not None else -1)
               for made, read in zip(kept, asked, strict=True))


class PublicCache:
    def __init__(self) -> None:
        self.answers: OrderedDict[tuple, Kept] = OrderedDict()
        self.lock = threading.Lock()
        self.making: dict[tuple, threading.Lock] = {}

    def get(self, key: tuple, version: object) -> Kept | None:
        with self.lock:
            kept = self.answers.get(key)
            if kept is None:
                return None
            if not _as_new(kept.version, version) or (version is not None and
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
                dropped, _ = self.answers.popitem(last=False)
                self.making.pop(dropped, None)

    def maker(self, key: tuple) -> threading.Lock:
        """The lock whose holder makes the answer for ``key``: when a change makes every reader of a page miss at
        once, one thread of the worker makes it and the others wait for it, instead of all making it at once."""
        with self.lock:
            return self.making.setdefault(key, threading.Lock())


def _cache() -> PublicCache:
    return current_app.extensions.setdefault("public_cache", PublicCache())


def kept_or_made(version: object, language: str,
                 make: Callable[[], tuple[Response, dt.datetime | None]]) -> tuple[Response, dt.datetime | None]:
    """The answer kept for this request at ``version`` (None: an answer that never changes), else ``make()``'s
    (a response and the moment the books last changed), kept for the next reader. Only 200s are kept."""
    if not current_app.config["PUBLIC_CACHE"]:
        return make()
    key = (request.path, tuple(sorted(request.args.items(multi=True))), language, dt.datetime.now(dt.UTC).date())
    cache = _cache()
    kept = cache.get(key, version)
    if kept is None:
        with cache.maker(key):
            kept = cache.get(key, version)  # (made meanwhile by the thread this one waited for)
            if kept is None:
                response, updated_at = make()
                if response.status_code != 200:
                    return response, updated_at
                kept = Kept(version, time.monotonic(), response.get_data(), response.status_code,
                            tuple(response.headers.items()), updated_at)
                cache.put(key, kept)
    return current_app.response_class(kept.body, status=kept.status, headers=list(kept.headers)), kept.updated_at
