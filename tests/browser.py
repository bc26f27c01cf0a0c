"""Headless Chromium for the page tests (Debian's ``chromium`` + ``chromium-driver``, selenium).

Missing browser: the test fails in CI (``CI=true``; ``.ci/run`` installs the
packages with apt) and is skipped with the reason on a developer machine.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _missing(reason: str):
    message = (f"{reason}; install it with `sudo apt-get install -y chromium chromium-driver` "
               "and `pip install -e '.[test]'` (see README, 'Browser tests')")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("browser tests cannot run in CI: " + message)
    pytest.skip(message)


def chrome(download_dir=None, width: int = 1100, height: int = 900):
    """A headless Chromium WebDriver with a download folder and performance log."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed")
    binary = next((shutil.which(b) for b in BINARIES if shutil.which(b)), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        _missing("chromium or chromedriver is not on PATH")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required", f"--window-size={width},{height}",
                "--allow-file-access-from-files"):
        opts.add_argument(arg)
    if download_dir is not None:
        opts.add_experimental_option("prefs", {"download.default_directory": str(download_dir),
                                               "download.prompt_for_download": False})
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    opts.set_capability("unhandledPromptBehavior", "accept")  # leave a page that asks to stay
    return webdriver.Chrome(service=Service(driver_path), options=opts)


def requested_urls(driver) -> list[str]:
    """Every URL the page requested so far (DevTools Network events)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls
