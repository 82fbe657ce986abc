"""The README stands alone in a clone: it sends readers to no file outside the repository, every file and
directory it names is there, and every `make` target it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PATH = re.compile(r"`((?:\.?[\w.-]+/)+[\w.-]*|[\w-]+\.(?:md|py|toml|ini|json))`")


def test_the_readme_sends_readers_to_nothing_outside_the_repository():
    assert "../" not in README


def test_every_file_and_directory_the_readme_names_is_in_the_repository():
    # ./instance is a default the set-up creates, not a file of the clone.
    named = {match for match in PATH.findall(README) if not match.startswith(("api/v1", "http", "./"))}
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert len(named) >= 5 and not missing, missing


def test_every_make_target_the_readme_names_exists():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    named = {one or other for one, other in re.findall(r"`make ([a-z][\w-]*)|^make ([a-z][\w-]*)", README,
                                                       re.MULTILINE)}
    assert named and named <= targets, named - targets
