"""Projector first, in a real browser: on a 1920×1080 screen the Run button, then the run's progress
and live preview, then its result, lie in the viewport without scrolling; at 1280×720 after at most
one scroll. Presentation mode hides the settings and keeps across pages; A/B runs leave no Stop
button behind. Screenshots go to test-output/screenshots/.

Run these alone with `.venv/bin/python -m pytest tests/browser/test_browser_projector.py`.
"""

from __future__ import annotations

import re

import pytest

from scripts.live_app import LONG_RUN, wait_idle
from tests.browser.browsing import FAST, SHOTS, no_exceptions, upload_photo

pytestmark = pytest.mark.browser
STAGE = ".st-key-stage"  # the container Stylize draws the run and its result in (st.container(key="stage"))


def in_view(page, locator) -> bool:
    """The element's whole box lies inside the viewport as the page is scrolled now."""
    box = locator.bounding_box()
    view = page.viewport_size
    return (box is not None and box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= view["width"] + 1
            and box["y"] + box["height"] <= view["height"] + 1)


@pytest.mark.parametrize("width, height, scrolls", [(1920, 1080, 0), (1280, 720, 1)])
def test_run_progress_preview_and_result_are_in_view(server, tabs, width, height, scrolls):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = tabs.open(viewport={"width": width, "height": height})
    # A seed of its own: the server shares identical runs, and a run already computed is served at once.
    page.goto(server + "/" + LONG_RUN + f"&seed={width}")
    wait_idle(page)
    run = page.get_by_role("button", name="▶ Run")
    run.wait_for(timeout=60_000)
    stage = page.locator(STAGE)
    if scrolls:  # the one scroll allowed: bring the stage into view, if it is not already
        stage.scroll_into_view_if_needed()
    assert in_view(page, run), f"Run button out of view at {width}×{height}: {run.bounding_box()}"
    page.screenshot(path=str(SHOTS / f"projector_{width}x{height}_open.png"))
    run.click()

    progress = stage.locator('[data-testid="stProgress"]').first
    preview = stage.locator('[data-testid="stImage"] img').first
    progress.wait_for(timeout=90_000)
    preview.wait_for(timeout=90_000)
    page.get_by_text(re.compile(r"Step \d+(/| of )400")).first.wait_for(timeout=90_000)
    assert in_view(page, progress), f"progress out of view: {progress.bounding_box()}"
    assert in_view(page, preview), f"live preview out of view: {preview.bounding_box()}"
    # The pointer still rests on Run: no tooltip may cover the presets beside it on the projector.
    assert page.locator('[data-testid="stTooltipContent"]').count() == 0, "a tooltip covers the page"
    page.screenshot(path=str(SHOTS / f"projector_{width}x{height}_running.png"))
    stop = page.get_by_role("button", name="⏹ Stop")
    assert in_view(page, stop)
    stop.click()

    page.get_by_text("Latest result").wait_for(timeout=60_000)
    wait_idle(page)
    no_exceptions(page)
    result = stage.locator('[data-testid="stImage"] img').first
    assert in_view(page, page.get_by_text("Latest result")), "the result's heading is out of view"
    assert in_view(page, result), f"result out of view: {result.bounding_box()}"
    page.screenshot(path=str(SHOTS / f"projector_{width}x{height}_result.png"))


def test_a_portrait_upload_leaves_run_in_view_at_1280x720(server, tabs, tmp_path):
    """A tall photo drawn at the column's full width pushed Run below a 720 px projector's fold."""
    page = tabs.open(viewport={"width": 1280, "height": 720})
    page.goto(server + "/" + FAST)
    wait_idle(page)
    upload_photo(page, tmp_path / "portrait.png", size=(600, 900))
    page.get_by_text("portrait.png").first.wait_for(timeout=60_000)
    wait_idle(page)
    run = page.get_by_role("button", name="▶ Run")
    assert in_view(page, run), f"Run below the fold with a portrait photo: {run.bounding_box()}"
    page.screenshot(path=str(SHOTS / "projector_1280x720_portrait.png"))
    no_exceptions(page)


def test_presentation_mode_hides_the_settings_and_keeps_across_pages(server, tabs):
    page = tabs.open(viewport={"width": 1920, "height": 1080})
    page.goto(server + "/" + FAST)
    wait_idle(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    advanced = page.get_by_text("Advanced: layers, weights, optimizer")
    assert sidebar.is_visible() and advanced.count() == 1
    width_before = page.locator(STAGE).bounding_box()["width"]

    page.get_by_text("Presentation mode").first.click()
    wait_idle(page)
    assert not sidebar.is_visible() and advanced.count() == 0
    assert page.locator(STAGE).bounding_box()["width"] > 1.3 * width_before  # the picture gets the room
    assert in_view(page, page.get_by_role("button", name="▶ Run"))
    assert "present=true" in page.url
    page.screenshot(path=str(SHOTS / "projector_presentation.png"))

    for title, heading in [("Cost curves", "Cost curves"), ("Stylize", "Stylize")]:
        page.get_by_role("link", name=title).first.click()
        wait_idle(page)
        page.get_by_role("heading", name=re.compile(heading)).first.wait_for(timeout=60_000)
        assert not sidebar.is_visible(), f"the sidebar came back on {title}"
        assert "present=true" in page.url
        no_exceptions(page)
    assert advanced.count() == 0
    page.get_by_text("Presentation mode").first.click()  # and back: the settings return
    wait_idle(page)
    assert sidebar.is_visible() and advanced.count() == 1


def test_ab_runs_leave_no_stop_button_and_are_named_by_what_differs(server, tabs):
    page = tabs.open(viewport={"width": 1920, "height": 1080})
    page.goto(server + "/cost_curves" + FAST)
    wait_idle(page)
    page.get_by_role("button", name="Run A, then B").click()
    page.get_by_text(re.compile("finished: they are overlaid")).wait_for(timeout=180_000)
    wait_idle(page)
    no_exceptions(page)
    assert page.get_by_role("button", name=re.compile("Stop")).count() == 0
    # The default A/B varies the content layer: the overlay names each run by it, and by nothing else.
    chosen = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Runs to overlay").first.inner_text()
    assert re.search(r"Run 1 · content layer conv2_2", chosen) and re.search(r"Run 2 · content layer conv3_2",
                                                                            chosen), chosen
    assert "default" not in chosen, chosen
    page.screenshot(path=str(SHOTS / "cost_curves_after_ab.png"))
