"""Every message the pages show has its Chinese translation, and the compiled catalogue is the one served."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "api" / "pages" / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
METHODS = [("pages/templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]


def _messages() -> set[str]:
    return {message for _, _, message, _, _ in extract_from_dir(ROOT / "api", METHODS)
            if isinstance(message, str)}


def test_every_message_of_the_pages_is_translated_into_chinese():
    with CATALOGUE.open("rb") as source:
        catalogue = read_po(source)
    translated = {message.id for message in catalogue if message.id and message.string and not message.fuzzy}

    messages = _messages()

    assert len(messages) >= 10
    assert sorted(messages - translated) == []


def test_the_compiled_catalogue_is_not_older_than_its_source():
    compiled = CATALOGUE.with_suffix(".mo")
    assert compiled.exists(), "run `make install`: it compiles the translations"
    assert compiled.stat().st_mtime >= CATALOGUE.stat().st_mtime
