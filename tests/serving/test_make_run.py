"""`make run` as a newcomer runs it: its own commands, served by gunicorn on a free port."""

from __future__ import annotations

import urllib.request

from tests.serving.servers import served_like_make_run, stop


def test_two_servers_started_as_make_run_starts_one_leave_no_control_socket_to_share(tmp_path):
    """gunicorn's runtime control socket defaults to one path under $HOME for every instance: two instances on
    one machine would fight over it. `make run` serves without one."""
    home = tmp_path / "home"
    home.mkdir()
    servers = [served_like_make_run(home, f"sqlite:///{tmp_path / f'ledger-{n}.sqlite3'}") for n in (1, 2)]
    try:
        for _, port in servers:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
                assert answer.status == 200
        assert not any(path.name.endswith(".ctl") for path in home.rglob("*")), list(home.rglob("*"))
    finally:
        for server, _ in servers:
            stop(server)
