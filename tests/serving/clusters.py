"""A PostgreSQL cluster of a test's own, on a free port, that the test may restart: initdb and pg_ctl from the
server's packages (as the postgres user when the tests run as root, which initdb refuses to be)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import missing_service
from tests.serving.servers import free_port


@contextmanager
def own_cluster() -> Iterator[tuple[str, Callable[[], None]]]:
    """Yields the cluster's URL and a function that restarts it (fast shutdown: every connection is ended)."""
    programs = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not programs:
        missing_service("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    bin_dir = programs[-1].parent
    folder = Path(tempfile.mkdtemp(prefix="fundledger-cluster-"))
    as_owner = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    subprocess.run([*as_owner, bin_dir / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"],
                   check=True, capture_output=True)
    # fsync off: this cluster's data is thrown away; the socket in its own folder, not the system cluster's.
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [*as_owner, bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", folder / "log", "-w", "-t", "60"]
    subprocess.run([*pg_ctl, "start"], check=True, capture_output=True)
    try:
        yield (f"postgresql://postgres@127.0.0.1:{port}/postgres",
               lambda: subprocess.run([*pg_ctl, "-m", "fast", "restart"], check=True, capture_output=True))
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
