"""Helpers for the browser tests: the quick settings, where screenshots go, no exception shown or
logged, choosing an option, uploading a photo."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from scripts.live_app import ROOT, exception_text, wait_idle
from tests.support import gradient_image

# Tiny, fast settings through the shareable URL: random VGG16, 128 px, 3 steps (scripts.live_app.LONG_RUN
# is the same with 400 steps, for a run a test stops mid-way).
FAST = "?weights_source=random&arch=vgg16&size=128&steps=3&levels=1&preset=Quick"
SHOTS = ROOT / "test-output" / "screenshots"


def no_exceptions(page):
    problem = exception_text(page)
    assert problem is None, problem


def no_uncaught(log_path: Path):
    """A server's log holds no exception a script run raised, shown or not: a page may have hidden
    it by the time a test looks (Streamlit shows scripts' errors without details here)."""
    text = log_path.read_text(errors="replace")
    assert "Uncaught app" not in text, text[text.index("Uncaught app"):][:3000]


def choose(page, label: str, option: str):
    """Pick an option of a Streamlit selectbox by its label."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    wanted = page.get_by_role("option", name=option).first
    for attempt in range(3):  # a rerun that lands just after the click redraws the box closed
        box.click()
        try:
            wanted.wait_for(timeout=10_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    wanted.click()


def upload_photo(page, path: Path, size: tuple[int, int] = (160, 120)):
    """Choose "Upload your own…" as the content image and upload a gradient of ``size`` (width,
    height) saved at ``path``."""
    choose(page, "Content image", "Upload your own…")
    gradient_image(*size).save(path)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(path))
    wait_idle(page)
