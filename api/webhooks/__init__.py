"""Inbound webhooks (to come, issue 10): signed processor events, verified and stored, applied once."""
