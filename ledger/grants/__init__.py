"""Grants: money leaving a fund for a payee, with separation of duties."""
