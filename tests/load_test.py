"""Load test: N students on one `streamlit run`, each in its own browser context, all pressing Run
at once. Reports completions, errors, the queue, the server's peak memory and lost results.

    .venv/bin/python -m tests.load_test --sessions 10 --weights ../shared/weights/vgg16_hed_features_fp16.pth

Each session gets its own seed and starts from noise, so every result differs. A result counts as
kept when the session's own page shows exactly one finished run whose downloaded PNG carries that
session's seed, and no two sessions downloaded the same image. A small version runs in the test
suite (tests/test_browser.py); the full one is a command, because it measures.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import time
from pathlib import Path

from PIL import Image

from nst_core.benchmark import peak_rss_mb
from tests.live_app import ROOT, exception_text, launch_chromium, streamlit_server, wait_idle

# A short run that still takes a few seconds, so runs overlap and some must queue.
SHORT_RUN = "preset=Quick&size=128&init=noise"


def load_test(browser, url: str, sessions: int, query: str, timeout_s: float = 300,
              server_pid: int | None = None, shots: Path | None = None) -> dict:
    """Open ``sessions`` browser contexts on ``url``, press Run in all, wait for each result."""
    contexts, pages = [], []
    for i in range(sessions):
        ctx = browser.new_context(viewport={"width": 1200, "height": 1400}, accept_downloads=True)
        page = ctx.new_page()
        page.goto(f"{url}/?{query}&seed={i + 1}")
        contexts.append(ctx)
        pages.append(page)
    for page in pages:
        wait_idle(page)
        page.get_by_role("button", name="▶ Run").wait_for(timeout=60_000)
    start = time.time()
    for page in pages:
        page.get_by_role("button", name="▶ Run").click()
    finished: dict[int, float] = {}
    queued: set[int] = set()
    errors: dict[int, str] = {}
    deadline = start + timeout_s
    while len(finished) + len(errors) < sessions and time.time() < deadline:
        for i, page in enumerate(pages):
            if i in finished or i in errors:
                continue
            if page.get_by_text("Queued:").count():
                queued.add(i)
            problem = exception_text(page)
            if problem:
                errors[i] = problem.splitlines()[0]
            elif page.get_by_text("Latest result").count():
                finished[i] = time.time() - start
        time.sleep(0.3)
    for i in range(sessions):
        if i not in finished and i not in errors:
            errors[i] = f"no result within {timeout_s:.0f} s"

    kept, digests = {}, {}
    for i in sorted(finished):
        page = pages[i]
        wait_idle(page)
        if shots is not None:
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / f"load_session{i + 1}.png"), full_page=True)
        own_runs = page.get_by_text("Run 1:").count()
        foreign = page.get_by_text("Run 2:").count()
        with page.expect_download() as info:
            page.get_by_role("button", name="⬇ Download PNG").first.click()
        data = Path(info.value.path()).read_bytes()
        png = Image.open(io.BytesIO(data))
        seed = json.loads(png.text.get("nst-settings", "{}")).get("seed")
        digests[i] = hashlib.sha256(png.tobytes()).hexdigest()
        kept[i] = own_runs == 1 and foreign == 0 and seed == i + 1
    duplicate = len(set(digests.values())) < len(digests)
    for ctx in contexts:
        ctx.close()
    times = sorted(finished.values())
    return {
        "sessions": sessions,
        "completed": len(finished),
        "errors": [f"session {i + 1}: {text}" for i, text in sorted(errors.items())],
        "queued_sessions": len(queued),
        "lost_results": sessions - sum(kept.values()),
        "identical_images_across_sessions": duplicate,
        "first_result_s": round(times[0], 1) if times else None,
        "last_result_s": round(times[-1], 1) if times else None,
        "server_peak_rss_mb": peak_rss_mb(server_pid) if server_pid else None,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--max-runs", type=int, default=2, help="NST_MAX_RUNS for the server")
    parser.add_argument("--weights", help="a VGG features state dict (default: random VGG16)")
    parser.add_argument("--query", default=SHORT_RUN, help="the settings each session's link carries")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    env: dict[str, str | None] = {"NST_MAX_RUNS": str(args.max_runs), "NST_WEIGHTS": None}
    query = args.query
    if args.weights:
        env["NST_WEIGHTS"] = str(Path(args.weights).resolve())
        query += f"&weights_source=file:{Path(args.weights).name}"
    else:
        query += "&weights_source=random&arch=vgg16"
    from playwright.sync_api import sync_playwright
    out = ROOT / "test-output"
    with streamlit_server(env, out / "load_test_streamlit.log") as (url, proc), sync_playwright() as p:
        browser = launch_chromium(p)
        result = load_test(browser, url, args.sessions, query, args.timeout, proc.pid, out / "screenshots")
        browser.close()
    result["max_runs"] = args.max_runs
    result["settings"] = query
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if result["completed"] == args.sessions and not result["lost_results"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
