"""Debian's Chromium, driven by Playwright (the library only: it downloads no browser); the fixtures are in
conftest.py."""

from __future__ import annotations

from pathlib import Path

from tests.serving.servers import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
# Where the screenshots go; CI keeps the folder as the tests' output.
OUTPUT = ROOT / "test-output"
PHONE = {"width": 390, "height": 844}


class Console:
    """What a page said on its console and what it could not load: a page under test must say nothing wrong."""

    def __init__(self, page) -> None:
        self.problems: list[str] = []
        page.on("console", lambda message: message.type in ("error", "warning")
                and self.problems.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", lambda request: self.problems.append(f"failed: {request.url}"))
        page.on("response", lambda response: response.status >= 400
                and self.problems.append(f"{response.status}: {response.url}"))


def screenshot(page, name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
