"""The web pages: server-rendered HTML on one base layout, in Chinese and English, that work without JavaScript.

``layout`` sets up what every page shares (the language, the templates, the switch between languages);
``public`` holds the pages anyone may open. The pages read the ledger through the same ``ledger.books``
functions as the API, and meet the same security headers, with a Content Security Policy of their own
(``api.edge.limits``): styles from this site only, no script at all.
"""

from __future__ import annotations

from flask import Flask

from api.pages import layout, public


def register(app: Flask) -> None:
    layout.register(app)
    app.register_blueprint(public.blp)
