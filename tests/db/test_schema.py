"""An installed FundLedger migrates wherever it runs: the revisions ship as the ``migrations`` package and are
found as a package resource, not beside a source tree."""

from __future__ import annotations

import subprocess
import sys

from alembic.script import ScriptDirectory

from ledger.db.schema import alembic_config

SCRIPT = """
from sqlalchemy import text
from ledger.db.engine import Database
from ledger.db.schema import migrate
db = Database("sqlite:///ledger.sqlite3")
migrate(db.engine)
with db.engine.connect() as connection:
    print(connection.scalar(text("SELECT version_num FROM alembic_version")))
"""


def test_the_revisions_are_found_in_the_migrations_package_and_form_one_chain():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))

    assert script.get_heads() == ["0020"]
    assert [revision.revision for revision in script.walk_revisions()] == [
        f"{number:04d}" for number in range(20, 0, -1)]


def test_a_process_started_far_from_the_source_tree_migrates_to_the_newest_revision(tmp_path):
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0020"
