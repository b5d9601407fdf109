"""The explainer pages (and Stylize) on a phone, 390×844 in headless Chromium: nothing sticks out
past the screen's edge, and a formula wider than the screen scrolls inside its own box.

Run these alone with `.venv/bin/python -m pytest tests/test_browser_phone.py`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.live_app import CHROMIUM, ROOT, exception_text, launch_chromium, streamlit_server, wait_idle

pytestmark = pytest.mark.browser
SHOTS = ROOT / "test-output" / "screenshots"
FAST = "?weights_source=random&arch=vgg16&size=128"
PHONE = {"width": 390, "height": 844}
# Each page with a text its last section shows once it has finished drawing: a page is only
# measured whole, not half-drawn while a computation still runs.
PAGES = {
    "": re.compile("Run"),  # the Run button's name
    "activations": "Which patches excite channel",
    "gram": "The Gram matrices moved by",
    "experiments": "Recompute on your images",
    "how_it_works": "Measured on",
}

# Everything inside the app that reaches past the right edge of the screen, unless it lies in a
# box made to scroll sideways on its own (a formula, a table's grid). The app's main area scrolls
# too, so a wide figure would not widen the page: it would make the whole lesson slide sideways.
OWN_SCROLL = '.katex-display, [data-testid="stDataFrame"], [data-testid="stTable"], [data-testid="stCode"]'
STICKING_OUT = """() => {
  const vw = document.documentElement.clientWidth;
  const out = [];
  for (const e of document.querySelectorAll('[data-testid="stMain"] *')) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.right <= vw + 1) continue;
    if (getComputedStyle(e).visibility === 'hidden') continue;
    const box = e.parentElement && e.parentElement.closest('%s');
    if (box && box.getBoundingClientRect().right <= vw + 1
        && ['auto', 'scroll'].includes(getComputedStyle(box).overflowX)) continue;
    out.push(`${e.tagName.toLowerCase()}[${e.getAttribute('data-testid') || e.className}] right=${Math.round(r.right)}`);
  }
  return out;
}""" % OWN_SCROLL
MAIN_WIDTH = """() => { const m = document.querySelector('[data-testid="stMain"]'); return [m.scrollWidth, m.clientWidth]; }"""

FORMULAS = """() => [...document.querySelectorAll('.katex-display')].map(e => ({
  text: e.innerText.slice(0, 40), scroll: e.scrollWidth, client: e.clientWidth,
  overflow: getComputedStyle(e).overflowX, right: e.getBoundingClientRect().right}))"""


@pytest.fixture(scope="module")
def app_and_browser():
    """The app on a free port and one Chromium, shared by the module's tests."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: run `bash scripts/setup.sh` (installs Debian's chromium)")
    from playwright.sync_api import sync_playwright
    with streamlit_server({"NST_WEIGHTS": None}, ROOT / "test-output" / "streamlit_phone.log") as (url, _), \
            sync_playwright() as p:
        chromium = launch_chromium(p)
        yield url, chromium
        chromium.close()


@pytest.fixture
def phone(app_and_browser):
    context = app_and_browser[1].new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("path", list(PAGES))
def test_nothing_is_clipped_on_a_phone(app_and_browser, phone, path):
    phone.goto(f"{app_and_browser[0]}/{path}{FAST}")
    wait_idle(phone, timeout=240)
    done = PAGES[path]
    marker = phone.get_by_role("button", name=done) if isinstance(done, re.Pattern) else phone.get_by_text(done)
    marker.first.wait_for(timeout=240_000)
    wait_idle(phone, timeout=240)
    problem = exception_text(phone)
    assert problem is None, problem
    SHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SHOTS / f"phone_{path or 'stylize'}.png"))

    width = phone.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width[0]} px of content on a {width[1]} px screen"
    main = phone.evaluate(MAIN_WIDTH)
    assert main[0] <= main[1], f"the lesson slides sideways: {main[0]} px of content in {main[1]} px"
    assert phone.evaluate(STICKING_OUT) == []
    formulas = phone.evaluate(FORMULAS)
    for f in formulas:
        assert f["right"] <= PHONE["width"] + 1, f
        if f["scroll"] > f["client"] + 1:  # wider than its box: it must scroll inside it, not be cut off
            assert f["overflow"] in ("auto", "scroll"), f
    if path in ("gram", "how_it_works"):
        assert formulas, "the formulas were not drawn"
