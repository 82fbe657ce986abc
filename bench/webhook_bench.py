"""Verified Stripe webhook events under load through gunicorn on PostgreSQL, side by side with the API's own
`POST …/donations` in the same run.

    .venv/bin/python bench/webhook_bench.py             # 1,500 donations' events, then as many API gifts
    .venv/bin/python bench/webhook_bench.py --quick     # 150 of each, to check the script itself
    .venv/bin/python bench/webhook_bench.py --modes queue --workers 3   # one way of applying only

Set-up: a fresh database ``fl_webhook_bench``; one foundation with one hot fund; N gifts started on its donation
page (pending); for each, a Checkout Session paid at the Stripe stand-in (``tests/payments/stripe_standin.py``,
served by this process) with Stripe's fee on its balance transaction. gunicorn serves the app as `make run` does
(2 workers of 8 threads) with STRIPE_* pointing at the stand-in.

The webhook run: each donation's two events (checkout.session.completed, payment_intent.succeeded), signed with
stripe-python's helper, all shuffled, posted by CONCURRENCY client threads on keep-alive connections. Each delivery
is verified and stored once, then applied as each mode says (``--modes``, each on a fresh database, side by side in
one run): ``after`` (FUNDLEDGER_STRIPE_APPLY=after: on the web worker once the 200 is sent), ``queue`` (REDIS_URL
set: the web worker only puts a job on Redis; WORKERS `flask worker` processes apply them). Applying asks the
stand-in for the payment's state and records the gift with its fee (the second event of a donation finds it
recorded). Donations/s acknowledged = N over the deliveries' wall time; in the books = N over the time until the
books hold every gift.
The API run: the same number of recorded bank gifts, `POST /api/v1/organisations/<org>/donations`, by a fund
manager's token, same concurrency. Afterwards the books must be exact: N online donations with their fees, the
clearing account holding the nets, `verify` clean.

Target (issue 10): 300 donations/s, acknowledgement p99 ≤ 150 ms, zero errors. Nothing here is a timed test: it
prints a table for the README.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
import redis
import stripe
from sqlalchemy import func, make_url, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.access.memberships import set_membership  # noqa: E402
from ledger.access.tokens import issue_token  # noqa: E402
from ledger.access.users import create_user  # noqa: E402
from ledger.books.balances import balance  # noqa: E402
from ledger.books.charts import load_chart  # noqa: E402
from ledger.books.integrity import verify  # noqa: E402
from ledger.books.organisations import create_fund, create_organisation  # noqa: E402
from ledger.core.chart import Role  # noqa: E402
from ledger.core.registration import unified_social_credit_code  # noqa: E402
from ledger.db.engine import Database  # noqa: E402
from ledger.db.models import OnlineGift  # noqa: E402
from ledger.db.schema import migrate  # noqa: E402
from ledger.payments.gifts import GiftForm, donation_page, start_gift  # noqa: E402
from tests.payments.stripe_standin import StripeStandIn, serve  # noqa: E402

SECRET = "whsec_bench_" + "w" * 24
AMOUNT, FEE = 10_000, 362


def fresh_postgres(server: str, name: str) -> str:
    url = make_url(server)
    with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, dbname="postgres",
                         autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return url.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)


def build(db: Database, count: int) -> tuple[int, int, list[str], str]:
    """The foundation, its hot fund, ``count`` pending gifts (their tokens) and a fund manager's API token."""
    def setup(session):
        organisation = create_organisation(
            session, name="Webhook Bench Foundation", kind="foundation", base_currency="CNY", jurisdiction="CN",
            registration_number=unified_social_credit_code("53510100MJ0123456"))
        fund = create_fund(session, organisation.id, code="HOT", name="hot fund", kind="community", restricted=False)
        user = create_user(session, email=f"bench-{uuid.uuid4().hex[:6]}@example.org", password="bench password 1")
        set_membership(session, organisation.id, user.id, "fund_manager", [fund.id])
        token = issue_token(session, user.id, "bench")[0]
        page = donation_page(session, organisation.id, "HOT")
        tokens = [start_gift(session, page, GiftForm(AMOUNT, f"Donor {n}", f"donor{n}@example.org"), "stripe").token
                  for n in range(count)]
        return organisation.id, fund.id, tokens, token

    return db.write(setup)


def paid_sessions(stand_in: StripeStandIn, tokens: list[str]) -> list[dict]:
    """For each gift, a Checkout Session paid at the stand-in: the two events Stripe would send."""
    events = []
    for token in tokens:
        session = stand_in._create_session({
            "mode": "payment", "submit_type": "donate", "customer_email": "donor@example.org",
            "line_items": {"0": {"quantity": "1", "price_data": {"currency": "cny", "unit_amount": str(AMOUNT),
                                                                 "product_data": {"name": "HOT"}}}},
            "metadata": {"fundledger_gift": token}, "payment_intent_data": {"metadata": {"fundledger_gift": token}},
            "success_url": "http://127.0.0.1/", "cancel_url": "http://127.0.0.1/"})
        stand_in.pay(session["id"], fee=FEE)
        intent = stand_in.intents[session["payment_intent"]]
        events += [stand_in.event("checkout.session.completed", session),
                   stand_in.event("payment_intent.succeeded", intent)]
    return events


def serve_app(url: str, stand_in_url: str, log: Path, mode: str, redis_url: str,
              workers: int) -> tuple[list[subprocess.Popen], int]:
    """gunicorn as `make run` starts it, and in ``queue`` mode ``workers`` `flask worker` processes."""
    port = free_port()
    environment = {**os.environ, "DATABASE_URL": url, "STRIPE_SECRET_KEY": "sk_test_bench",
                   "STRIPE_API_BASE": stand_in_url, "STRIPE_WEBHOOK_SECRET": SECRET,
                   "FUNDLEDGER_RATELIMIT_DEFAULT": "1000000 per minute", "FUNDLEDGER_STRIPE_APPLY": mode}
    if mode == "queue":
        environment["REDIS_URL"] = redis_url
        redis.Redis.from_url(redis_url).flushdb()
    processes = [subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "--workers", "2", "--worker-class", "gthread", "--threads", "8",
         "--bind", f"127.0.0.1:{port}", "--no-control-socket", "wsgi:app"],
        cwd=ROOT, env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT)]
    if mode == "queue":
        processes += [subprocess.Popen([str(ROOT / ".venv/bin/flask"), "--app", "wsgi", "worker"], cwd=ROOT,
                                       env=environment, stdout=log.open("a"), stderr=subprocess.STDOUT)
                      for _ in range(workers)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=2):
                return processes, port
        except OSError:
            time.sleep(0.3)
    for process in processes:
        process.kill()
    raise SystemExit(f"gunicorn did not start: see {log}")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def drive(port: int, requests: list[tuple[str, str, dict]], concurrency: int, expected: int) -> dict:
    """Sends every (path, body, headers) on ``concurrency`` keep-alive connections; latency and status of each."""
    work: queue.Queue = queue.Queue()
    for request in requests:
        work.put(request)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            try:
                path, body, headers = work.get_nowait()
            except queue.Empty:
                connection.close()
                return
            start = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers=headers)
                answer = connection.getresponse()
                answer.read()
                status = answer.status
            except (OSError, http.client.HTTPException) as error:
                status, connection = f"{type(error).__name__}", http.client.HTTPConnection("127.0.0.1", port,
                                                                                           timeout=30)
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                latencies.append(elapsed)
                if status != expected:
                    errors.append(str(status))

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    ordered = sorted(latencies)
    return {"requests": len(latencies), "seconds": seconds, "errors": len(errors), "first_errors": errors[:3],
            "p50": statistics.median(ordered), "p99": ordered[max(0, int(len(ordered) * 0.99) - 1)]}


def webhook_requests(events: list[dict]) -> list[tuple[str, str, dict]]:
    random.shuffle(events)
    requests = []
    for event in events:
        body = json.dumps(event)
        requests.append(("/webhooks/stripe", body, {
            "Stripe-Signature": stripe.WebhookSignature.generate_signature_header(body, SECRET),
            "Content-Type": "application/json"}))
    return requests


def api_requests(organisation_id: int, fund_id: int, token: str, count: int) -> list[tuple[str, str, dict]]:
    return [(f"/api/v1/organisations/{organisation_id}/donations", json.dumps({
        "fund_id": fund_id, "amount_minor": 10_000 + n, "currency": "CNY", "channel": "bank",
        "received_on": time.strftime("%Y-%m-%d")}), {
        "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex})
        for n in range(count)]


def books_exact(db: Database, organisation_id: int, fund_id: int, count: int) -> dict:
    with db.read() as session:
        succeeded = session.scalar(select(func.count()).select_from(OnlineGift).where(
            OnlineGift.organisation_id == organisation_id, OnlineGift.status == "succeeded"))
        fees = session.scalar(select(func.sum(OnlineGift.fee_minor)).where(
            OnlineGift.organisation_id == organisation_id))
        clearing = balance(session, load_chart(session, organisation_id).account(Role.PROCESSOR_CLEARING), fund_id,
                           "CNY")
        problems = verify(session, organisation_id)
    exact = succeeded == count and fees == count * FEE and \
        clearing.debits_minor - clearing.credits_minor == count * (AMOUNT - FEE) and not problems
    return {"succeeded": succeeded, "fees": fees, "problems": len(problems), "exact": exact}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--donations", type=int, default=1_500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pg", default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/"))
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"))
    parser.add_argument("--modes", default="after,queue", help="how events are applied: after, queue (both: in turn)")
    parser.add_argument("--workers", type=int, default=2, help="`flask worker` processes in queue mode")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count = 150 if args.quick else args.donations
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # (the stand-in's request log: not measured)
    rows = [run_mode(args, mode, count) for mode in args.modes.split(",")]
    print(f"\n{count:,} donations, concurrency {args.concurrency}, gunicorn 2 workers × 8 threads, PostgreSQL; "
          f"queue: {args.workers} `flask worker` processes\n")
    print("| applied | what | requests | donations/s acknowledged | donations/s in the books | p50 ms | p99 ms "
          "| errors | books |")
    print("|---|---|---|---|---|---|---|---|---|")
    for mode, hooks, books, applied_seconds, api in rows:
        print(f"| {mode} | webhook: 2 signed events a donation, shuffled | {hooks['requests']:,} | "
              f"{count / hooks['seconds']:,.0f} | {count / applied_seconds:,.0f} | {hooks['p50']:.1f} | "
              f"{hooks['p99']:.1f} | {hooks['errors']} | {'exact' if books['exact'] else 'NOT EXACT ' + str(books)} |")
        print(f"| {mode} | API: POST …/donations (bank gifts) | {api['requests']:,} | {count / api['seconds']:,.0f} | "
              f"{count / api['seconds']:,.0f} | {api['p50']:.1f} | {api['p99']:.1f} | {api['errors']} | — |")
        if hooks["first_errors"] or api["first_errors"]:
            print("first errors:", hooks["first_errors"], api["first_errors"])
    return 0


def run_mode(args, mode: str, count: int) -> tuple:
    url = fresh_postgres(args.pg, f"fl_webhook_bench_{mode}")
    db = Database(url)
    migrate(db.engine)
    organisation_id, fund_id, tokens, api_token = build(db, count)
    stand_in = StripeStandIn()
    stand_in_server = serve(stand_in)
    events = paid_sessions(stand_in, tokens)
    with tempfile.TemporaryDirectory() as folder:
        processes, port = serve_app(url, stand_in.url, Path(folder) / "gunicorn.log", mode, args.redis, args.workers)
        try:
            start = time.perf_counter()
            hooks = drive(port, webhook_requests(events), args.concurrency, 200)
            books = books_exact(db, organisation_id, fund_id, count)
            while not books["exact"] and time.perf_counter() - start < hooks["seconds"] + 120:
                time.sleep(0.2)  # events are applied once acknowledged: wait for the last ones
                books = books_exact(db, organisation_id, fund_id, count)
            applied_seconds = time.perf_counter() - start
            api = drive(port, api_requests(organisation_id, fund_id, api_token, count), args.concurrency, 201)
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
            stand_in_server.shutdown()
    db.dispose()
    return mode, hooks, books, applied_seconds, api


if __name__ == "__main__":
    raise SystemExit(main())
