"""The HTTP API under load: recorded bank gifts posted concurrently to gunicorn on PostgreSQL.

    .venv/bin/python bench/api_bench.py                    # every configuration, then the correctness check
    .venv/bin/python bench/api_bench.py --quick            # short phases, to check the script itself
    .venv/bin/python bench/api_bench.py --profile 2000     # also: one request's statements and where its time goes

Target (from the issue): POST /api/v1/organisations/<org>/donations, a bank gift, driven concurrently against
gunicorn over loopback on this 2-core machine, on PostgreSQL: ≥ 500 requests/s sustained, p99 ≤ 100 ms, zero
errors.

Set-up, from a clean state each run: a fresh database ``fl_api_bench`` (dropped if it exists), migrated; one
foundation with one hot fund; 8 fund managers of that fund with 8 tokens each. Every client connection gets its
own share of the 64 tokens and uses them in turn, so each token stays far below the default rate limit ("100
per second; 3000 per minute", kept in Redis db 15, flushed before each run): the limiter is measured as it runs
for real clients, not switched off. Every request carries its own Idempotency-Key and a different amount.

Each gunicorn configuration is started once (sealer off) and driven at each client concurrency: a warm-up,
then a measured phase of fixed length. The client is a closed loop on asyncio with raw keep-alive connections
(gunicorn's sync workers close the connection after each answer; the client then reconnects, and the latency
it records includes that connect). Any answer but 201, a timeout or a broken connection is an error. After
the runs, the database must hold exactly one donation per 201 answered, and the fund's bank balance must be
the sum of their amounts.

Nothing here is a timed test: it prints tables for the README.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
from sqlalchemy import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.access import create_user, issue_token, set_membership  # noqa: E402
from ledger.chart import Role  # noqa: E402
from ledger.database import Database  # noqa: E402
from ledger.organisations import create_fund, create_organisation, load_chart  # noqa: E402
from ledger.registration import unified_social_credit_code  # noqa: E402
from ledger.schema import migrate  # noqa: E402

DATABASE = "fl_api_bench"
REDIS_URL = "redis://127.0.0.1:6379/15"
TARGET = {"rate": 500.0, "p99_ms": 100.0, "errors": 0}
USERS, TOKENS_PER_USER = 8, 8
RECEIVED_ON = "2026-11-20"
BASE_AMOUNT = 10_000  # CNY 100.00, plus 0–96 fen so that the balance check sums distinct amounts
REQUEST_TIMEOUT_S = 10.0


# --- set-up ---------------------------------------------------------------------------------------------------


@dataclass
class World:
    url: str
    organisation_id: int
    fund_ids: list[int]
    bank_account_id: int
    tokens: list[str]


def fresh_postgres(server_url: str, name: str) -> str:
    url = make_url(server_url)
    with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                         dbname="postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return url.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)


def build_world(url: str, funds: int) -> World:
    db = Database(url)
    migrate(db.engine)
    run = uuid.uuid4().hex[:8]

    def setup(session):
        organisation = create_organisation(
            session, name="API Bench Foundation", kind="foundation", base_currency="CNY", jurisdiction="CN",
            registration_number=unified_social_credit_code("53510100MJ0123456"))
        fund_ids = [create_fund(session, organisation.id, code=f"HOT{n}", name=f"hot fund {n}", kind="community",
                                restricted=False).id for n in range(funds)]
        tokens = []
        for number in range(USERS):
            user = create_user(session, email=f"manager{number}-{run}@bench.example.org",
                               password="bench password long enough")
            set_membership(session, organisation.id, user.id, "fund_manager", fund_ids)
            tokens += [issue_token(session, user.id, f"bench-{t}")[0] for t in range(TOKENS_PER_USER)]
        bank = load_chart(session, organisation.id).account(Role.BANK)
        return World(url, organisation.id, fund_ids, bank, tokens)

    try:
        return db.write(setup)
    finally:
        db.dispose()


def flush_limits() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


# --- the server -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerConfig:
    worker_class: str  # sync or gthread
    workers: int
    threads: int = 1

    @classmethod
    def parse(cls, text: str) -> ServerConfig:
        """``sync:3`` or ``gthread:2x4``."""
        kind, _, shape = text.partition(":")
        workers, _, threads = shape.partition("x")
        return cls(kind, int(workers), int(threads or 1))

    @property
    def label(self) -> str:
        return f"{self.worker_class} {self.workers}" + (f"×{self.threads}" if self.worker_class == "gthread" else "")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": url, "REDIS_URL": REDIS_URL, "FUNDLEDGER_SEALER_INTERVAL_SECONDS": "0"}


@contextlib.contextmanager
def gunicorn(config: ServerConfig, url: str, log_folder: str):
    port = free_port()
    command = [str(ROOT / ".venv" / "bin" / "gunicorn"), "--workers", str(config.workers), "--bind",
               f"127.0.0.1:{port}", "--worker-class", config.worker_class, "--log-level", "warning"]
    if config.worker_class == "gthread":
        command += ["--threads", str(config.threads)]
    log_path = Path(log_folder) / f"gunicorn-{config.worker_class}-{config.workers}x{config.threads}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([*command, "wsgi:app"], cwd=ROOT, env=server_env(url), stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        wait_healthy(process, port, log_path)
        yield process, port, log_path
    finally:
        stop(process)


def wait_healthy(process: subprocess.Popen, port: int, log_path: Path, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer /health in {seconds:.0f} s:\n{log_path.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM (gunicorn's graceful shutdown), then SIGKILL if it has not gone in 20 s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- what the machine did during a phase: CPU by process, PostgreSQL's wait events ----------------------------

TICK = os.sysconf("SC_CLK_TCK")
CPU_COLUMNS = ("gunicorn", "postgres", "redis", "client", "others")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


def cpu_by_process(server_pid: int) -> dict[int, tuple[str, float]]:
    """pid → (group, CPU seconds so far): gunicorn's master and workers, the PostgreSQL processes serving
    this bench (its database's backends and the server's own writers), Redis, this client, and others (another
    database's backends, anything else running on the machine)."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                text = stat.read()
            with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        pid, parent, seconds = int(entry.name), int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK
        if pid == os.getpid():
            group = "client"
        elif server_pid in (pid, parent):
            group = "gunicorn"
        elif name.startswith("postgres"):
            backend = command.startswith("postgres:") and (" autovacuum worker " in command or "(" in command)
            group = "postgres" if f" {DATABASE} " in command or not backend else "others"
        elif name.startswith("redis"):
            group = "redis"
        else:
            group = "others"
        found[pid] = (group, seconds)
    return found


class CpuMeter:
    """CPU used during a phase, in % of one core, by group (see cpu_by_process) and by the whole machine."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid

    def __enter__(self) -> CpuMeter:
        self.start, self.machine = cpu_by_process(self.server_pid), machine_ticks()
        self.began = time.perf_counter()
        return self

    def __exit__(self, *_exc) -> None:
        seconds = time.perf_counter() - self.began
        end, machine = cpu_by_process(self.server_pid), machine_ticks()
        used: Counter = Counter()
        for pid, (group, total) in end.items():
            used[group] += total - self.start.get(pid, (group, 0.0))[1]
        busy, ticks = machine[0] - self.machine[0], machine[1] - self.machine[1]
        self.shares = {group: 100 * used[group] / seconds for group in CPU_COLUMNS}
        self.shares["machine"] = 100 * (os.cpu_count() or 1) * busy / ticks if ticks else 0.0


def busy_elsewhere(seconds: float = 1.0) -> float:
    """How busy the machine is while this bench does nothing, in % of one core."""
    before = machine_ticks()
    time.sleep(seconds)
    after = machine_ticks()
    return 100 * (os.cpu_count() or 1) * (after[0] - before[0]) / max(1, after[1] - before[1])


def wait_for_quiet(limit_s: float, threshold: float = 25.0) -> float:
    """The machine is shared: waits (up to limit_s) until others use less than ``threshold``% of one core."""
    deadline = time.monotonic() + limit_s
    busy = busy_elsewhere()
    while busy > threshold and time.monotonic() < deadline:
        print(f"  the machine is busy elsewhere ({busy:.0f}% of a core): waiting", file=sys.stderr, flush=True)
        time.sleep(4)
        busy = busy_elsewhere()
    return busy


class WaitSampler(threading.Thread):
    """Samples what this database's backends are doing, 50 times a second: running (on CPU), waiting for the
    app inside a transaction ("idle in transaction": Python's turn), idle between requests, or waiting on a
    lock (a hot balance row: Lock:transactionid) or on the WAL flush of a COMMIT (IO:WALSync, LWLock:WALWrite)."""

    SQL = """SELECT CASE WHEN state IN ('idle', 'idle in transaction') THEN state
                         ELSE coalesce(wait_event_type || ':' || wait_event, 'running') END
               FROM pg_stat_activity
              WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()"""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.seen, self.samples = url, Counter(), 0
        self.done = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection:
            while not self.done.wait(0.02):
                self.samples += 1
                for (state,) in connection.execute(self.SQL, (DATABASE,)):
                    self.seen[state] += 1

    def __enter__(self) -> WaitSampler:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.done.set()
        self.join()

    def backends(self) -> dict[str, float]:
        """Average number of backends in each state."""
        return {state: count / max(1, self.samples) for state, count in self.seen.most_common()}


# --- the client -----------------------------------------------------------------------------------------------


class Exchange(asyncio.Protocol):
    """One HTTP/1.1 connection: one request at a time, its answer parsed by Content-Length."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future | None = None
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionResetError("the server closed the connection"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in head[1:])}
        length = int(headers.get("content-length", "0"))
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4:end + 4 + length])
        del self.buffer[:end + 4 + length]
        self.waiter.set_result((int(head[0].split(" ", 2)[1]), body, headers.get("connection", "").lower() == "close"))

    def send(self, request: bytes, timeout: float) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        self.waiter = waiter = loop.create_future()
        timer = loop.call_later(timeout, lambda: waiter.done() or waiter.set_exception(TimeoutError("no answer")))
        waiter.add_done_callback(lambda _: timer.cancel())
        self.transport.write(request)
        return waiter


@dataclass
class Phase:
    """What one phase of load recorded."""

    latencies_ms: list[float] = field(default_factory=list)
    created: int = 0
    created_amount: int = 0
    errors: Counter = field(default_factory=Counter)
    first_error: str = ""
    seconds: float = 0.0


class Load:
    """A closed loop: ``concurrency`` connections, each sending its next request when the last is answered."""

    def __init__(self, world: World, port: int) -> None:
        self.world, self.port = world, port
        self.path = f"/api/v1/organisations/{world.organisation_id}/donations"
        self.run = uuid.uuid4().hex[:12]
        self.sequence = 0

    def request(self, token: str) -> tuple[bytes, int]:
        self.sequence += 1
        amount = BASE_AMOUNT + self.sequence % 97
        fund_id = self.world.fund_ids[self.sequence % len(self.world.fund_ids)]
        body = json.dumps({"fund_id": fund_id, "amount_minor": amount, "currency": "CNY",
                           "channel": "bank", "received_on": RECEIVED_ON,
                           "reference": f"bench-{self.sequence}"}).encode()
        head = (f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nAuthorization: Bearer {token}\r\n"
                f"Idempotency-Key: {self.run}-{self.sequence}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        return head.encode() + body, amount

    async def connection(self, tokens: list[str], deadline: float, phase: Phase) -> None:
        loop = asyncio.get_running_loop()
        exchange: Exchange | None = None
        turn = 0
        while time.perf_counter() < deadline:
            request, amount = self.request(tokens[turn % len(tokens)])
            turn += 1
            start = time.perf_counter()
            try:
                if exchange is None or exchange.closed:
                    _, exchange = await loop.create_connection(Exchange, "127.0.0.1", self.port)
                status, body, close = await exchange.send(request, REQUEST_TIMEOUT_S)
            except (OSError, TimeoutError) as error:
                status, body, close = None, str(error).encode(), True
                kind = type(error).__name__
            phase.latencies_ms.append((time.perf_counter() - start) * 1000)
            if status == 201:
                phase.created += 1
                phase.created_amount += amount
            else:
                kind = str(status) if status is not None else kind
                phase.errors[kind] += 1
                phase.first_error = phase.first_error or f"{kind}: {body[:300].decode(errors='replace')}"
            if close and exchange is not None:
                exchange.transport.close()
                exchange = None
        if exchange is not None:
            exchange.transport.close()

    async def _drive(self, concurrency: int, seconds: float) -> Phase:
        phase = Phase()
        tokens = self.world.tokens
        shares = [tokens[slot::concurrency] or [tokens[slot % len(tokens)]] for slot in range(concurrency)]
        start = time.perf_counter()
        await asyncio.gather(*(self.connection(share, start + seconds, phase) for share in shares))
        phase.seconds = time.perf_counter() - start
        return phase

    def drive(self, concurrency: int, seconds: float) -> Phase:
        return asyncio.run(self._drive(concurrency, seconds))


# --- one row of the table -------------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else float("nan")


def measure(config: ServerConfig, world: World, process: subprocess.Popen, port: int, concurrency: int,
            warmup: float, seconds: float) -> tuple[dict, int, int]:
    flush_limits()
    load = Load(world, port)
    warm = load.drive(concurrency, warmup)
    with CpuMeter(process.pid) as meter:
        phase = load.drive(concurrency, seconds)
    requests = len(phase.latencies_ms)
    errors = sum(phase.errors.values())
    row = {"server": config.label, "workers": config.workers, "threads": config.threads,
           "concurrency": concurrency, "requests": requests, "seconds": round(phase.seconds, 2),
           "rate": requests / phase.seconds, "p50_ms": statistics.median(phase.latencies_ms),
           "p99_ms": percentile(phase.latencies_ms, 0.99), "max_ms": max(phase.latencies_ms),
           "errors": errors, "error_kinds": dict(phase.errors), "first_error": phase.first_error,
           "warmup_errors": sum(warm.errors.values()), "cpu": meter.shares}
    row["meets"] = row["rate"] >= TARGET["rate"] and row["p99_ms"] <= TARGET["p99_ms"] and errors == 0
    return row, warm.created + phase.created, warm.created_amount + phase.created_amount


def print_tables(rows: list[dict], duration: float) -> None:
    print(f"\nPOST /donations (bank gift), gunicorn on PostgreSQL over loopback, {duration:.0f} s per row; "
          f"target ≥ {TARGET['rate']:.0f} req/s, p99 ≤ {TARGET['p99_ms']:.0f} ms, 0 errors\n")
    print("| workers / threads | concurrency | requests | throughput | p50 | p99 | errors | target |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        kinds = ", ".join(f"{n}× {kind}" for kind, n in row["error_kinds"].items())
        errors = f"{row['errors']} ({kinds})" if row["errors"] else "0"
        print(f"| {row['server']} | {row['concurrency']} | {row['requests']:,} | {row['rate']:,.0f} req/s "
              f"| {row['p50_ms']:.1f} ms | {row['p99_ms']:.1f} ms | {errors} | {'met' if row['meets'] else 'missed'} |")
    print("\nCPU during the measured phase, % of one core (the machine has "
          f"{os.cpu_count()} cores, {100 * os.cpu_count()}% in all):\n")
    print("| workers / threads | concurrency | gunicorn | PostgreSQL | Redis | client | machine busy | "
          "CPU ms / request |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        cpu = row["cpu"]
        per_request = 10 * cpu["machine"] / row["rate"] if row["rate"] else float("nan")
        print(f"| {row['server']} | {row['concurrency']} | {cpu['gunicorn']:.0f}% | {cpu['postgres']:.0f}% "
              f"| {cpu['redis']:.0f}% | {cpu['client']:.0f}% | {cpu['machine']:.0f}% | {per_request:.2f} |")
    for row in rows:
        if row["first_error"]:
            print(f"\nfirst error at {row['server']}, concurrency {row['concurrency']}: {row['first_error']}")


# --- correctness ----------------------------------------------------------------------------------------------


def check_books(world: World, created: int, amount: int) -> dict:
    """Exactly one donation per 201, each with its entry, answer and audit record; the bank balance is the sum."""
    with psycopg.connect(make_url(world.url).set(drivername="postgresql").render_as_string(
            hide_password=False)) as connection:
        one = lambda sql: connection.execute(sql, {"o": world.organisation_id, "f": world.fund_id,  # noqa: E731
                                                   "a": world.bank_account_id}).fetchone()
        donations, donated = one("SELECT count(*), coalesce(sum(amount_minor), 0) FROM donations "
                                 "WHERE organisation_id = %(o)s AND fund_id = %(f)s")
        entries = one("SELECT count(*) FROM entries WHERE organisation_id = %(o)s")[0]
        answers = one("SELECT count(*) FROM idempotency_records")[0]
        audited = one("SELECT count(*) FROM audit_log WHERE organisation_id = %(o)s")[0]
        bank = one("SELECT coalesce(sum(debits_minor - credits_minor), 0) FROM balances "
                   "WHERE account_id = %(a)s AND fund_id = %(f)s AND currency = 'CNY'")[0]
    found = {"201 answers": created, "donations": donations, "entries": entries, "kept answers": answers,
             "audit records": audited, "sum of amounts sent": amount, "sum of donations": donated,
             "bank balance": bank}
    exact = (donations == entries == answers == audited == created) and (bank == donated == amount)
    return {"exact": exact, **found}


# --- where one request's time goes ----------------------------------------------------------------------------

# (label, module file suffix, function name): cumulative time inside, per request.
COMPONENTS = (
    ("whole request (Flask wsgi_app)", "flask/app.py", "wsgi_app"),
    ("flask-limiter: check limits (Redis)", "flask_limiter/_extension.py", "_check_request_limit"),
    ("flask-limiter: rate-limit headers (Redis)", "flask_limiter/_extension.py", "_Limiter__inject_headers"),
    ("auth: token → user → roles (read session)", "api/auth.py", "_principal_from_request"),
    ("body parsing (webargs + marshmallow load)", "webargs/core.py", "parse"),
    ("perform: the write transaction", "ledger/database.py", "write"),
    ("  kept_answer (idempotency read)", "ledger/idempotency.py", "kept_answer"),
    ("  record_donation", "ledger/donations.py", "record_donation"),
    ("    get_fund", "ledger/organisations.py", "get_fund"),
    ("    load_chart", "ledger/organisations.py", "load_chart"),
    ("    post_entry (checks + one statement)", "ledger/entries.py", "post_entry"),
    ("    Donation insert (flush)", "sqlalchemy/orm/session.py", "flush"),
    ("  _detail + DonationDetailSchema.dump", "api/gifts.py", "_detail"),
    ("  keep_answer (insert)", "ledger/idempotency.py", "keep_answer"),
    ("  audit.record (insert)", "ledger/audit.py", "record"),
    ("  COMMIT", "sqlalchemy/orm/session.py", "commit"),
    ("teardown: close the read session", "api/session.py", "close_session"),
    ("security headers", "api/limits.py", "_security_headers"),
)


class StatementCounter:
    """Counts and times every round trip the app makes: psycopg statements (the ORM's and store.py's raw
    ones), the implicit BEGINs, COMMITs and ROLLBACKs, and Redis commands. Patches classes in this process."""

    def __init__(self) -> None:
        self.calls: Counter = Counter()
        self.seconds: Counter = Counter()
        self._undo: list = []

    def _wrap(self, owner, name: str, label) -> None:
        original = getattr(owner, name)
        counter = self

        def wrapper(this, *args, **kwargs):
            key = label(this, *args, **kwargs)
            start = time.perf_counter()
            try:
                return original(this, *args, **kwargs)
            finally:
                if key:
                    counter.calls[key] += 1
                    counter.seconds[key] += time.perf_counter() - start

        setattr(owner, name, wrapper)
        self._undo.append((owner, name, original))

    def __enter__(self) -> StatementCounter:
        idle = psycopg.pq.TransactionStatus.IDLE

        def statement(cursor, query, *_args, **_kwargs):
            text = query if isinstance(query, str) else getattr(query, "as_string", lambda _c: str(query))(cursor)
            words = " ".join(text.split())
            if cursor.connection.info.transaction_status == idle and not cursor.connection.autocommit:
                self.calls["BEGIN (implicit, psycopg)"] += 1
            return "SQL " + words[:90]

        def ending(kind):
            return lambda connection, *_a, **_k: (
                kind if connection.info.transaction_status != idle else None)

        self._wrap(psycopg.Cursor, "execute", statement)
        self._wrap(psycopg.Connection, "commit", ending("COMMIT"))
        self._wrap(psycopg.Connection, "rollback", ending("ROLLBACK"))
        self._wrap(redis.Redis, "execute_command", lambda _r, *args, **_k: f"Redis {args[0]}")
        return self

    def __exit__(self, *_exc) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)


def profile(world: World, requests: int) -> None:
    """Runs the app in this process (no gunicorn, no HTTP, one request at a time) on the same database and
    Redis, and reports per request: its round trips, its wall time, and where cProfile sees that time go."""
    os.environ.update({k: v for k, v in server_env(world.url).items() if k != "PATH"})
    from api import create_app  # the app reads its configuration when it is created

    app = create_app()
    client = app.test_client()
    load = Load(world, 0)
    tokens = world.tokens

    def call(number: int) -> None:
        raw, _ = load.request(tokens[number % len(tokens)])
        head, _, body = raw.partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
        answer = client.post(load.path, data=body, headers={k: v for k, v in headers.items()
                                                            if k not in ("Host", "Content-Length")})
        if answer.status_code != 201:
            raise RuntimeError(f"{answer.status_code}: {answer.get_data(as_text=True)[:300]}")

    flush_limits()
    for number in range(200):
        call(number)
    flush_limits()

    plain = []
    for number in range(requests):
        start = time.perf_counter()
        call(number)
        plain.append((time.perf_counter() - start) * 1000)
    flush_limits()

    with StatementCounter() as counter:
        for number in range(requests):
            call(number)
    flush_limits()

    profiler = cProfile.Profile()
    profiler.enable()
    for number in range(requests):
        call(number)
    profiler.disable()
    flush_limits()

    print(f"\nOne request at a time, in process (Flask test client, no gunicorn, no HTTP), {requests:,} requests: "
          f"median {statistics.median(plain):.2f} ms, p99 {percentile(plain, 0.99):.2f} ms "
          f"(one worker could serve ≤ {1000 / statistics.median(plain):,.0f} req/s)\n")
    print("Round trips per request (psycopg statements, implicit BEGINs, COMMIT/ROLLBACK, Redis commands):\n")
    print("| round trip | per request | mean ms | ms / request |\n|---|---|---|---|")
    for key, count in sorted(counter.calls.items(), key=lambda item: -counter.seconds[item[0]]):
        seconds = counter.seconds.get(key, 0.0)
        mean = f"{1000 * seconds / count:.3f}" if seconds else "(inside the next statement)"
        print(f"| `{key}` | {count / requests:.2f} | {mean} | {1000 * seconds / requests:.3f} |")
    sql = sum(c for k, c in counter.calls.items() if not k.startswith("Redis")) / requests
    rds = sum(c for k, c in counter.calls.items() if k.startswith("Redis")) / requests
    waited = sum(counter.seconds.values()) * 1000 / requests
    print(f"\nIn all: {sql:.1f} PostgreSQL round trips and {rds:.1f} Redis round trips per request, "
          f"{waited:.2f} ms waiting on them (wall) of a {statistics.median(plain):.2f} ms request.\n")

    stats = pstats.Stats(profiler).stats
    total = next((ct for (path, _, name), (_, _, _, ct, _) in stats.items()
                  if path.endswith("flask/app.py") and name == "wsgi_app"), 0.0)
    print("Where the time goes under cProfile (cumulative, its overhead inflates Python-heavy parts):\n")
    print("| component | ms / request | share |\n|---|---|---|")
    for label, suffix, function in COMPONENTS:
        found = [(nc, ct) for (path, _, name), (_, nc, _, ct, _) in stats.items()
                 if path.endswith(suffix) and name == function]
        if found:
            cumulative = max(ct for _, ct in found)
            print(f"| {label} | {1000 * cumulative / requests:.3f} | {100 * cumulative / total:.0f}% |")
    print("\nTop functions by own time (tottime):\n")
    print("| function | calls / request | own ms / request |\n|---|---|---|")
    ranked = sorted(stats.items(), key=lambda item: -item[1][2])[:25]
    for (path, line, name), (_, nc, tt, _, _) in ranked:
        where = "/".join(Path(path).parts[-2:]) if path != "~" else "builtin"
        print(f"| `{where}:{line} {name}` | {nc / requests:.1f} | {1000 * tt / requests:.3f} |")
    app.extensions["ledger_db"].dispose()


# --- main -----------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/"))
    parser.add_argument("--servers", default="sync:2,sync:3,sync:4,gthread:2x4",
                        help="gunicorn configurations: sync:WORKERS or gthread:WORKERSxTHREADS, comma separated")
    parser.add_argument("--concurrency", default="8,16,32", help="client connections, comma separated")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds measured per row")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up before each row")
    parser.add_argument("--quick", action="store_true", help="2 s phases, to check the script itself")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="after the runs, profile N requests in process (statements, cProfile)")
    parser.add_argument("--profile-only", action="store_true", help="skip the load runs")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup = 2.0, 1.0
    servers = [ServerConfig.parse(text) for text in args.servers.split(",")]
    concurrencies = [int(text) for text in args.concurrency.split(",")]

    url = fresh_postgres(args.pg, DATABASE)
    world = build_world(url)
    print(f"database {DATABASE}: organisation {world.organisation_id}, fund {world.fund_id}, "
          f"{len(world.tokens)} tokens", file=sys.stderr)
    rows: list[dict] = []
    created = amount = 0
    if not args.profile_only:
        with tempfile.TemporaryDirectory() as logs:
            for config in servers:
                with gunicorn(config, url, logs) as (process, port, log_path):
                    for concurrency in concurrencies:
                        print(f"running {config.label}, concurrency {concurrency}", file=sys.stderr, flush=True)
                        row, done, summed = measure(config, world, process, port, concurrency, args.warmup,
                                                    args.duration)
                        rows.append(row)
                        created += done
                        amount += summed
                    if any(row["errors"] for row in rows if row["server"] == config.label):
                        print(f"gunicorn log ({config.label}):\n{log_path.read_text()[-3000:]}", file=sys.stderr)
        books = check_books(world, created, amount)
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / "api_latest.json").write_text(json.dumps({"rows": rows, "books": books}, indent=1, default=str))
        print_tables(rows, args.duration)
        best = max(rows, key=lambda row: (row["meets"], row["errors"] == 0, row["rate"]))
        print(f"\nBest: {best['server']} at concurrency {best['concurrency']}: {best['rate']:,.0f} req/s, "
              f"p99 {best['p99_ms']:.1f} ms, {best['errors']} errors.")
        print("\nBooks after every run (warm-ups included): "
              + ", ".join(f"{name} {value:,}" for name, value in books.items() if name != "exact")
              + (" — exact." if books["exact"] else " — NOT EXACT."))
    if args.profile:
        profile(world, args.profile)
    return 0 if args.profile_only or (rows and books["exact"]) else 1


if __name__ == "__main__":
    sys.exit(main())
