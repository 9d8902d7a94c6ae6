"""The RAI dashboard page in Chromium: it draws every view, runs no user script, and its time to
interactive is measured (issue 16's target is under 2 s: reported, not asserted)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.rai_fixture import submit_dashboard_pipeline


@pytest.fixture(scope="module")
def rai_job(cli: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return submit_dashboard_pipeline(cli, tmp_path_factory.mktemp("rai-browser"), "rai-browser-model")


def test_dashboard_page_time_to_interactive(page: Any, server: Any, rai_job: dict[str, Any],
                                            record_property: Any) -> None:
    page.add_init_script("window.alert = () => { window.__alerted = 1 }")
    url = f"{server.url}/jobs/{rai_job['name']}/rai"
    page.goto(url)  # the first view compiles the templates and fills the server's cache
    times = []
    for _ in range(3):
        page.goto(url, wait_until="load")
        nav = page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])")
        times.append(json.loads(nav)["domInteractive"] / 1000)
    tti = sorted(times)[1]
    record_property("rai_dashboard_tti_s", tti)
    print(f"\nRAI dashboard time to interactive (median of 3, Chromium): {tti:.3f} s; all: {times}")
    if os.environ.get("OPENAML_RAI_TTI_FILE"):
        Path(os.environ["OPENAML_RAI_TTI_FILE"]).write_text(json.dumps({"tti_s": tti, "runs": times}))
    assert page.locator("#verdict").inner_text() == "pass"
    assert page.locator("#ea-tree rect").count() >= 3
    assert page.locator("#global-importance rect").count() == len(rai_job["data"]["features"])
    assert page.evaluate("window.__alerted") is None  # feature names and values with HTML ran nothing
    screenshot(page, "rai-dashboard")
    # define a cohort in the page: the form adds a filter and the cohort row appears
    page.fill("#cohort-form input[name=f]:not([type=hidden])", "Sex==female")
    page.click("#cohort-form button[type=submit]")
    page.wait_for_selector("#user-cohort")
    assert "Sex == female" in page.locator("#user-cohort").inner_text()
    # pick a row for local importance
    page.select_option("#row-select", "7")
    page.click("#row-form button[type=submit]")
    page.wait_for_selector("text=Local: row 7")
    assert page.locator("#user-cohort").count() == 1  # the cohort is kept
    assert page.evaluate("window.__alerted") is None
