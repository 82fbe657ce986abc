"""A pooled connection the server dropped (a restart, an administrator's pg_terminate_backend) is replaced at checkout,
so the next read and write succeed instead of failing once per pooled connection."""

from __future__ import annotations

from sqlalchemy import text

from ledger.db.engine import Database, ping


def backend_pids(db: Database, count: int) -> list[int]:
    """Checks out ``count`` connections at once (so the pool keeps that many) and returns their backends."""
    sessions = [db._read_sessions() for _ in range(count)]
    try:
        return [session.execute(text("SELECT pg_backend_pid()")).scalar_one() for session in sessions]
    finally:
        for session in sessions:
            session.close()


def test_reads_and_writes_after_the_server_dropped_every_pooled_connection_succeed(postgres_db):
    db = Database(postgres_db.engine.url.render_as_string(hide_password=False), pool_size=3)
    try:
        pids = backend_pids(db, 3)
        with postgres_db.engine.connect() as admin:  # as a restart does: every backend of the pool ends (the
            # timeout: wait until each has)
            admin.execute(text("SELECT pg_terminate_backend(pid, 5000) FROM unnest(CAST(:pids AS int[])) AS pid"),
                          {"pids": pids})
            admin.commit()

        answers = []
        for _ in range(3):  # one per pooled connection, each of which the server has dropped
            with db.read() as session:
                answers.append(session.execute(text("SELECT 1")).scalar_one())
        assert answers == [1, 1, 1]
        assert db.write(lambda session: ping(session) or "written") == "written"
        assert not set(backend_pids(db, 3)) & set(pids)
    finally:
        db.dispose()
