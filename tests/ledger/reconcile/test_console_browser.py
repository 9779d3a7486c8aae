"""The finance console in a real headless Chromium (Debian's chromium and chromedriver, driven
by Selenium; `make test` installs them through scripts/chromium.sh): sign in, import, review,
match, sign off, close, download. A screenshot of each page is saved under the run's output
directory (`ECOVALUE_TEST_OUTPUT`, default `test-output/` at the top of the repository)."""

from __future__ import annotations

import io
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import time_machine
from openpyxl import load_workbook
from werkzeug.serving import make_server

from ecovalue.auth import system_principal
from ecovalue.auth.services import create_token
from tests.ledger.reconcile.conftest import AFTER, csv_bytes, day, pay

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1800", "--lang=zh-CN")


@pytest.fixture()
def output_dir(request) -> Path:
    base = Path(os.environ.get("ECOVALUE_TEST_OUTPUT", ROOT / "test-output"))
    folder = base / "console" / f"{request.node.name}-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture()
def server(app) -> Iterator[str]:
    """The test app served over HTTP on a free port, in a thread."""
    with time_machine.travel(AFTER, tick=True):
        httpd = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{httpd.server_port}"
        finally:
            httpd.shutdown()
            thread.join(timeout=10)


@pytest.fixture()
def browser(tmp_path, output_dir) -> Iterator:
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), \
        "headless Chromium missing: run scripts/chromium.sh (make test does)"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    driver.downloads = downloads  # type: ignore[attr-defined]
    try:
        yield driver
    finally:
        driver.quit()


def finance_token(database, name: str) -> str:
    with database.unit_of_work() as s:
        return create_token(s, system_principal("test"), name=name, role="finance").secret


def test_sign_in_import_review_match_sign_off_close_download(
        app, database, world, server, browser, output_dir, tmp_path):
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    with database.unit_of_work() as s:
        grant = pay(s, "BANK", "FUND", 500_000_00, day(3), reference="GZ-2024-031")
        late = pay(s, "BANK", "FUND", 80_000_00, day(10))
    preparer, signer = finance_token(database, "preparer"), finance_token(database, "signer")
    statement = tmp_path / "march.csv"
    statement.write_bytes(csv_bytes([
        (day(3).isoformat(), "S1", "500000.00", None, "500000.00", "州财政局", "GZ-2024-031",
         None),
        (day(25).isoformat(), "S2", "80000.00", None, "580000.00", "某电厂", None, "货款"),
        (day(31).isoformat(), "S3", "12.34", None, "580012.34", "银行", None, "利息"),
    ], encoding="gbk"))
    # a look-up that lands while a submitted form navigates is "aborted by navigation" (seen
    # on the loaded shared machine): polled again, as a missing element is, until the timeout
    wait = WebDriverWait(browser, 30, ignored_exceptions=(WebDriverException,))
    shots = iter(range(1, 100))

    def shot(name: str) -> None:
        browser.save_screenshot(str(output_dir / f"{next(shots):02d}-{name}.png"))

    def submit(element) -> None:
        """Click a control that loads a new page, and wait until the old page is gone."""
        page = browser.find_element(By.TAG_NAME, "html")
        element.click()
        wait.until(ec.staleness_of(page))

    def sign_in(token: str) -> None:
        browser.get(f"{server}/console/")
        wait.until(ec.url_contains("/console/signin"))
        field = browser.find_element(By.ID, "token")
        assert browser.switch_to.active_element == field  # focused: type right away
        field.send_keys(token, Keys.ENTER)  # keyboard only
        wait.until(ec.presence_of_element_located((By.ID, "upload-form")))

    # sign in: a wrong token first
    browser.get(f"{server}/console/signin")
    shot("signin")
    browser.find_element(By.ID, "token").send_keys("not-a-token", Keys.ENTER)
    assert "令牌无效" in wait.until(ec.presence_of_element_located((By.CLASS_NAME, "alert"))).text
    sign_in(preparer)
    shot("home")

    # import, with the progress bar
    browser.find_element(By.ID, "account").send_keys("FUND")
    browser.find_element(By.ID, "period").send_keys("2024-03")
    browser.find_element(By.ID, "file").send_keys(str(statement))
    # whether the progress bar shows once the form is submitted, noted by a listener that runs
    # after the console's own (registered later) and kept across the navigation that follows:
    # looking for the bar after the click raced the upload, which can finish first
    browser.execute_script("""
        document.getElementById("upload-form").addEventListener("submit", function () {
          var box = document.getElementById("upload-progress");
          sessionStorage.setItem("progressShown",
                                 String(!box.hidden && getComputedStyle(box).display !== "none"));
        });""")
    browser.find_element(By.ID, "upload").click()
    imported = wait.until(ec.presence_of_element_located((By.ID, "imported")))
    assert browser.execute_script("return sessionStorage.getItem('progressShown')") == "true"
    assert "3" in imported.text
    shot("statement")

    # review
    submit(browser.find_element(By.ID, "run"))
    wait.until(ec.presence_of_element_located((By.ID, "reconciliation")))
    assert browser.find_element(By.ID, "balanced").text.startswith("是")
    # the late payment on both sides (15 days apart, another name) and the interest
    assert browser.find_element(By.ID, "unresolved").text == "3"
    shot("review")
    rows = browser.find_elements(By.CSS_SELECTOR, "#items tbody tr")
    assert {r.get_attribute("class") for r in rows} == {"status-open", "status-confirmed"}

    # match by hand: the late payment (no reference, another name, beyond every window)
    browser.find_element(By.ID, "line-2").click()
    browser.find_element(By.ID, f"tx-{late}").click()
    browser.find_element(By.ID, "match-reason").send_keys("电厂迟付，电话确认 paid late")
    submit(browser.find_element(By.ID, "match"))
    wait.until(ec.presence_of_element_located((By.ID, "done")))
    assert browser.find_element(By.ID, "unresolved").text == "1"
    shot("matched")
    interest = next(r for r in browser.find_elements(By.CSS_SELECTOR, "#items tbody tr")
                    if "status-open" in r.get_attribute("class"))
    item_id = interest.get_attribute("id").removeprefix("item-")
    browser.find_element(By.ID, f"explain-reason-{item_id}").send_keys("三月利息，四月入账")
    submit(browser.find_element(By.ID, f"explain-{item_id}"))
    wait.until(ec.presence_of_element_located((By.ID, "done")))
    assert browser.find_element(By.ID, "unresolved").text == "0"

    # the preparer may not sign off
    submit(browser.find_element(By.ID, "signoff"))
    error = wait.until(ec.presence_of_element_located((By.ID, "error")))
    assert "four-eyes" in error.text
    shot("signoff-refused")

    # a form posted without its CSRF token is refused, nothing changes
    browser.back()
    wait.until(ec.presence_of_element_located((By.ID, "signoff")))
    browser.execute_script(
        "document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove());")
    submit(browser.find_element(By.ID, "signoff"))
    error = wait.until(ec.presence_of_element_located((By.ID, "error")))
    assert "csrf-token-missing" in error.text and "CSRF" in error.text
    shot("csrf-refused")

    # another finance officer signs off and closes the month
    browser.delete_all_cookies()
    sign_in(signer)
    submit(browser.find_element(By.CSS_SELECTOR, "#runs tbody a"))
    wait.until(ec.presence_of_element_located((By.ID, "signoff")))
    browser.find_element(By.ID, "signoff-note").send_keys("与农行对账单一致 agrees")
    submit(browser.find_element(By.ID, "signoff"))
    assert wait.until(ec.presence_of_element_located((By.ID, "run-status"))).text \
        == "signed_off"
    shot("signed-off")
    submit(browser.find_element(By.ID, "close"))
    wait.until(ec.presence_of_element_located((By.ID, "closed")))
    assert "资金余额" in browser.page_source and "Fund balances" in browser.page_source
    shot("report")

    # download the report
    browser.find_element(By.ID, "download").click()
    deadline = time.monotonic() + 30
    target = browser.downloads / "report-2024-03.xlsx"
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    book = load_workbook(io.BytesIO(target.read_bytes()))
    assert book.sheetnames[0] == "资金余额 Fund balances"
    funds = {row[0]: row for row in book["资金余额 Fund balances"].iter_rows(values_only=True)}
    assert funds["FUND"][2:6] == (0, 580_000_00, 0, 580_000_00)
    assert grant != late
    assert len(list(output_dir.glob("*.png"))) == 9


def test_a_console_form_without_csrf_token_is_refused(client, database, world):
    secret = finance_token(database, "officer")
    client.set_cookie("ecovalue_console", secret, path="/console")
    refused = client.post("/console/runs", data={"account": "FUND", "period": "2024-03"})
    assert refused.status_code == 400
    assert "CSRF" in refused.get_data(as_text=True)
    wrong = client.post("/console/runs", data={"account": "FUND", "period": "2024-03",
                                               "csrf_token": "0" * 40})
    assert wrong.status_code == 400
    signin = client.post("/console/signin", data={"token": secret})
    assert signin.status_code == 400  # the sign-in form too
