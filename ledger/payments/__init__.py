"""Payment channels: Stripe first, each a peer behind the same small interface (bank transfer, WeChat Pay, Alipay
and the online fundraising platforms' exports come through it later). Every channel ends in the recipes of
``ledger.core.recipes``.

``events``: what every channel's inbound events share: each stored once, by its id, in the transaction that
acknowledges it. ``stripe_channel``: Stripe's part: a webhook event verified against its signature.
"""
