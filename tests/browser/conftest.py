"""conftest: the admin page's browser tests (docs/live-view.md): one headless Chromium for the
whole module (driven by chromium-driver through python3-selenium), and the per-test process
registry of tests/integration (everything a test starts is stopped by PID at teardown)."""
import os
import pathlib
import shutil
import sys
import tempfile

import pytest

kHere = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(kHere.parent / "integration"))

import lsm  # noqa: E402

# kShots: where screenshots go ($LINESMAN_SHOTS, else build/browser-shots in the repo).
kShots = pathlib.Path(os.environ.get("LINESMAN_SHOTS", lsm.kRepo / "build" / "browser-shots"))


def no_browser(why: str):
    """no_browser: a skip naming what is missing, or a failure when the run requires the browser
    (LINESMAN_REQUIRE_BROWSER=1, set by tools/scripts/test.sh after setup.sh installed it)."""
    msg = f"{why} (tools/scripts/setup.sh installs chromium, chromium-driver, python3-selenium)"
    if os.environ.get("LINESMAN_REQUIRE_BROWSER") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture
def reg(tmp_path):
    r = lsm.Registry(tmp_path)
    yield r
    r.close()


@pytest.fixture(scope="module")
def driver():
    """driver: one headless Chromium per module; each test loads its own page."""
    chromium = shutil.which("chromium")
    chromedriver = shutil.which("chromedriver")
    if not chromium or not chromedriver:
        no_browser("chromium or chromedriver is not installed")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        no_browser("python3-selenium is not installed")
    profile = tempfile.mkdtemp(prefix="linesman-chromium-")
    opts = Options()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-proxy-server", "--window-size=1400,1100", "--no-first-run",
              "--disable-extensions", "--disable-background-networking",
              f"--user-data-dir={profile}"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(chromedriver), options=opts)
    d.set_page_load_timeout(15)
    kShots.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {kShots}")
    try:
        yield d
    finally:
        d.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(reg, driver):
    """page: the module's browser for one test. Afterwards it leaves the page (about:blank)
    before the test's processes stop, so a page still polling a stopped linesman puts no errors
    in the next test's console, and drops what the console holds."""
    driver.get("about:blank")
    driver.get_log("browser")
    yield driver
    driver.get("about:blank")
    driver.get_log("browser")
