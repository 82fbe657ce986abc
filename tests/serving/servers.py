"""Serving the app as `make run` does: its own commands (``make -n run``), with gunicorn on a free port."""

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


def served_like_make_run(home: Path, database_url: str, **environment_too: str) -> tuple[subprocess.Popen, int]:
    """Runs what `make run` runs (set-up, then gunicorn) with its own HOME and database, on a free port (and these
    variables in its environment, if any)."""
    port = free_port()
    commands = subprocess.run(["make", "-s", "-n", "run", f"PORT={port}"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout
    environment = {**os.environ, "HOME": str(home), "DATABASE_URL": database_url, **environment_too}
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
