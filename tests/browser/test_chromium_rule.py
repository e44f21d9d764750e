"""The browser tests' rule for a missing Chromium: skip on a laptop, fail on CI (root or not).

Runs this folder's conftest in a child pytest, with the binary path pointing nowhere and the
effective user id faked, so the rule is checked exactly as the `browser` fixture applies it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")
PROBE = """
async def test_needs_the_browser(browser):
    pass
"""


def run_probe(tmp_path: Path, ci: bool, uid: int) -> subprocess.CompletedProcess[str]:
    text = CONFTEST.read_text()
    assert 'CHROMIUM = Path("/usr/bin/chromium")' in text
    text = text.replace('CHROMIUM = Path("/usr/bin/chromium")', 'CHROMIUM = Path("/nonexistent/chromium")')
    text += f"\nos.geteuid = lambda: {uid}\n"
    (tmp_path / "conftest.py").write_text(text)
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "asyncio_mode=auto", "-rsE"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("uid", [0, 1000])
def test_missing_chromium_fails_on_ci_whoever_runs_it(tmp_path: Path, uid: int) -> None:
    result = run_probe(tmp_path, ci=True, uid=uid)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "missing on CI" in result.stdout


def test_missing_chromium_skips_off_ci(tmp_path: Path) -> None:
    result = run_probe(tmp_path, ci=False, uid=1000)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
