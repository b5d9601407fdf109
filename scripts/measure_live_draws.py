"""How often a live run's page is redrawn, and what the browser spends on it, while one student
watches a long run on the small random network (its steps are fast, as on a GPU).

    .venv/bin/python -m scripts.measure_live_draws --seconds 10

Prints how many times the progress line changed during ``--seconds`` of the run, and the CPU
seconds Chromium's processes and the app server took meanwhile. ``DRAW_EVERY_S`` in
``ui/runs.py`` bounds the first.
"""

from __future__ import annotations

import argparse
import time

import psutil

from nst_core.benchmark import cpu_seconds
from scripts.live_app import LONG_RUN, QUIET_SERVER_ENV, ROOT, launch_chromium, streamlit_server, wait_idle

# Counted in the page, so no change is missed between two looks from here.
_COUNT_PROGRESS = """() => {
    window.__progressTexts = 0;
    let last = "";
    new MutationObserver(() => {
        const bar = document.querySelector('[data-testid="stProgress"]');
        const text = bar ? bar.textContent : "";
        if (text !== last) { last = text; window.__progressTexts += 1; }
    }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


def _chromium_cpu_s() -> float:
    total = 0.0
    for proc in psutil.process_iter(["cmdline"]):
        if "chrom" in (proc.info["cmdline"] or [""])[0]:
            try:
                total += cpu_seconds(proc.pid)
            except psutil.Error:  # the process ended while it was read
                pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright
    env = {**QUIET_SERVER_ENV, "NST_MAX_RUN_S": "3600"}
    with streamlit_server(env, ROOT / "test-output" / "measure_live_draws.log") as (url, server), \
            sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
        page.goto(url + "/" + LONG_RUN)
        wait_idle(page)
        page.get_by_role("button", name="▶ Run").click()
        page.get_by_text("Step ").first.wait_for(timeout=60_000)
        page.evaluate(_COUNT_PROGRESS)
        chromium, app = _chromium_cpu_s(), cpu_seconds(server.pid)
        time.sleep(args.seconds)
        print(f"in {args.seconds:.0f} s of the run: {page.evaluate('window.__progressTexts')} progress lines drawn; "
              f"Chromium {_chromium_cpu_s() - chromium:.1f} CPU-s, the app server {cpu_seconds(server.pid) - app:.1f} CPU-s")
        page.get_by_role("button", name="⏹ Stop").click()
        browser.close()


if __name__ == "__main__":
    main()
