"""Fixtures of the payments tests: the Stripe stand-in served on a local port, and an app whose Stripe account is
there."""

from __future__ import annotations

import pytest

from ledger.db.models import Fund
from tests.api.support import make_app
from tests.payments.checkout import SECRET
from tests.payments.stripe_standin import StripeStandIn, serve


@pytest.fixture
def stand_in():
    fake = StripeStandIn()
    server = serve(fake)
    yield fake
    server.shutdown()


@pytest.fixture
def shop(world, stand_in):
    """The world's app with a Stripe account at the stand-in: (client, the fund page's URL)."""
    app = make_app(world.db, STRIPE_SECRET_KEY="sk_test_standin", STRIPE_API_BASE=stand_in.url,
                   STRIPE_WEBHOOK_SECRET=SECRET, RATELIMIT_GIVING="100000 per second")
    with world.db.read() as session:
        code = session.get(Fund, world.fund).code
    yield app.test_client(), f"/give/{world.org}/{code}?lang=en"
    app.extensions["ledger_db"].dispose()
