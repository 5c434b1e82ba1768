"""The HTML report in a real headless browser: every figure decodes, no console error.

Needs Debian's chromium and chromium-driver (installed by .ci/run).
"""
import shutil

import pytest

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [pytest.mark.slow,  # reads the shared quick run
              pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                 reason="Debian chromium + chromium-driver not installed (.ci/run installs them)")]


def test_every_figure_of_the_html_report_is_shown(quick_report):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        driver.get((quick_report / "report.html").resolve().as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])")
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    finally:
        driver.quit()
    figures = {p.stem for p in (quick_report / "figures").glob("*.png")}
    assert {alt for alt, *_ in images} == figures
    assert all(complete and width > 100 and height > 50 for _, complete, width, height in images)
    assert errors == []
