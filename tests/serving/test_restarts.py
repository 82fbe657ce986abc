"""The database restarted under a running server: after a PostgreSQL restart, the first request of each gunicorn
worker succeeds (its pooled connection, which the restart ended, is replaced at checkout instead of failing it)."""

from __future__ import annotations

import urllib.error
import urllib.request

from tests.serving.clusters import own_cluster
from tests.serving.servers import served_like_make_run, stop

# A token of the right shape that no one holds: the rate limiter's key function looks it up in the database (the
# read whose dropped connection answered 500 before), and the answer is a 401.
UNKNOWN_TOKEN = "fl_000000000000_" + "x" * 43
REQUESTS = 12  # sequential: with two workers, each serves some of them


def statuses(port: int) -> list[int]:
    answers = []
    for _ in range(REQUESTS):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/me",
                                         headers={"Authorization": f"Bearer {UNKNOWN_TOKEN}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                answers.append(answer.status)
        except urllib.error.HTTPError as refused:
            answers.append(refused.code)
    return answers


def test_after_a_postgresql_restart_every_workers_first_request_succeeds(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    with own_cluster() as (url, restart):
        server, port = served_like_make_run(home, url)
        try:
            assert statuses(port) == [401] * REQUESTS  # every worker now holds pooled connections

            restart()

            assert statuses(port) == [401] * REQUESTS
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as health:
                assert health.status == 200
        finally:
            stop(server)
