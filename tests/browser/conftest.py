"""Browser tier: Playwright for Python driving Debian's Chromium (``apt-get install chromium``).

Nothing is downloaded at test time: the browser is ``/usr/bin/chromium`` (or ``$OPENAML_CHROMIUM``).
Without it the tests are skipped with the reason, except under ``CI=true`` where they fail.
``OPENAML_STUDIO_SCREENSHOTS=1`` makes the tests rewrite docs/guide/img/studio-*.png.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("OPENAML_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
IMG = Path(__file__).resolve().parents[2] / "docs" / "guide" / "img"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "browser" in item.path.parts:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
        pytest.skip(f"chromium is not installed at {CHROMIUM}: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    p = ctx.new_page()
    p.set_default_timeout(30_000)
    yield p
    ctx.close()


def screenshot(page: Any, name: str) -> None:
    """Save docs/guide/img/studio-<name>.png when OPENAML_STUDIO_SCREENSHOTS=1 (docs stay true)."""
    if os.environ.get("OPENAML_STUDIO_SCREENSHOTS") == "1":
        IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(IMG / f"studio-{name}.png"), full_page=False)
