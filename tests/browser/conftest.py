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


@pytest.fixture
async def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI") and os.geteuid() == 0:  # `make test` as root installs it: must run
            pytest.fail(f"{CHROMIUM} is missing on CI running as root; `make chromium` should install it")
        pytest.skip(f"{CHROMIUM} is missing (`make chromium` installs Debian's chromium as root)")
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
