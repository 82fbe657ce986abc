"""What every page shares: the language (from ``?lang=`` or Accept-Language), the translations (Flask-Babel),
the link that switches language, and rendering.

The language is chosen per request and never stored: a page's URL with ``?lang=en`` or ``?lang=zh-CN`` always
shows that language (a link can be shared), and without it the browser's Accept-Language decides, falling back
to ``DEFAULT_LANGUAGE`` (Chinese: China is the first market). Every link a page makes carries the language on.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flask import Flask, Response, current_app, g, has_request_context, render_template, request, url_for
from flask_babel import Babel

from api.edge.language import LANGUAGES, money  # noqa: F401 (money: the pages' own, from here)

SWITCH_LABEL = {"zh-CN": "中文", "en": "English"}  # each language named in itself
TRANSLATIONS = Path(__file__).resolve().parent / "translations"


def register(app: Flask) -> None:
    app.config.setdefault("DEFAULT_LANGUAGE", "zh-CN")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    Babel(app, locale_selector=lambda: LANGUAGES[page_language()])
    app.context_processor(_page_context)


def page_language() -> str:
    """This request's language, in the URL's spelling."""
    if "page_language" not in g:
        g.page_language = _chosen_language()
    return g.page_language


def _chosen_language() -> str:
    asked = request.args.get("lang", "")
    if asked in LANGUAGES:
        return asked
    if asked.lower().startswith("zh"):
        return "zh-CN"
    default = current_app.config["DEFAULT_LANGUAGE"]
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"], default=default)
    return "zh-CN" if best.lower().startswith("zh") else best


def page_url(endpoint: str, **values) -> str:
    """A link to another page, in this page's language."""
    return url_for(endpoint, **values, lang=page_language())


def _page_context() -> dict:
    if not has_request_context():  # (an email, written after the answer or by a worker: no page, no switch)
        return {}
    language = page_language()
    other = "en" if language == "zh-CN" else "zh-CN"
    view_args = request.view_args or {}
    # (a query argument named like a path's part, ?fund_id= on a fund's page, is not the page's: leave it out)
    arguments = {**{name: value for name, value in request.args.items() if name not in view_args}, "lang": other}
    switch = url_for(request.endpoint, **view_args, **arguments) if request.endpoint else "/"
    return {"language": language, "page_url": page_url, "switch_url": switch, "switch_language": other,
            "switch_label": SWITCH_LABEL[other]}


def render_page(template: str, status: int = 200, **context) -> Response:
    """The page in this request's language. Vary: the same URL without ``?lang=`` answers by Accept-Language."""
    response = current_app.response_class(render_template(template, **context), status=status,
                                          mimetype="text/html")
    response.vary.add("Accept-Language")
    return response



def conditional(response: Response, updated_at: dt.datetime | None) -> Response:
    """A public answer made cacheable: a strong ETag over its body and the books' last change as Last-Modified, so
    that a browser or proxy asking again with If-None-Match (or If-Modified-Since) gets a 304 without the body.
    ``no-cache``: stored, but checked with the server each time (the books may change any minute)."""
    response.add_etag()
    if updated_at is not None:
        response.last_modified = updated_at
    response.cache_control.public = True
    response.cache_control.no_cache = True
    return response.make_conditional(request)
