"""The explainer pages (and Stylize) on a phone, 390×844 in headless Chromium: nothing sticks out
past the screen's edge, and a formula wider than the screen scrolls inside its own box.

Run these alone with `.venv/bin/python -m pytest tests/browser/test_browser_phone.py`.
"""

from __future__ import annotations

import re

import pytest

from scripts.live_app import LONG_RUN, wait_idle
from tests.browser.browsing import SHOTS, no_exceptions

pytestmark = pytest.mark.browser
FAST = "?weights_source=random&arch=vgg16&size=128"
PHONE = {"width": 390, "height": 844}
# Each page with a text its last section shows once it has finished drawing: a page is only
# measured whole, not half-drawn while a computation still runs.
PAGES = {
    "": re.compile("Run"),  # the Run button's name
    "activations": "Look for:",  # beside the top-9 patches, drawn last
    "gram": "the activations moved by",
    "experiments": "Recompute on your images",
    "how_it_works": "Measured on",
}

# Everything shown in the app that reaches past the right edge of the screen, unless it lies in a
# box inside the page that scrolls sideways on its own (a formula, a table's grid, a row of tags).
# The app's main area itself scrolls too, so a figure wider than the screen would not widen the
# page: it would make the whole lesson slide sideways. That area does not count as a box.
STICKING_OUT = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const vw = document.documentElement.clientWidth;
  const scrollsAlone = a => a !== main && ['auto', 'scroll'].includes(getComputedStyle(a).overflowX)
                            && a.getBoundingClientRect().right <= vw + 1;
  const out = [];
  for (const e of main.querySelectorAll('*')) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.right <= vw + 1) continue;
    if (!e.checkVisibility({visibilityProperty: true})) continue;  // e.g. inside a closed expander
    let a = e.parentElement;
    while (a && a !== main && !scrollsAlone(a)) a = a.parentElement;
    if (a && a !== main) continue;
    const widget = e.closest('[data-testid^="st"]');
    out.push(`${e.tagName.toLowerCase()} in ${widget ? widget.getAttribute('data-testid') : '?'} `
             + `"${(e.innerText || '').slice(0, 30)}" right=${Math.round(r.right)}`);
  }
  return out;
}"""
MAIN_WIDTH = """() => { const m = document.querySelector('[data-testid="stMain"]'); return [m.scrollWidth, m.clientWidth]; }"""

FORMULAS = """() => [...document.querySelectorAll('.katex-display')].map(e => ({
  text: e.innerText.slice(0, 40), scroll: e.scrollWidth, client: e.clientWidth,
  overflow: getComputedStyle(e).overflowX, right: e.getBoundingClientRect().right}))"""


@pytest.fixture
def phone(tabs):
    return tabs.open(viewport=PHONE, is_mobile=True, has_touch=True)


@pytest.mark.parametrize("path", list(PAGES))
def test_nothing_is_clipped_on_a_phone(server, phone, path):
    phone.goto(f"{server}/{path}{FAST}")
    wait_idle(phone, timeout=240)
    done = PAGES[path]
    marker = phone.get_by_role("button", name=done) if isinstance(done, re.Pattern) else phone.get_by_text(done)
    marker.first.wait_for(timeout=240_000)
    wait_idle(phone, timeout=240)
    no_exceptions(phone)
    SHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SHOTS / f"phone_{path or 'stylize'}.png"))

    width = phone.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width[0]} px of content on a {width[1]} px screen"
    main = phone.evaluate(MAIN_WIDTH)
    assert main[0] <= main[1], f"the lesson slides sideways: {main[0]} px of content in {main[1]} px"
    sticking_out = phone.evaluate(STICKING_OUT)
    assert sticking_out == [], "\n".join(sticking_out)
    formulas = phone.evaluate(FORMULAS)
    for f in formulas:
        assert f["right"] <= PHONE["width"] + 1, f
        if f["scroll"] > f["client"] + 1:  # wider than its box: it must scroll inside it, not be cut off
            assert f["overflow"] in ("auto", "scroll"), f
    if path in ("gram", "how_it_works"):
        assert formulas, "the formulas were not drawn"
    if path == "":  # the style layers' chips wrap: on one line, those past the third were hidden
        phone.get_by_text("Advanced: layers").click()
        chips = phone.locator('[data-testid="stMultiSelect"] [data-tag]:visible')
        chips.first.wait_for()
        boxes = [chips.nth(i).bounding_box() for i in range(chips.count())]
        assert len(boxes) == 5 and all(b["x"] + b["width"] <= PHONE["width"] - 16 for b in boxes), boxes


def test_a_new_layer_starts_from_its_own_channel(server, phone):
    """A channel picked on conv3_1 (256 channels) must not follow the student to conv1_1 (64):
    conv5_1 once kept channel 16 with a stale activation of 0."""
    phone.goto(f"{server}/activations{FAST}")
    wait_idle(phone, timeout=240)
    phone.get_by_text(PAGES["activations"]).first.wait_for(timeout=240_000)
    channel = phone.locator('[data-testid="stNumberInput"]').filter(has_text="Channel (0–255)").locator("input")
    channel.fill("200")
    channel.press("Enter")
    phone.get_by_text("Which patches excite channel 200").first.wait_for(timeout=120_000)
    layer = phone.locator('[data-testid="stSlider"]').filter(has_text="Layer").first.get_by_role("slider")
    layer.focus()
    layer.press("Home")  # the first layer, conv1_1
    fresh = phone.locator('[data-testid="stNumberInput"]').filter(has_text="Channel (0–63)").locator("input")
    fresh.wait_for(timeout=240_000)
    wait_idle(phone, timeout=240)
    assert 0 <= int(fresh.input_value()) <= 63
    no_exceptions(phone)


def test_run_is_on_a_phones_first_screen(server, phone):
    """Both pictures, the preset and Run fit the first screen: a student should not scroll to start.
    Pressing Run says so on that screen, and a Stop pressed at once ends the run."""
    phone.goto(f"{server}/{LONG_RUN}&seed=390")
    wait_idle(phone, timeout=240)
    run = phone.get_by_role("button", name="▶ Run")
    run.wait_for(timeout=120_000)
    box = run.bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"], box
    # The run's panel opens below the fold: the first screen must say the run has started.
    run.click()
    running = phone.get_by_text("Running: its preview and Stop")
    running.wait_for(timeout=60_000)
    box = running.bounding_box()
    assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= PHONE["height"], box
    phone.screenshot(path=str(SHOTS / "phone_running.png"))
    # Stop at once, most likely before the first step is drawn: such a Stop was lost, and the page
    # followed the run again for its 400 steps.
    phone.get_by_role("button", name="⏹ Stop").click()
    wait_idle(phone, timeout=30)
    assert phone.get_by_text(re.compile(r"Step \d+ of 400")).count() == 0
    no_exceptions(phone)
