"""The web UI in headless Chromium: what a person sees and can do."""

from __future__ import annotations

import math
import os
import shutil
import time

import pytest
import requests

import loomproc

selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(not (CHROMEDRIVER and CHROMIUM), reason="chromium and chromium-driver are required")


@pytest.fixture(scope="module")
def server():
    data = loomproc.temp_data_dir("loom-ui-")
    s = loomproc.LoomServer(data=data).start()
    yield s
    s.stop()
    loomproc.remove(data)


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(2)
    yield driver
    driver.quit()


def follow(browser, action):
    """Runs `action` (a click or submit that loads a new page) and waits until the old page is gone.

    Without the wait, a lookup right after the click can find an element of the page being
    replaced, which then goes stale under the test.
    """
    old = browser.find_element(By.TAG_NAME, "html")
    action()

    def gone(_):
        # Chromium reports a node of a replaced document either as stale or, at times, as an
        # "unknown error: Node with given id does not belong to the document": both mean gone.
        try:
            old.is_enabled()
            return False
        except WebDriverException:
            return True

    WebDriverWait(browser, 10).until(gone)
    WebDriverWait(browser, 10).until(lambda b: b.execute_script("return document.readyState") == "complete")


def api(server, path, body=None, method="POST"):
    r = requests.request(method, server.url + path, json=body)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def populated(server):
    exp_id = api(server, "/api/2.0/mlflow/experiments/create", {"name": "ui-experiment"})["experiment_id"]
    runs = []
    for i in range(120):
        run = api(server, "/api/2.0/mlflow/runs/create", {"experiment_id": exp_id, "run_name": f"run-{i:03d}", "start_time": 1_700_000_000_000 + i})["run"]
        rid = run["info"]["run_id"]
        acc = (i * 37 % 120) / 120
        api(server, "/api/2.0/mlflow/runs/log-batch", {
            "run_id": rid,
            "metrics": [{"key": "acc", "value": acc, "timestamp": 1, "step": 0}],
            "params": [{"key": "lr", "value": "0.01" if i % 2 else "0.1"}],
        })
        runs.append((rid, f"run-{i:03d}", acc))
    # Two runs with long loss curves for the charts.
    for rid, _, _ in runs[:2]:
        for chunk in range(0, 2000, 500):
            api(server, "/api/2.0/mlflow/runs/log-batch", {
                "run_id": rid,
                "metrics": [{"key": "loss", "value": math.exp(-s / 500) + (0.01 if rid == runs[0][0] else 0.05), "timestamp": 2, "step": s} for s in range(chunk, chunk + 500)],
            })
    api(server, "/api/2.0/mlflow/registered-models/create", {"name": "churn"})
    for _ in range(2):
        api(server, "/api/2.0/mlflow/model-versions/create", {"name": "churn", "source": f"runs:/{runs[0][0]}/model", "run_id": runs[0][0]})
    api(server, "/api/2.0/mlflow/registered-models/alias", {"name": "churn", "alias": "champion", "version": "2"})
    return exp_id, runs


def test_experiment_list_and_run_table(server, browser, populated):
    exp_id, runs = populated
    browser.get(server.url + "/")
    assert "Experiments" in browser.find_element(By.TAG_NAME, "h1").text
    link = browser.find_element(By.LINK_TEXT, "ui-experiment")
    row = link.find_element(By.XPATH, "./ancestor::tr")
    assert "120" in row.text
    follow(browser, link.click)
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("ui-experiment")
    rows = browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    assert len(rows) == 50, "the server returns one page of 50 runs"
    assert "Runs 1–50 of 120" in browser.find_element(By.ID, "pager").text
    # Newest first by default.
    assert rows[0].find_elements(By.TAG_NAME, "a")[0].text == "run-119"

    # Sort by the acc column: descending, then ascending.
    follow(browser, browser.find_element(By.CSS_SELECTOR, "th.sortable a[data-sort='metrics.`acc`']").click)
    values = [float(c.text) for c in browser.find_elements(By.CSS_SELECTOR, "#runs tbody td[data-key='metrics.acc']")]
    assert values == sorted(values, reverse=True) and values[0] == pytest.approx(max(a for _, _, a in runs), abs=1e-5)
    follow(browser, browser.find_element(By.CSS_SELECTOR, "th.sortable a[data-sort='metrics.`acc`']").click)
    values = [float(c.text) for c in browser.find_elements(By.CSS_SELECTOR, "#runs tbody td[data-key='metrics.acc']")]
    assert values == sorted(values) and values[0] == pytest.approx(min(a for _, _, a in runs), abs=1e-5)

    # Next page holds the following runs.
    follow(browser, browser.find_element(By.CSS_SELECTOR, "a[rel=next]").click)
    assert "Runs 51–100 of 120" in browser.find_element(By.ID, "pager").text
    page2 = [float(c.text) for c in browser.find_elements(By.CSS_SELECTOR, "#runs tbody td[data-key='metrics.acc']")]
    assert min(page2) >= max(values)

    # Filter with MLflow's grammar; a bad filter shows a message instead of failing.
    browser.get(server.url + f"/experiments/{exp_id}")
    box = browser.find_element(By.NAME, "filter")
    box.send_keys("metrics.acc > 0.9 and params.lr = '0.1'")
    follow(browser, box.submit)
    shown = browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    expected = [name for (_, name, acc) in runs if acc > 0.9 and int(name[-3:]) % 2 == 0]
    assert sorted(r.find_elements(By.TAG_NAME, "a")[0].text for r in shown) == sorted(expected)
    browser.get(server.url + f"/experiments/{exp_id}?filter=metrics.acc+%3E")
    assert browser.find_element(By.ID, "filter-error").is_displayed()


def test_compare_runs(server, browser, populated):
    exp_id, runs = populated
    browser.get(server.url + f"/experiments/{exp_id}?order=attributes.run_name+ASC")
    button = browser.find_element(By.ID, "compare")
    assert not button.is_enabled()
    boxes = browser.find_elements(By.CSS_SELECTOR, "#runs tbody input[name=runs]")
    boxes[0].click()
    boxes[1].click()
    assert button.is_enabled() and "Compare 2 runs" in button.text
    follow(browser, button.click)
    assert "Compare 2 runs" in browser.find_element(By.TAG_NAME, "h1").text
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#compare-table thead th")]
    assert headers[1:] == ["run-000", "run-001"]
    diff_rows = [r.find_element(By.TAG_NAME, "th").text for r in browser.find_elements(By.CSS_SELECTOR, "#compare-table tr.diff")]
    assert "param lr" in diff_rows and "acc" in diff_rows
    # The loss chart overlays both runs.
    loss_chart = browser.find_element(By.CSS_SELECTOR, "svg.chart[aria-label='loss']")
    assert len(loss_chart.find_elements(By.TAG_NAME, "polyline")) == 2


def test_run_page_charts_are_downsampled_on_the_server(server, browser, populated):
    _, runs = populated
    rid = runs[0][0]
    browser.get(server.url + f"/runs/{rid}")
    assert browser.find_element(By.ID, "run-name").text == "run-000"
    chart = browser.find_element(By.CSS_SELECTOR, "svg.chart[aria-label='loss']")
    points = chart.find_element(By.TAG_NAME, "polyline").get_attribute("points").split()
    assert 100 <= len(points) <= 400, f"2000 logged points should arrive as at most 400, got {len(points)}"
    params = {r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1].text
              for r in browser.find_elements(By.CSS_SELECTOR, "#params tbody tr")}
    assert params == {"lr": "0.1"}
    browser.save_screenshot(os.path.join(loomproc.ROOT, ".tmp", "ui-run-page.png"))


def test_model_registry_pages(server, browser, populated):
    browser.get(server.url + "/models")
    row = browser.find_element(By.LINK_TEXT, "churn").find_element(By.XPATH, "./ancestor::tr")
    assert "v2" in row.text and "@champion → v2" in row.text
    follow(browser, browser.find_element(By.LINK_TEXT, "churn").click)
    versions = browser.find_elements(By.CSS_SELECTOR, "#versions tbody tr")
    assert [v.find_elements(By.TAG_NAME, "td")[0].text for v in versions] == ["v2", "v1"]
    assert "@champion" in versions[0].text


def test_dataset_pages(server, browser, populated):
    for body in (b"city,temp\nOslo,3.5\nLima,\n", b"city,temp\nOslo,3.5\nLima,19\nRome,14\n"):
        r = requests.post(server.url + "/api/v1/datasets/weather/versions", params={"file_name": "w.csv"}, data=body)
        assert r.status_code == 201, r.text
    browser.get(server.url + "/datasets")
    row = browser.find_element(By.LINK_TEXT, "weather").find_element(By.XPATH, "./ancestor::tr")
    assert "v2" in row.text
    follow(browser, browser.find_element(By.LINK_TEXT, "weather").click)
    assert browser.find_element(By.ID, "profile-title").text == "Profile of v2"
    columns = browser.find_elements(By.CSS_SELECTOR, "#profile tbody tr")
    assert [c.find_elements(By.TAG_NAME, "td")[1].text for c in columns] == ["string", "number"]
    follow(browser, browser.find_element(By.LINK_TEXT, "v1").click)
    assert browser.find_element(By.ID, "profile-title").text == "Profile of v1"
    assert "1 missing" in browser.find_elements(By.CSS_SELECTOR, "#profile tbody tr")[1].text


def test_missing_pages_are_friendly(server, browser, populated):
    browser.get(server.url + "/runs/0123456789abcdef0123456789abcdef")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
    r = requests.get(server.url + "/runs/0123456789abcdef0123456789abcdef")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
