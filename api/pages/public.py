"""The pages anyone may open: the home page (the organisations and the funds that take gifts)."""

from __future__ import annotations

from flask import Blueprint, Response

from api.edge.session import read_session
from api.pages.layout import render_page
from ledger.books.organisations import public_directory

# The templates and the stylesheet of every page (the other page modules render through ``render_page``).
blp = Blueprint("pages", __name__, template_folder="templates", static_folder="static", static_url_path="/assets")


def home_page() -> Response:
    """The root as a browser asks for it (``api.rest.health.Home`` answers JSON to everyone else)."""
    return render_page("home.html", directory=public_directory(read_session()))
