"""The leaderboard's web page (issue 21): built from a results folder with no network, every method row and column
there, per-class values and runs on demand, yours vs reference with differences highlighted; and, in a real headless
Chromium, sorting by a column and opening a run's grid."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from unlearnbench.orchestration.leaderboard import main_table_data
from unlearnbench.orchestration.report_page import ResultsFolder, write_report_page

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference" / "mnist"
BROWSER = ("/usr/bin/chromium", "/usr/bin/chromedriver")
INSTALL = ("the browser test needs Debian's `chromium` and `chromium-driver` (apt-get install chromium "
           "chromium-driver) and PyPI's `selenium` (in the dev extras: pip install -e '.[dev]')")


@pytest.fixture
def results(tmp_path) -> Path:
    """A copy of the committed reference/mnist as "your" results."""
    folder = tmp_path / "mnist"
    shutil.copytree(REFERENCE, folder, ignore=shutil.ignore_patterns("original", "report.html"))
    return folder


def test_the_page_holds_every_method_and_column_and_nothing_from_the_network(results):
    page = write_report_page(results).read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no CDN, no remote image or script
    folder = ResultsFolder.read(results)
    for data in main_table_data(folder.table):
        for header in data.headers:
            assert f">{header}</th>" in page.replace("&gt;", ">")
    methods = list(folder.table["method"])
    for method in methods:
        assert page.count(f'data-method="{method}"') == 3  # a clickable row in each main table
        assert f'<template id="runs-{method}">' in page
    assert page.count('<img class="grid"') == len(folder.runs)  # every run's grid, inline
    assert "data:image/png;base64," in page
    assert 'title="forget class 0: 0.0 % · 1: 0.0 % · 2: 0.0 %"' in page  # per-class values of safemax's recognised
    assert "yours vs reference" not in page.lower()  # no reference given


def test_yours_vs_reference_names_the_reference_and_highlights_what_differs(results):
    board = json.loads((results / "leaderboard.json").read_text())
    for row in board:
        if row["method"] == "salun":
            row["retain_accuracy_mean"] -= 0.2  # 20 points worse than the reference
            row["total_seconds_mean"] *= 3  # times are shown, never flagged
    (results / "leaderboard.json").write_text(json.dumps(board))
    page = write_report_page(results, REFERENCE).read_text()
    # the checkout-relative path: a committed page names no machine's absolute path
    assert "Yours vs reference" in page and "Reference: results/reference/mnist. reference made by code" in page
    assert str(REFERENCE.parents[2]) not in page
    flagged = re.findall(r'<td class="differs">([^<]*)</td>', page)
    assert len(flagged) == 1 and flagged[0].startswith("74.2 % / 94.2 %")
    assert "1 score(s) differ beyond the verify tolerance" in page


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason=INSTALL)
    if not all(Path(p).is_file() for p in BROWSER):
        pytest.skip(INSTALL)
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1600"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(BROWSER[1]), options=options)


def test_in_a_real_browser_the_page_sorts_and_opens_a_runs_grid(results, tmp_path):
    from selenium.webdriver.common.by import By

    page = write_report_page(results, REFERENCE)
    methods = list(ResultsFolder.read(results).table["method"])
    driver = _browser()
    try:
        driver.get(page.as_uri())
        rows = lambda table: driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")  # noqa: E731
        first_cells = lambda table, i: [r.find_elements(By.TAG_NAME, "td")[i].text for r in rows(table)]  # noqa: E731
        assert sorted(first_cells("main-2", 0)) == sorted(methods)
        headers = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "#main-2 th")]
        assert headers[:3] == ["method", "runs", "retained acc ↑"]
        # sort by retained accuracy, twice: ascending then descending, by the value, not the text
        header = driver.find_elements(By.CSS_SELECTOR, "#main-2 th")[2]
        header.click()
        ascending = [float(v.split(" ")[0]) for v in first_cells("main-2", 2)]
        assert ascending == sorted(ascending) and "asc" in header.get_attribute("class")
        header.click()
        assert [float(v.split(" ")[0]) for v in first_cells("main-2", 2)] == sorted(ascending, reverse=True)
        # a click on SalUn's row opens its runs: one grid per forget class, loaded
        next(r for r in rows("main-0") if r.get_attribute("data-method") == "salun").click()
        grids = driver.find_elements(By.CSS_SELECTOR, "#run-view img.grid")
        assert len(grids) == 3 and all(driver.execute_script("return arguments[0].naturalWidth", g) > 0 for g in grids)
        assert driver.find_element(By.CSS_SELECTOR, "#run-view h3").text == "salun: its runs"
        assert rows("yours-vs-reference") and driver.find_element(By.ID, "reference").is_displayed()
        assert driver.save_screenshot(str(tmp_path / "report.png"))
    finally:
        driver.quit()
