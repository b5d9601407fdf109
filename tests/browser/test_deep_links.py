"""A first visit to a fresh server that lands on a page other than Stylize, then a reload: each page
loads with its link, on a server that has not run the app yet and on one that has. The reloaded
page's full-page screenshot goes to test-output/screenshots/page_<path>.png."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from scripts.live_app import QUIET_SERVER_ENV, ROOT, streamlit_server, wait_idle
from tests.browser.browsing import FAST, SHOTS, no_exceptions, no_uncaught

pytestmark = pytest.mark.browser
# Every page but Stylize, and its title.
DEEP_LINKS = {"activations": "What does each layer see?", "gram": "What is style, concretely?",
              "cost_curves": "Cost curves", "experiments": "Layer experiments", "how_it_works": "How it works"}


def _log(path: str):
    return ROOT / "test-output" / f"streamlit_fresh_{path}.log"


@pytest.fixture(scope="module")
def deep_linked(browser):
    """One fresh server per deep link, all started at once, each given its one first visit (the
    deep link) at once too; (page, server) by path, for the tests to check each page. The first
    visits overlap, rather than each waiting for its server's first page in turn. Five servers
    share the machine's cores, so each computes on one thread: with two, their threads waited for
    each other's turns on a core."""
    env = {**QUIET_SERVER_ENV, "OMP_NUM_THREADS": "1"}
    with ExitStack() as stack, ThreadPoolExecutor(len(DEEP_LINKS)) as pool:
        started = {path: pool.submit(stack.enter_context, streamlit_server(env, _log(path))) for path in DEEP_LINKS}
        pages = {}
        for path, server in started.items():
            context = browser.new_context(viewport={"width": 1400, "height": 1600})
            stack.callback(context.close)
            page = context.new_page()
            page.goto(f"{server.result()[0]}/{path}{FAST}&init=noise", wait_until="commit")
            pages[path] = page, server
        # Registered after every server has started, so it runs first: they wind down together.
        stack.callback(lambda: [server.result()[1].terminate() for server in started.values()])
        yield pages


@pytest.fixture
def fresh_page(deep_linked, path):
    """The deep link's page; its server stops once the test is done with it, rather than with the
    module: What layers see would otherwise go on preparing every layer for nobody."""
    page, server = deep_linked[path]
    yield page
    server.result()[1].terminate()
    no_uncaught(_log(path))


@pytest.mark.parametrize("path", list(DEEP_LINKS))
def test_deep_link_on_a_fresh_server_gets_the_full_app(fresh_page, path):
    """The first visit of a new server lands on a page other than the home page: it must still get the
    app's navigation, sidebar and the link's settings, not Streamlit's legacy pages/ listing."""
    page, title = fresh_page, DEEP_LINKS[path]
    wait_idle(page)
    heading = page.get_by_role("heading", name=re.compile(re.escape(title))).first
    heading.wait_for(timeout=60_000)  # the page's own title, not the navigation's link to it
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("Network").wait_for(timeout=60_000)
    assert sidebar.get_by_text("Network").count() == 1
    assert page.get_by_text("common", exact=True).count() == 0
    assert page.get_by_role("link", name="Stylize").count() >= 1  # the app's own navigation
    no_exceptions(page)
    assert "init=noise" in page.url and f"/{path}" in page.url
    page.reload()
    wait_idle(page)
    page.get_by_role("heading", name=re.compile(re.escape(title))).first.wait_for(timeout=60_000)
    no_exceptions(page)
    # The reload reads back the link the page itself wrote: it must find nothing to warn about.
    assert page.get_by_text("Ignored in the link").count() == 0
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"page_{path}.png"), full_page=True)
