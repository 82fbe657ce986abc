"""Limits at the edge: rate limits (Flask-Limiter; Redis when REDIS_URL is set, so every worker counts
together, else per-process memory), the request body cap (Flask's MAX_CONTENT_LENGTH → 413), and the
security headers on every answer.

The headers are set here rather than by Flask-Talisman: Talisman's HTTPS redirect, session-cookie and nonce
machinery is for HTML apps, and it cannot give the documentation page (which needs its inline script) another
policy than the JSON API without decorating views of a blueprint we do not own.
"""

from __future__ import annotations

import io
import time

from flask import Blueprint, Flask, Response, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import RequestEntityTooLarge

from api.edge.auth import bearer_token, current_principal
from ledger.access.tokens import token_prefix
from ledger.core.errors import Unauthenticated
from ledger.reconciliation.statements import MAX_STATEMENT_BYTES

API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
# The pages (api.pages): their own stylesheet and images, no script, forms posted only back here, or (a donation
# form's redirect, which form-action governs too) on to the payment processor's hosted checkout
# (STRIPE_CHECKOUT_ORIGIN: Stripe's, or a stand-in's in tests).
PAGE_POLICY_TEMPLATE = ("default-src 'none'; style-src 'self'; img-src 'self' data:; "
                        "form-action 'self' {checkout}; frame-ancestors 'none'; base-uri 'none'")
PAGE_POLICY = PAGE_POLICY_TEMPLATE.format(checkout="https://checkout.stripe.com")
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
}


def rate_key() -> str:
    """A verified token is limited on its own; anyone else, a bad token included, by address. (Counting by an
    unverified prefix would let a caller dodge the address limit with made-up tokens, or spend someone
    else's.) The principal found here is the one the request then uses: no second lookup."""
    try:
        signed_in = current_principal().signed_in
    except Unauthenticated:
        signed_in = False
    if signed_in:
        return "token:" + token_prefix(bearer_token())
    return "address:" + get_remote_address()


def register(app: Flask, sign_in: Blueprint, health: Blueprint) -> None:
    """One limiter per application (so each test's application keeps its own limits): the default limit per
    caller over every route together (an application limit: one allowance, not one per route), a tighter one, per
    address, on signing in with a password, and none on the health checks (a load balancer's probes must not be
    refused). When Redis cannot be reached the limiter counts in each process's memory until it can again, and the
    answers go on: a rate limit is no reason to fail every request."""
    limiter = Limiter(
        # No X-RateLimit-* headers on every answer: they cost two more Redis round trips per request. A 429 gets its
        # Retry-After from the error handler (``retry_after``), at the cost of one round trip on refusals only.
        rate_key, app=app, application_limits=[app.config["RATELIMIT_DEFAULT"]], headers_enabled=False,
        storage_uri=app.config.get("RATELIMIT_STORAGE_URI") or app.config.get("REDIS_URL") or "memory://",
        key_prefix="fundledger", in_memory_fallback_enabled=True, swallow_errors=True)
    limiter.limit(app.config["RATELIMIT_SIGN_IN"], key_func=get_remote_address)(sign_in)
    limiter.exempt(health)
    app.extensions["ledger_limiter"] = limiter
    app.before_request(_chunked_body_within_the_cap)
    app.after_request(_security_headers)


# The few routes whose honest bodies are files (a bank statement), and their own caps.
LARGE_BODIES = {"reconciliation.Statements": MAX_STATEMENT_BYTES + 1024 * 1024,  # (the multipart's envelope)
                "manage.import_statement": MAX_STATEMENT_BYTES + 1024 * 1024}


def _chunked_body_within_the_cap() -> None:
    """A body sent in chunks has no Content-Length for werkzeug to refuse up front, and werkzeug cuts such a body at
    MAX_CONTENT_LENGTH without a word (the JSON parser then calls it invalid: a 400). Read it here, one byte past the
    cap: beyond it is the 413 it is; within it, the body goes on as if its length had been sent. (A route taking
    files has a larger cap of its own, ``LARGE_BODIES``.)"""
    if request.endpoint in LARGE_BODIES and request.method == "POST":
        request.max_content_length = LARGE_BODIES[request.endpoint]
    environ = request.environ
    if environ.get("CONTENT_LENGTH") or not environ.get("wsgi.input_terminated"):
        return
    cap = request.max_content_length
    body = environ["wsgi.input"].read(cap + 1)
    if len(body) > cap:
        raise RequestEntityTooLarge()
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))


def retry_after() -> int:
    """Seconds until the limit this request broke lets the caller in again (at least 1): a 429's Retry-After."""
    limiter = current_app.extensions.get("ledger_limiter")
    broken = limiter.current_limit if limiter is not None else None
    if broken is None:  # (no limit was evaluated: a 429 raised by hand)
        return 1
    return max(1, broken.reset_at - int(time.time()))


def _security_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/docs"):
        policy = DOCS_POLICY
    else:
        checkout = current_app.config["STRIPE_CHECKOUT_ORIGIN"]
        page = PAGE_POLICY_TEMPLATE.format(checkout=checkout) if checkout != "https://checkout.stripe.com" \
            else PAGE_POLICY
        policy = page if response.mimetype in ("text/html", "text/css") else API_POLICY
    response.headers.setdefault("Content-Security-Policy", policy)
    if request.path.startswith("/api/v1"):
        response.headers.setdefault("Cache-Control", "no-store")  # answers may hold personal data
    return response
