"""Headless Chromium from Debian's packages, driven through its WebDriver (chromedriver).

Both binaries come from tests/setup_machine.sh (packages chromium and chromium-driver), so
Selenium never looks for a browser or driver of its own. The flags keep Chromium from reaching
out to any host on start (this machine has no network but loopback and the box).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",  # root on the test machine
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    """A fresh browser (its own empty profile: no cookies) for the duration of the block."""
    with tempfile.TemporaryDirectory(prefix="rehearsal-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(30)
        try:
            yield driver
        finally:
            driver.quit()
