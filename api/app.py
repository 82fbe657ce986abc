"""The application factory.

Configuration is layered as in Flask's tutorial: defaults here, then the environment (``DATABASE_URL``,
``FUNDLEDGER_*``), then the mapping a test passes. Nothing is read at import time.
"""

from __future__ import annotations

import contextlib
import http
import os
import secrets
from pathlib import Path

from flask import Flask
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from flask_swagger_ui import get_swaggerui_blueprint
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

import receipts
from api import cli, pages
from api.edge import errors, limits, refusals
from api.edge.session import close_session
from api.rest import (
    gifts,
    grants,
    health,
    journal,
    organisations,
    payouts,
    people,
    reconciliation,
    reconciliation_closes,
    reports,
)
from api.rest import receipts as receipt_routes
from api.rest.common import MAX_ID, ProblemSchema
from api.webhooks import stripe as stripe_webhook
from ledger.books.sealer import SealerThread
from ledger.db.engine import DEFAULT_DAYS_AHEAD, Database

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class PathInteger(IntegerConverter):
    """``<int:…>`` in every route, bounded: a number larger than any id matches no route (404) instead of
    reaching the database, which cannot hold it."""

    def __init__(self, map, *args, **kwargs) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


class LedgerApi(Api):
    """flask-smorest's Api, documenting its default error answers as they are sent: problem+json (the
    library registers them with its own error schema as application/json)."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self):
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, "application/problem+json")
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Any other error", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, "application/problem+json")
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def create_app(test_config: dict | None = None) -> Flask:
    instance_path = os.environ.get("FUNDLEDGER_INSTANCE_PATH", str(PROJECT_ROOT / "instance"))
    app = Flask(__name__, instance_path=instance_path)
    app.url_map.converters["int"] = PathInteger
    app.config.from_mapping(
        DATABASE_URL=f"sqlite:///{Path(instance_path) / 'fundledger.sqlite3'}",
        SEALER_INTERVAL_SECONDS=0,
        API_TITLE="FundLedger",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={"components": {"securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API token: fl_<prefix>_<secret>"},
        }}},
        STORE_RETRY_AFTER_SECONDS=5,  # a 503's Retry-After while the database cannot take requests
        MAX_CONTENT_LENGTH=64 * 1024,  # the largest honest request (a grant, a gift) is well under 4 KiB
        # Per token, or per address without one. One limit, not a per-second and a per-minute pair: each limit
        # costs every request a round trip to Redis.
        RATELIMIT_DEFAULT="3000 per minute",
        RATELIMIT_SIGN_IN="10 per minute",  # per address: passwords are not guessed quickly
        RATELIMIT_GIVING="20 per minute",  # forms sent to the donation pages, per address: each records a gift
        # The pages' session cookie holds only their forms' CSRF token. Secure (https only) in production, behind
        # the proxy: FUNDLEDGER_SESSION_COOKIE_SECURE=true.
        SESSION_COOKIE_SAMESITE="Lax",
        RATELIMIT_REFUSALS_AUDITED="60 per minute",  # per address: a flood of refusals must not fill the disk
        RATELIMIT_REFUSALS_AUDITED_ALL="600 per minute",  # from every address together
        REDIS_URL=os.environ.get("REDIS_URL"),
        # Stripe's, from the environment (never the repository): the webhook endpoint's signing secret.
        STRIPE_WEBHOOK_SECRET=os.environ.get("STRIPE_WEBHOOK_SECRET"),
        STRIPE_SECRET_KEY=os.environ.get("STRIPE_SECRET_KEY"),  # unset: the donation pages use the demo's checkout
        STRIPE_API_BASE=os.environ.get("STRIPE_API_BASE"),  # a stand-in's address; unset: Stripe's own
        # When a stored event is applied: "queue" (by `flask worker`, through Redis: the default when REDIS_URL is
        # set), "after" (once the acknowledgement is sent: the default without Redis) or "inline" (before it).
        STRIPE_APPLY=None,
        # With no Stripe key, which organisations' gifts the demo's checkout takes (no money moves): "demo" (the
        # demo foundation's only), "on" (every organisation's: trying FundLedger out), or "off".
        DEMO_CHECKOUT="demo",
        # Where the donor pays (the pages' form-action allows it): Stripe's hosted checkout, or a stand-in's.
        STRIPE_CHECKOUT_ORIGIN=os.environ.get("STRIPE_CHECKOUT_ORIGIN", "https://checkout.stripe.com"),
        # The site's address as donors reach it, for the links in their emails (a proxy's https address).
        PUBLIC_URL="http://127.0.0.1:8000",
        # The donors' confirmation emails go through this SMTP server; with no SMTP_HOST none is sent (each stays
        # owed, and goes once one is set: `flask mail send-pending`).
        SMTP_HOST=None,
        SMTP_PORT=25,
        SMTP_USERNAME=None,
        SMTP_PASSWORD=None,
        SMTP_STARTTLS=False,
        SMTP_TIMEOUT=10,
        MAIL_FROM="giving@fundledger.localhost",
        MAX_DAYS_AHEAD=DEFAULT_DAYS_AHEAD,  # how many days after today (UTC) an entry may be dated
        # How many proxies stand in front (nginx: 1). Their X-Forwarded-For and -Proto are believed, so the rate
        # limits and the audit log see the client's address; with none, the headers are ignored (anyone can send
        # them).
        PROXIES=0,
        # Public answers kept in each worker while the organisation's version holds (api.edge.public_cache).
        PUBLIC_CACHE=True,
    )
    if "DATABASE_URL" in os.environ:
        app.config["DATABASE_URL"] = os.environ["DATABASE_URL"]
    # A streaming replica of the database for the public pages and open data (they read only): none, the primary.
    app.config["DATABASE_REPLICA_URL"] = os.environ.get("DATABASE_REPLICA_URL")
    app.config.from_prefixed_env("FUNDLEDGER")
    if test_config:
        app.config.from_mapping(test_config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path) / "secret_key")
    if not app.config.get("RECEIPT_SIGNING_SECRET"):  # derives each organisation's Ed25519 receipt key
        app.config["RECEIPT_SIGNING_SECRET"] = _instance_secret(Path(app.instance_path) / "receipt_signing_secret")
    if int(app.config["PROXIES"]):
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=int(app.config["PROXIES"]), x_proto=int(app.config["PROXIES"]))
    app.json.ensure_ascii = False  # 捐赠收入 reads better than \u6350\u8d60\u6536\u5165

    database = Database(app.config["DATABASE_URL"], days_ahead=int(app.config["MAX_DAYS_AHEAD"]))
    app.extensions["ledger_db"] = database
    app.extensions["ledger_replica"] = Database(app.config["DATABASE_REPLICA_URL"]) \
        if app.config["DATABASE_REPLICA_URL"] else database
    receipts.listen(database)  # (gifts recorded are receipted, refunds void their receipts: in the same transaction)
    app.teardown_appcontext(close_session)
    _start_sealer(app, database)

    api = LedgerApi(app)
    for blueprint in (health.home_blp, health.blp, people.sign_in_blp, people.blp, organisations.blp, gifts.blp,
                      grants.blp, journal.blp, receipt_routes.blp, reports.blp, reconciliation.blp,
                      reconciliation_closes.blp, payouts.blp, stripe_webhook.blp):
        api.register_blueprint(blueprint)
    app.extensions["ledger_api"] = api
    # Swagger UI from the flask-swagger-ui package, served by the app itself: the documentation works on a
    # machine with no route to a CDN.
    app.register_blueprint(get_swaggerui_blueprint("/api/docs", "/api/openapi.json",
                                                   config={"app_name": "FundLedger API"}))
    limits.register(app, people.sign_in_blp, health.blp)
    # Stripe sends its events from a few addresses, a burst of gifts at once: a per-address limit would refuse them
    # (Stripe would send them again, late). Each delivery is authenticated by its signature, cheap to refuse.
    app.extensions["ledger_limiter"].exempt(stripe_webhook.blp)
    pages.register(app)  # (after the limits: its hook answers the root for a browser, which the limits count too)
    refusals.register(app)
    errors.register(app)
    cli.register(app)
    return app


def _instance_secret(path: Path) -> str:
    """The key that signs the pages' session cookie (their forms' CSRF tokens), when FUNDLEDGER_SECRET_KEY gives
    none: made once per instance and kept in its folder, so every worker, and the next start, signs alike. Two
    workers starting at once: the first link wins and both read it."""
    if not path.exists():
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        draft.write_text(secrets.token_urlsafe(48))
        draft.chmod(0o600)
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    return path.read_text().strip()


def _start_sealer(app: Flask, database: Database) -> None:
    interval = int(app.config["SEALER_INTERVAL_SECONDS"])
    if interval > 0:
        sealer = SealerThread(database, interval)
        sealer.start()
        app.extensions["ledger_sealer"] = sealer
