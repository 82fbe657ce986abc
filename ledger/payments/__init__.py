"""Payment channels (to come, issue 10): the one small interface every channel implements, Stripe first, and
processor events stored and applied once. Every channel ends in the recipes of ``ledger.core.recipes``."""
