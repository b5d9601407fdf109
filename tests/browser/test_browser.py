"""The real app in a real browser: `streamlit run` on a free localhost port, driven by Playwright
through Debian's Chromium (never a downloaded browser). Screenshots go to test-output/screenshots/.

Run these alone with `.venv/bin/python -m pytest -m browser`.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.browser.browsing import FAST, SHOTS, choose, no_exceptions, upload_photo
from tests.support import BAD_IMAGES
from scripts.live_app import LONG_RUN, FlakyNetwork, wait_idle
from scripts.load_test import SHORT_RUN, load_test, shared_pair

pytestmark = pytest.mark.browser


@pytest.fixture
def page(tabs):
    return tabs.open(viewport={"width": 1400, "height": 1600}, accept_downloads=True)


def _advanced(page):
    expander = page.get_by_text("Advanced: layers, weights, optimizer")
    if page.locator('[data-testid="stSelectbox"]').filter(has_text="Content layer").count() == 0 or \
            not page.locator('[data-testid="stSelectbox"]').filter(has_text="Content layer").first.is_visible():
        expander.click()


def _selected(box) -> str:
    """What a selectbox shows as chosen (its text, or its input's value where it has one)."""
    inputs = box.locator("input")
    shown = box.inner_text()
    return shown + " " + (inputs.first.input_value() if inputs.count() else "")


def _stylize_settings(page) -> dict:
    _advanced(page)
    box = page.locator('[data-testid="stSelectbox"]')
    return {"content_layer": _selected(box.filter(has_text="Content layer").first),
            "init": _selected(box.filter(has_text="Start from").first),
            "normalization": page.locator('[data-testid="stRadio"]').filter(has_text="Normalization").first
            .locator("input:checked").first.evaluate("e => e.closest('label').innerText")}


def test_settings_survive_every_page_a_reload_and_a_copied_link(server, browser, page):
    """The issue's steps: change three Stylize settings, visit every page, come back, reload, and
    open the copied address in a fresh browser: the settings are still the chosen ones."""
    page.goto(server + "/" + FAST)
    wait_idle(page)
    _advanced(page)
    choose(page, "Content layer", "conv2_2")
    wait_idle(page)
    choose(page, "Start from", "noise")
    wait_idle(page)
    page.get_by_text("Mean squared (PyTorch tutorial)").click()
    wait_idle(page)
    expected = _stylize_settings(page)
    assert "conv2_2" in expected["content_layer"] and "noise" in expected["init"]
    assert "Mean squared" in expected["normalization"]
    for title, marker in [("What layers see", "What does each layer see?"), ("Gram matrices", "What is style"),
                          ("Cost curves", "Start two runs"), ("Layer experiments", "with the Stylize settings"),
                          ("How it works", "mean-squared")]:
        page.get_by_role("link", name=title).first.click()
        wait_idle(page)
        page.get_by_text(marker).first.wait_for(timeout=60_000)
        no_exceptions(page)
        for query in ("content_layer=conv2_2", "init=noise", "normalization=mse"):
            assert query in page.url, (title, page.url)
    page.get_by_role("link", name="Stylize").first.click()
    wait_idle(page)
    assert _stylize_settings(page) == expected
    page.reload()
    wait_idle(page)
    assert _stylize_settings(page) == expected
    copied = page.url
    other = browser.new_context(viewport={"width": 1400, "height": 1600})
    fresh = other.new_page()
    fresh.goto(copied)
    wait_idle(fresh)
    assert _stylize_settings(fresh) == expected
    no_exceptions(fresh)
    assert fresh.get_by_text("Ignored in the link").count() == 0  # the page's own link reads back whole
    SHOTS.mkdir(parents=True, exist_ok=True)
    fresh.screenshot(path=str(SHOTS / "stylize_from_copied_link.png"), full_page=True)
    other.close()


def test_stylize_upload_run_download(server, page, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(server + "/" + FAST)
    wait_idle(page)
    no_exceptions(page)
    upload_photo(page, tmp_path / "photo.png")
    page.get_by_role("button", name="▶ Run").click()
    page.get_by_text("Latest result").wait_for(timeout=120_000)
    wait_idle(page)
    no_exceptions(page)
    with page.expect_download() as info:
        page.get_by_role("button", name="⬇ Download PNG").first.click()
    download = info.value
    saved = tmp_path / "result.png"
    download.save_as(saved)
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page.mouse.move(0, 0)  # the pointer left on Download showed its help over the lines beside it
    page.screenshot(path=str(SHOTS / "stylize_after_run.png"), full_page=True)


def test_every_bad_upload_gets_a_message_and_earlier_results_stay(server, page, tmp_path):
    page.goto(server + "/" + FAST)
    wait_idle(page)
    page.get_by_role("button", name="▶ Run").click()
    page.get_by_text("Latest result").wait_for(timeout=120_000)
    wait_idle(page)
    choose(page, "Content image", "Upload your own…")
    uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]').first
    for name, (data, match) in BAD_IMAGES.items():
        bad = tmp_path / f"{name}.png"
        bad.write_bytes(data)
        uploader.set_input_files(str(bad))
        wait_idle(page)
        message = page.locator('[data-testid="stAlert"]').filter(has_text="cannot be used")
        message.first.wait_for(timeout=30_000)
        assert re.search(match, message.first.inner_text()), (name, message.first.inner_text())
        no_exceptions(page)
        assert page.get_by_text("Latest result").count() == 1, f"the earlier result vanished after {name}"
    page.screenshot(path=str(SHOTS / "stylize_bad_upload.png"), full_page=True)


def test_the_stylize_page_renders(server, page):
    """Stylize from its link; every other page is opened from its link in tests/browser/test_deep_links.py."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{server}/{FAST}")
    wait_idle(page)
    no_exceptions(page)
    page.screenshot(path=str(SHOTS / "page_stylize.png"), full_page=True)


def test_stop_mid_run_keeps_the_best_image(server, page):
    page.goto(server + "/" + LONG_RUN + "&seed=11")
    wait_idle(page)
    estimate = page.get_by_text(re.compile(r"About \d+ s on this server"))
    before = estimate.first.inner_text()
    page.get_by_role("button", name="▶ Run").click()
    # Any step will do: a fixed "Step 3/" shows for a fraction of a second and can be missed.
    page.get_by_text(re.compile(r"Step \d+ of 400")).first.wait_for(timeout=90_000)
    page.screenshot(path=str(SHOTS / "stylize_running.png"), full_page=True)
    page.get_by_role("button", name="⏹ Stop").click()
    page.get_by_text("Latest result").wait_for(timeout=60_000)
    wait_idle(page)
    no_exceptions(page)
    assert page.get_by_text("(stopped)").count() >= 1
    assert page.get_by_text("the best image so far is kept").count() >= 1
    # The stopped run ends within a step: it must not count as a second run beside the next one.
    assert estimate.first.inner_text() == before
    page.screenshot(path=str(SHOTS / "stylize_stopped.png"), full_page=True)


def test_widget_change_mid_run_keeps_the_result(server, page):
    """Changing any widget reruns the page and so ends the run: what it reached must be kept."""
    page.goto(server + "/" + LONG_RUN + "&seed=12&init=noise")  # the seed counts
    wait_idle(page)
    page.get_by_role("button", name="▶ Run").click()
    page.get_by_text(re.compile(r"Step \d+ of 400")).first.wait_for(timeout=90_000)
    seed = page.locator('[data-testid="stSidebar"] [data-testid="stNumberInput"]').filter(has_text="Seed")
    seed.locator("input").fill("7")
    seed.locator("input").press("Enter")
    page.get_by_text("Latest result").wait_for(timeout=60_000)
    wait_idle(page)
    no_exceptions(page)
    assert page.get_by_text("the best image so far is kept").count() >= 1
    assert page.get_by_role("button", name="⬇ Download PNG").count() >= 1
    assert seed.locator("input").input_value() == "7"
    page.screenshot(path=str(SHOTS / "stylize_widget_changed_mid_run.png"), full_page=True)


def test_a_dropped_connection_mid_run_keeps_the_run_going(server, page, tmp_path):
    """Streamlit stops the script when the connection drops and reruns it when the browser
    reconnects: that rerun must follow the run again, not stop it, and the upload must survive."""
    net = FlakyNetwork(server)
    page.goto(net.url + "/" + LONG_RUN + "&seed=15")
    wait_idle(page)
    upload_photo(page, tmp_path / "own_photo.png")
    page.get_by_role("button", name="▶ Run").click()
    progress = page.get_by_text(re.compile(r"Step (\d+) of 400")).first
    progress.wait_for(timeout=90_000)
    net.cut(3)
    page.get_by_text("Reconnected to your run.").wait_for(timeout=60_000)
    before = int(re.search(r"Step (\d+) of", progress.inner_text()).group(1))
    deadline = time.time() + 60
    while int(re.search(r"Step (\d+) of", progress.inner_text()).group(1)) <= before + 5:
        assert time.time() < deadline, "the run did not go on after the reconnect"
        time.sleep(0.5)
    page.screenshot(path=str(SHOTS / "stylize_reconnected.png"), full_page=True)
    page.get_by_role("button", name="⏹ Stop").click()
    page.get_by_text("Latest result").wait_for(timeout=60_000)
    wait_idle(page)
    no_exceptions(page)
    assert page.get_by_text("own_photo.png × starry night (stopped)").count() == 1


def test_simultaneous_sessions_queue_and_stay_isolated(live, browser):
    """Four browser contexts press Run at once on a server that allows two runs at a time: each
    student gets their own result (own seed, own image), some waited in the visible queue, and
    nothing raised."""
    url, proc = live
    result = load_test(browser, url, 4, SHORT_RUN + "&weights_source=random&arch=vgg16&steps=20", timeout_s=240,
                       server_pid=proc.pid)
    assert result["errors"] == []
    assert result["completed"] == 4
    assert result["lost_results"] == 0
    assert not result["identical_images_across_sessions"]
    assert result["queued_sessions"] >= 1


def test_two_students_on_the_same_run_share_one_computation(server, browser):
    """Two students press Run on the same images and settings at the same moment: one of them is
    told they watch the computation the other started, and both download the same picture."""
    result = shared_pair(browser, server, FAST.lstrip("?").replace("steps=3", "steps=20") + "&seed=13", 2,
                         timeout_s=240)
    assert result["errors"] == []
    assert result["joined"] == 1
    assert result["same_image"]


def test_a_reload_mid_run_finds_the_run_again(server, page):
    """A reload is a new session: the page finds its run in flight through the run's identity (the
    same images and settings), and Stop still keeps the best image."""
    page.goto(server + "/" + LONG_RUN + "&seed=14")
    wait_idle(page)
    page.get_by_role("button", name="▶ Run").click()
    page.get_by_text(re.compile(r"Step \d+ of 400")).first.wait_for(timeout=90_000)
    page.reload()
    # A reload is a new session, which cannot tell its own run from a classmate's: the words hedge.
    page.get_by_text("If you started it before reloading the page, it is yours").wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"Step \d+ of 400")).first.wait_for(timeout=60_000)
    page.get_by_role("button", name="⏹ Stop").click()
    page.get_by_text("Latest result").wait_for(timeout=60_000)
    wait_idle(page)
    no_exceptions(page)
    assert page.get_by_text("(stopped)").count() >= 1
