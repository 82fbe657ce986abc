"""Inbound events from payment processors, whatever the channel: stored once, by the processor's own id.

A processor delivers each event at least once, sometimes twice or more, and in no particular order. The first
delivery stores the event in the transaction whose commit acknowledges it; a later one finds it stored and changes
nothing. What an event does to the books is applied from the stored row, never from the request.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.core.vocabulary import EventStatus
from ledger.db.engine import insert_unless_taken
from ledger.db.models import ProcessorEvent
from ledger.db.types import utc_now

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ArrivedEvent:
    """An event as a channel verified it: who sent it (``channel``), its id and type there, whether it concerns
    real money (``livemode``), when it happened, and the body exactly as it was signed."""

    channel: str
    event_id: str
    event_type: str
    livemode: bool
    created_at: dt.datetime
    payload: str


def store_event(session: Session, event: ArrivedEvent, handled: frozenset[str]) -> tuple[ProcessorEvent, bool]:
    """The stored event, and whether this delivery stored it (False: an earlier one did). A type the channel
    does not act on (not in ``handled``) is stored as ignored, and logged."""
    status = EventStatus.RECEIVED if event.event_type in handled else EventStatus.IGNORED
    stored = insert_unless_taken(session, ProcessorEvent, {
        "channel": event.channel, "event_id": event.event_id, "event_type": event.event_type,
        "livemode": event.livemode, "created_at": event.created_at, "received_at": utc_now(),
        "payload": event.payload, "status": status}, ("channel", "event_id"))
    if stored is None:
        return session.scalars(select(ProcessorEvent).where(ProcessorEvent.channel == event.channel,
                                                            ProcessorEvent.event_id == event.event_id)).one(), False
    if status == EventStatus.IGNORED:
        log.info("%s event %s of type %s acknowledged and ignored: the ledger does not act on it",
                 event.channel, event.event_id, event.event_type)
    return stored, True
