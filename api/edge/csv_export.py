"""CSV answers, streamed: the API's lists and reports and the manager's screen write their tables alike."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from flask import Response, stream_with_context

CSV = "text/csv"


def csv_response(rows: Iterable[dict], columns: list[str], filename: str) -> Response:
    """The rows as CSV, streamed as they come (a generator of rows spanning many pages holds one page at a time)."""
    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _inert(value) for key, value in row.items()})
            if buffer.tell() > 64 * 1024:
                yield _drained(buffer)
        yield _drained(buffer)

    return Response(stream_with_context(generate()), mimetype=CSV,
                    headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'})


def _drained(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _inert(value):
    """A text cell a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a leading apostrophe:
    donors' names and descriptions come from outside. Numbers stay numbers."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
