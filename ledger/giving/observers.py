"""Who hears of a gift's records, in the transaction that writes them.

Receipts (``receipts``, which the ledger never imports) subscribe here when the application starts: a gift
recorded is receipted, a refund voids or replaces its receipt, a refund cancelled gives the gift its receipt back,
each in the same transaction as the record, so the books and the register never disagree. A listener's refusal
refuses the write. The listeners are the database's (``Database.observers``, reached through the session), not
the process's: a bare database, as the ledger's own tests make, tells no one.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from ledger.db.engine import OBSERVERS as SESSION_KEY
from ledger.db.engine import Database

DONATION_RECORDED = "donation_recorded"  # (session, donation): a gift just recorded (not a replay)
REFUND_RECORDED = "refund_recorded"  # (session, refund): a refund just recorded
REFUND_CANCELLED = "refund_cancelled"  # (session, refund): a refund just cancelled


def notify(session: Session, event: str, *arguments) -> None:
    for listener in session.info.get(SESSION_KEY, {}).get(event, ()):
        listener(session, *arguments)


def listen(database: Database, event: str, listener: Callable) -> None:
    """Subscribes a listener to an event of this database's records (once, however often it is asked)."""
    listeners = database.observers.setdefault(event, [])
    if listener not in listeners:
        listeners.append(listener)
