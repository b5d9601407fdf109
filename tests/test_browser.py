"""The real app in a real browser: `streamlit run` on a free localhost port, driven by Playwright
through Debian's Chromium (never a downloaded browser). Screenshots go to test-output/screenshots/.

Run these alone with `.venv/bin/python -m pytest -m browser`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import BAD_IMAGES, gradient_image
from tests.live_app import CHROMIUM, ROOT, exception_text, launch_chromium, streamlit_server, wait_idle
from tests.load_test import SHORT_RUN, load_test

pytestmark = pytest.mark.browser
SHOTS = ROOT / "test-output" / "screenshots"
PAGES = {"": "stylize", "activations": "activations", "gram": "gram", "cost_curves": "cost_curves",
         "experiments": "experiments", "how_it_works": "how_it_works"}
# Tiny, fast settings through the shareable URL: random VGG16, 128 px, 3 steps.
FAST = "?weights_source=random&arch=vgg16&size=128&steps=3&levels=1&preset=Quick"


@pytest.fixture(scope="module")
def live():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: run `bash scripts/setup.sh` (installs Debian's chromium)")
    with streamlit_server({"NST_MAX_RUNS": "2", "NST_WEIGHTS": None}, ROOT / "test-output" / "streamlit.log") as run:
        yield run


@pytest.fixture(scope="module")
def server(live):
    return live[0]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1600}, accept_downloads=True)
    pg = context.new_page()
    yield pg
    context.close()


def no_exceptions(page):
    problem = exception_text(page)
    assert problem is None, problem


def choose(page, label: str, option: str):
    """Pick an option of a Streamlit selectbox by its label."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.click()
    page.get_by_role("option", name=option).first.click()


def test_deep_link_on_a_fresh_server_gets_the_full_app(server, page):
    """The first visit of a new server lands on a page other than the home page: it must still get the
    app's navigation and sidebar, not Streamlit's legacy pages/ listing."""
    page.goto(f"{server}/gram{FAST}")
    wait_idle(page)
    page.get_by_text("What is style, concretely?").wait_for(timeout=60_000)
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert sidebar.get_by_text("Network").count() == 1
    assert page.get_by_text("common", exact=True).count() == 0
    no_exceptions(page)
    page.reload()
    wait_idle(page)
    page.get_by_text("How it works").first.wait_for(timeout=30_000)
    page.get_by_text("What is style, concretely?").wait_for(timeout=60_000)


def test_stylize_upload_run_download(server, page, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(server + "/" + FAST)
    wait_idle(page)
    no_exceptions(page)
    choose(page, "Content image", "Upload your own…")
    photo = tmp_path / "photo.png"
    gradient_image(160, 120).save(photo)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(photo))
    wait_idle(page)
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


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_renders(server, page, path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{server}/{path}{FAST}")
    wait_idle(page)
    no_exceptions(page)
    page.screenshot(path=str(SHOTS / f"page_{PAGES[path]}.png"), full_page=True)


def test_stop_mid_run_keeps_the_best_image(server, page):
    page.goto(server + "/" + FAST.replace("steps=3", "steps=400"))
    wait_idle(page)
    page.get_by_role("button", name="▶ Run").click()
    # Any step will do: a fixed "Step 3/" shows for a fraction of a second and can be missed.
    page.get_by_text(re.compile(r"Step \d+/400")).first.wait_for(timeout=90_000)
    page.screenshot(path=str(SHOTS / "stylize_running.png"), full_page=True)
    page.get_by_role("button", name="⏹ Stop").click()
    page.get_by_text("Latest result").wait_for(timeout=60_000)
    wait_idle(page)
    no_exceptions(page)
    assert page.get_by_text("(stopped)").count() >= 1
    assert page.get_by_text("the best image so far is kept").count() >= 1
    page.screenshot(path=str(SHOTS / "stylize_stopped.png"), full_page=True)


def test_widget_change_mid_run_keeps_the_result(server, page):
    """Changing any widget reruns the page and so ends the run: what it reached must be kept."""
    page.goto(server + "/" + FAST.replace("steps=3", "steps=400"))
    wait_idle(page)
    page.get_by_role("button", name="▶ Run").click()
    page.get_by_text(re.compile(r"Step \d+/400")).first.wait_for(timeout=90_000)
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


def test_simultaneous_sessions_queue_and_stay_isolated(live, browser):
    """Four browser contexts press Run at once on a server that allows two runs at a time: each
    student gets their own result (own seed, own image), some waited in the visible queue, and
    nothing raised."""
    url, proc = live
    result = load_test(browser, url, 4, SHORT_RUN + "&weights_source=random&arch=vgg16", timeout_s=240,
                       server_pid=proc.pid)
    assert result["errors"] == []
    assert result["completed"] == 4
    assert result["lost_results"] == 0
    assert not result["identical_images_across_sessions"]
    assert result["queued_sessions"] >= 1
