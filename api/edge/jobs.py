"""Work done after a request's answer: a stored Stripe event applied to the books, then the emails it made owed
(the donor's confirmation, their receipt); the receipts' emails after any write that issued receipts.

Where it runs is ``STRIPE_APPLY``: ``queue`` (the default when ``REDIS_URL`` is set) puts a job on an RQ queue in
Redis for ``flask worker`` to run, so the acknowledgement costs one insert and one Redis call and a burst of events
is applied at the workers' pace; ``after`` (the default without Redis) runs it on the web worker once the answer is
sent; ``inline`` runs it before answering (the answer then says what became of the event). A job that fails is kept
as failed on the event's row, for the event's next delivery or ``flask stripe replay``; RQ also retries it.
"""

from __future__ import annotations

import functools
import logging

import redis
from flask import Flask, after_this_request, current_app, has_app_context
from rq import Queue, Retry
from rq.worker import SimpleWorker
from werkzeug.exceptions import ServiceUnavailable

from api.edge.channels import stripe_account
from api.edge.mail import send_owed_confirmations
from api.edge.receipt_mail import send_due_receipts
from ledger.core.vocabulary import EventStatus
from ledger.payments.stripe_channel import apply_stored

log = logging.getLogger(__name__)
QUEUE = "fundledger-events"
MODES = ("queue", "after", "inline")


def apply_mode(app: Flask) -> str:
    mode = app.config.get("STRIPE_APPLY") or ("queue" if app.config.get("REDIS_URL") else "after")
    if mode not in MODES:
        raise ValueError(f"STRIPE_APPLY must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def handle_stored_event(event_row_id: int, status: str) -> str:
    """Applies a stored event as ``STRIPE_APPLY`` says; the status to answer with."""
    app = current_app._get_current_object()
    mode = apply_mode(app)
    if mode == "inline":
        return apply_and_confirm(app, event_row_id)
    if mode == "queue":
        try:
            _queue(app.config["REDIS_URL"]).enqueue(
                apply_event_job, event_row_id, retry=Retry(max=3, interval=[5, 30, 120]), job_timeout=120,
                result_ttl=600, failure_ttl=7 * 24 * 3600)
        except redis.RedisError as error:
            # The event is stored (its own commit), not yet queued: a 503 has Stripe deliver it again, and a delivery
            # of an event still ``received`` is queued again (api.webhooks.stripe).
            app.logger.warning("the event queue (Redis) cannot be reached: %s", error)
            raise ServiceUnavailable("the event is stored but the queue that applies it (Redis) cannot be reached; "
                                     "deliver it again later") from error
    else:
        after_the_answer(lambda: apply_and_confirm(app, event_row_id))
    return status


def after_the_answer(work) -> None:
    """Runs ``work`` once the server has sent this request's answer (the WSGI response's close), on this thread,
    in an app context of its own (the request's is gone by then)."""
    app = current_app._get_current_object()

    def in_context():
        with app.app_context():
            work()

    @after_this_request
    def later(response):
        response.call_on_close(in_context)
        return response


def apply_and_confirm(app: Flask, event_row_id: int) -> str:
    """Applies the stored event, then sends the emails it made owed (confirmation, receipt). In an app context."""
    account = stripe_account()
    status = apply_stored(app.extensions["ledger_db"], account, event_row_id) if account else "received"
    send_owed_mail(app)
    return status


def send_owed_mail(app: Flask) -> None:
    """The donors' emails owed: gifts' confirmations, then receipts."""
    send_owed_confirmations(app)
    send_due_receipts(app)


def mail_later() -> None:
    """After a write that issued receipts: their emails, by a worker (queue) or once the answer is sent."""
    app = current_app._get_current_object()
    if not app.config.get("SMTP_HOST"):
        return
    if apply_mode(app) == "queue":
        _queue(app.config["REDIS_URL"]).enqueue(mail_job, job_timeout=300, result_ttl=600)
    else:
        after_the_answer(lambda: send_owed_mail(app))


def mail_job() -> None:
    """The queued sending of emails owed, run by ``flask worker``."""
    if not has_app_context():
        raise RuntimeError("FundLedger's jobs run in `flask worker`, which gives them the app")
    send_owed_mail(current_app._get_current_object())


def apply_event_job(event_row_id: int) -> str:
    """The queued job, run by ``flask worker`` (``work``), in the app's context."""
    if not has_app_context():
        raise RuntimeError("FundLedger's jobs run in `flask worker`, which gives them the app")
    status = apply_and_confirm(current_app._get_current_object(), event_row_id)
    if status == EventStatus.FAILED:  # (kept as failed on its row; raising makes RQ try again after a pause)
        raise RuntimeError(f"stored event {event_row_id} could not be applied: see the log")
    return status


@functools.cache
def _connection(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def _queue(url: str) -> Queue:
    return Queue(QUEUE, connection=_connection(url))


def work(app: Flask, *, burst: bool = False) -> None:
    """Runs the queue's jobs in this process (no fork per job: the app, its database pool and its Stripe client
    stay warm), until stopped (or, with ``burst``, until the queue is empty)."""
    url = app.config.get("REDIS_URL")
    if not url:
        raise RuntimeError("REDIS_URL is not set: without Redis, events are applied by the web workers")
    with app.app_context():
        SimpleWorker([_queue(url)], connection=_connection(url)).work(burst=burst, logging_level="WARNING")
