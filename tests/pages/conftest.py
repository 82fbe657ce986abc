"""The browser and the served demo for the pages' tests: Debian's Chromium driven by Playwright, and the app
served as `make run` serves it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import missing_service
from tests.pages.browser import CHROMIUM, CHROMIUM_ARGS
from tests.serving.servers import served_like_make_run, stop


@pytest.fixture(scope="session")
def chromium() -> Iterator:
    if not CHROMIUM.exists():
        missing_service(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def demo_site(tmp_path_factory) -> Iterator[str]:
    """The demo as `make run` serves it, on a free port: its base URL."""
    folder = tmp_path_factory.mktemp("demo-site")
    (folder / "home").mkdir()
    server, port = served_like_make_run(folder / "home", f"sqlite:///{folder / 'demo.sqlite3'}")
    yield f"http://127.0.0.1:{port}"
    stop(server)
