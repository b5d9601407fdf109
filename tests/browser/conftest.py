"""One Debian Chromium (never a downloaded browser) and one app server for every browser module
that can share them. Tests that need a server of their own (a fresh one, other limits) start it."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.live_app import CHROMIUM, QUIET_SERVER_ENV, ROOT, launch_chromium, streamlit_server
from tests.browser.browsing import no_uncaught


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: run `bash scripts/setup.sh` (installs Debian's Chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


class Tabs:
    """A module's open tabs, one per set of context options, which its tests take turns in. A new
    tab cost Chromium about a CPU-second more than loading the app again in an open one: its renderer
    compiles the app's scripts afresh (docs/testing.md). After each test its tab goes blank, which ends
    that student's session as closing the tab did."""

    def __init__(self, browser):
        self.browser, self.pages = browser, {}

    def open(self, **options):
        key = repr(sorted(options.items()))
        if key not in self.pages:
            self.pages[key] = self.browser.new_context(**options).new_page()
        return self.pages[key]

    def blank(self):
        for page in self.pages.values():
            page.goto("about:blank")

    def close(self):
        for page in self.pages.values():
            page.context.close()


@pytest.fixture(scope="module")
def tabs(browser):
    module_tabs = Tabs(browser)
    yield module_tabs
    module_tabs.close()


@pytest.fixture(autouse=True)
def _blank_tabs_after(request):
    yield
    if "tabs" in request.fixturenames:
        request.getfixturevalue("tabs").blank()


@pytest.fixture(scope="session")
def live(browser):
    """(url, process) of the app shared by the browser modules: two runs at a time, and no ceiling
    on a run's seconds, so a long run that a test stops mid-way is never refused up front by the
    estimate of a loaded test machine."""
    log = ROOT / "test-output" / "streamlit.log"
    with streamlit_server({**QUIET_SERVER_ENV, "NST_MAX_RUNS": "2", "NST_MAX_RUN_S": "3600"}, log) as run:
        yield run
    no_uncaught(log)  # after every browser module that shared it


@pytest.fixture(scope="session")
def server(live):
    return live[0]
