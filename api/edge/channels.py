"""The payment channels this deployment has: Stripe when its secret key is configured (the demo's otherwise)."""

from __future__ import annotations

from flask import current_app

from ledger.payments.stripe_channel import StripeAccount


def stripe_account() -> StripeAccount | None:
    """The Stripe account configured (STRIPE_SECRET_KEY; STRIPE_API_BASE for a stand-in), or None."""
    key = current_app.config.get("STRIPE_SECRET_KEY")
    return StripeAccount(key, current_app.config.get("STRIPE_API_BASE")) if key else None
