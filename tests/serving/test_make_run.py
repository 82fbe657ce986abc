"""`make run` as a newcomer runs it: its own commands (``make -n run``), served by gunicorn on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def served_like_make_run(home: Path, database: Path) -> tuple[subprocess.Popen, int]:
    """Runs what `make run` runs (set-up, then gunicorn) with its own HOME and database, on a free port."""
    port = free_port()
    commands = subprocess.run(["make", "-s", "-n", "run", f"PORT={port}"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout
    environment = {**os.environ, "HOME": str(home), "DATABASE_URL": f"sqlite:///{database}"}
    environment.pop("XDG_RUNTIME_DIR", None)  # gunicorn's other default place for its control socket
    server = subprocess.Popen(["sh", "-c", commands], cwd=ROOT, env=environment, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if answer.status == 200:
                    return server, port
        except OSError:
            time.sleep(0.3)
    stop(server)
    pytest.fail("the server `make run` starts did not answer /health within 60 s")


def stop(server: subprocess.Popen) -> None:
    os.killpg(server.pid, 15)
    server.wait(timeout=30)


def test_two_servers_started_as_make_run_starts_one_leave_no_control_socket_to_share(tmp_path):
    """gunicorn's runtime control socket defaults to one path under $HOME for every instance: two instances on
    one machine would fight over it. `make run` serves without one."""
    home = tmp_path / "home"
    home.mkdir()
    servers = [served_like_make_run(home, tmp_path / f"ledger-{n}.sqlite3") for n in (1, 2)]
    try:
        for _, port in servers:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
                assert answer.status == 200
        assert not any(path.name.endswith(".ctl") for path in home.rglob("*")), list(home.rglob("*"))
    finally:
        for server, _ in servers:
            stop(server)
