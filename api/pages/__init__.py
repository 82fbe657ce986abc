"""The web pages: server-rendered HTML on one base layout, in Chinese and English, that work without JavaScript.

``layout`` sets up what every page shares (the language, the templates, the switch between languages);
``public`` holds the pages anyone may open. The pages read the ledger through the same ``ledger.books``
functions as the API, and meet the same security headers, with a Content Security Policy of their own
(``api.edge.limits``): styles from this site only, no script at all.
"""

from __future__ import annotations

from flask import Flask, request
from flask_limiter.util import get_remote_address

from api.pages import donor_receipts, giving, layout, manage, open_data, public, published, verify


def register(app: Flask) -> None:
    layout.register(app)
    app.register_blueprint(public.blp)
    # Each form sent records a gift: a tighter limit than the API's, per address (the donor has no token).
    app.extensions["ledger_limiter"].limit(app.config["RATELIMIT_GIVING"], key_func=get_remote_address,
                                           methods=["POST"])(giving.blp)
    app.register_blueprint(giving.blp)
    app.register_blueprint(verify.blp)
    app.register_blueprint(donor_receipts.blp)
    app.register_blueprint(open_data.blp)
    app.register_blueprint(published.blp)
    # The manager's screen: signing in with a password is limited per address as the API's is.
    app.extensions["ledger_limiter"].limit(app.config["RATELIMIT_SIGN_IN"], key_func=get_remote_address,
                                           methods=["POST"])(manage.sign_in)
    app.register_blueprint(manage.blp)
    app.before_request(_browsers_get_the_home_page)


def _browsers_get_the_home_page():
    """The root is the API's (``api.rest.health.Home``: JSON saying where to start); a browser, which prefers
    text/html, gets the public home page there instead."""
    if request.path == "/" and request.method == "GET" and \
            request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
        return public.home_page()
    return None
