"""End to end in a real headless Chromium: the page uploads a photo through its file input,
shows progress, and displays the restored image with a before/after slider and a download
link. Skipped (with the reason) when Chromium, chromedriver or selenium is missing; CI
installs Debian's `chromium` and `chromium-driver` (see .ci/run)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

CHROMIUM = os.environ.get("UNIREMOVAL_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("UNIREMOVAL_CHROMEDRIVER", "/usr/bin/chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
        reason=f"no browser: needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)",
    ),
]
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
pytest.importorskip("fastapi")

from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from uniremoval.restorer import Restorer  # noqa: E402
from uniremoval.serve import ServeSettings, create_app  # noqa: E402
from uniremoval.serve.background import serve_in_thread  # noqa: E402


@pytest.fixture(scope="module")
def server(random_model: Path) -> Iterator[str]:
    restorer = Restorer.from_pretrained(random_model, device="cpu", precision="fp32")
    with serve_in_thread(create_app(restorer, ServeSettings(max_upload_bytes=2 * 2**20))) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--window-size=1100,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        opts.add_argument(arg)
    # An explicit driver path: Selenium never runs selenium-manager (no downloads).
    service = Service(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _photo(path: Path, w: int = 96, h: int = 72) -> Path:
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 128)], -1).astype(np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def test_upload_shows_restored_image(server: str, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    browser.get(server + "/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "uniremoval"
    photo = _photo(tmp_path / "street.png")
    browser.find_element(By.ID, "file").send_keys(str(photo))
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") in ("done", "error"))
    status = browser.find_element(By.ID, "status").text
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "done", status
    after = browser.find_element(By.ID, "after")
    size = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", after)
    assert size == [96, 72]
    assert after.get_attribute("src").startswith("blob:")
    link = browser.find_element(By.ID, "download")
    assert link.get_attribute("href").startswith("blob:") and link.get_attribute("download") == "street_restored.png"
    assert browser.find_element(By.ID, "result").is_displayed()
    # The slider moves the split between before and after.
    browser.execute_script("var s=document.getElementById('slider'); s.value=20; s.dispatchEvent(new Event('input'));")
    assert "20%" in after.get_attribute("style")
    shots = os.environ.get("UNIREMOVAL_SCREENSHOT_DIR")
    if shots:
        browser.save_screenshot(str(Path(shots) / "serve_page.png"))


def test_bad_upload_shows_error(server: str, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    browser.get(server + "/")
    bogus = tmp_path / "holiday.png"
    bogus.write_bytes(b"this is not an image at all")
    browser.find_element(By.ID, "file").send_keys(str(bogus))
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "error")
    status = browser.find_element(By.ID, "status").text
    assert "415" in status and "not a supported image" in status
