"""Reconciliation (to come): statement parsers and matching (pure), their persistence, and the report."""
