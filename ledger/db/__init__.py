"""Persistence: the tables as typed models, engines and the unit of work, the posting hot path (the store),
keyset pages and single-row reads, and the Alembic migrations' runner."""
