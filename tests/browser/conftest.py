"""Browser tests: Debian's headless Chromium driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_chromium(path: Path = CHROMIUM) -> None:
    """Skip when the browser is missing on a developer's machine; fail on CI (`CI` set), whoever
    runs the tests: a CI job that silently skips its browser tests proves nothing."""
    if path.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{path} is missing on CI; install it (`make chromium` as root, or apt-get)")
    pytest.skip(f"{path} is missing (`make chromium` installs Debian's chromium as root)")


@pytest.fixture
async def browser():
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def shots() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
