"""The test run itself: without PostgreSQL configured, its runs are left out and the summary says so once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_without_postgres_the_summary_says_so_once_instead_of_a_skip_per_test():
    env = {name: value for name, value in os.environ.items()
           if name not in ("TEST_DATABASE_URL", "REQUIRE_SERVICES")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
                             "tests/giving/test_refunds.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PostgreSQL not configured") == 1, result.stdout
    assert "skipped" not in result.stdout and "deselected" in result.stdout, result.stdout
