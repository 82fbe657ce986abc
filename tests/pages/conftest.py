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


@pytest.fixture(scope="session")
def stripe_site(tmp_path_factory) -> Iterator[tuple[str, object]]:
    """The app as `make run` serves it, with a Stripe account whose API and hosted checkout are the stand-in's
    (tests/payments/stripe_standin.py), which sends its signed events to the app's webhook: (base URL, stand-in)."""
    from tests.payments.stripe_standin import StripeStandIn, serve

    stand_in = StripeStandIn(webhook_secret="whsec_browser_" + "b" * 24)
    stand_in_server = serve(stand_in)
    folder = tmp_path_factory.mktemp("stripe-site")
    (folder / "home").mkdir()
    server, port = served_like_make_run(
        folder / "home", f"sqlite:///{folder / 'site.sqlite3'}", STRIPE_SECRET_KEY="sk_test_browser",
        STRIPE_API_BASE=stand_in.url, STRIPE_WEBHOOK_SECRET=stand_in.webhook_secret,
        STRIPE_CHECKOUT_ORIGIN=stand_in.url)
    stand_in.webhook_url = f"http://127.0.0.1:{port}/webhooks/stripe"
    yield f"http://127.0.0.1:{port}", stand_in
    stop(server)
    stand_in_server.shutdown()
