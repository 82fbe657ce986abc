"""A background thread that seals new entries every few seconds (see ``ledger.books.integrity``).

Each web worker may run one; they don't collide, because sealing takes PostgreSQL's advisory lock (or
SQLite's write lock) and reads the last batch inside that lock.
"""

from __future__ import annotations

import logging
import threading

from ledger.books.integrity import seal_pending
from ledger.db.engine import Database

log = logging.getLogger(__name__)


class SealerThread(threading.Thread):
    def __init__(self, db: Database, interval_seconds: int) -> None:
        super().__init__(name="ledger-sealer", daemon=True)
        self.db = db
        self.interval_seconds = interval_seconds
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval_seconds):
            try:
                seal_pending(self.db)
            except Exception:
                # The sealer must outlive a passing database failure; the next round retries, and
                # `flask ledger verify` reports anything left unsealed for good.
                log.exception("sealing failed; will retry")

    def stop(self) -> None:
        self.stopped.set()
