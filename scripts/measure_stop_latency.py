"""How long a student waits between pressing Stop and seeing the run's result, on the small random
network, with Streamlit's fast reruns on or off (`.streamlit/config.toml` keeps them off).

    .venv/bin/python -m scripts.measure_stop_latency --fast-reruns false --stops 4

Each try opens Stylize in a fresh tab, starts a 400-step run, lets it compute for two seconds,
presses Stop, and times the click until "Latest result" shows. docs/limits.md quotes it.
"""

from __future__ import annotations

import argparse
import re
import time

from scripts.live_app import LONG_RUN, QUIET_SERVER_ENV, ROOT, launch_chromium, streamlit_server, wait_idle


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast-reruns", choices=("true", "false"), default="false")
    parser.add_argument("--stops", type=int, default=4)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright
    env = {**QUIET_SERVER_ENV, "NST_MAX_RUN_S": "3600", "STREAMLIT_RUNNER_FAST_RERUNS": args.fast_reruns}
    waits = []
    with sync_playwright() as p, streamlit_server(env, ROOT / "test-output" / "stop_latency.log") as (url, _):
        browser = launch_chromium(p)
        for i in range(args.stops):
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.goto(f"{url}/{LONG_RUN}&seed={100 + i}")  # a new seed each time: a new run, not a served one
            wait_idle(page)
            page.get_by_role("button", name="▶ Run").click()
            page.get_by_text(re.compile(r"Step \d+ of 400")).first.wait_for(timeout=90_000)
            time.sleep(2)
            pressed = time.monotonic()
            page.get_by_role("button", name="⏹ Stop").click()
            page.get_by_text("Latest result").wait_for(timeout=60_000)
            waits.append(time.monotonic() - pressed)
            page.close()
        browser.close()
    print(f"fast reruns {args.fast_reruns}: Stop to result shown in " + ", ".join(f"{w:.2f}" for w in waits) + " s")


if __name__ == "__main__":
    main()
