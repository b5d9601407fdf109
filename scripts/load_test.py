"""Load tests: a class on one `streamlit run`, each student in their own browser context.

    .venv/bin/python -m scripts.load_test class --weights ../shared/weights/vgg16_hed_features_fp16.pth --standin
    .venv/bin/python -m scripts.load_test queue --sessions 10

``class``: 20 students press Run on the default pair with the same settings within 5 s, 10 upload
photos of their own and press Run, and every student then opens two explainer pages in a second
tab. Before the class, one student alone and then two at the same moment run an identical job, to
measure what sharing one computation costs (the ratio of their times). Reports the time until
every student has a result, errors, results lost or shown to the wrong student, the server's peak
memory and whether anything was killed for memory. With ``--standin`` the server runs under
Community Cloud's limits (scripts/cloud_standin.py: 2.7 GB, 2 CPUs; needs root and cgroup v1).

``memory``: what once killed the server for memory: four students on every explainer page at 512 px
while three upload 40-megapixel photos and two of them run at 512 px.

``watch``: N students press Run on one identical job at the same moment (one computation that
all of them watch live), against one student alone.

``queue``: N students with different seeds press Run at once; each must get exactly its own run.
A small version of each runs in the test suite (tests/browser/test_browser.py); the full ones are
commands, because they measure.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import statistics
import time
from contextlib import ExitStack, nullcontext
from pathlib import Path

from PIL import Image

from nst_core.benchmark import cpu_seconds, peak_rss_mb
from nst_core.settings import SETTINGS
from scripts.live_app import ROOT, exception_text, launch_chromium, streamlit_server, wait_idle

# The browsers' CPU: a real class's run on the students' own computers, but here they share the
# server's two cores. Capped at half a core they leave the server at least 1.5; at the lowest
# weight (cpu.shares 2) they could not take a click within 30 s, and at weight 100 twenty clicks
# took 30 s and thirty 219 s.
BROWSER_CPUS = 0.5
# A short run that still takes a few seconds, so runs overlap and some must queue.
SHORT_RUN = "preset=Quick&size=128&init=noise"


def _result_png(page, tries: int = 3) -> tuple[dict, str]:
    """The settings a page's latest result carries in its PNG, and a digest of its pixels. A download
    can be cancelled when the page redraws under the click (seen once in 30 students): tried again."""
    from playwright.sync_api import Error
    for attempt in range(tries):
        try:
            with page.expect_download() as info:
                page.get_by_role("button", name="⬇ Download PNG").first.click()
            png = Image.open(io.BytesIO(Path(info.value.path()).read_bytes()))
            return json.loads(png.text.get("nst-settings", "{}")), hashlib.sha256(png.tobytes()).hexdigest()
        except Error:
            if attempt == tries - 1:
                raise
            wait_idle(page)


def _own_photo(i: int, folder: Path) -> Path:
    """Student i's own photo: a different crop of a bundled photo (mirrored for every second round)."""
    photos = sorted((ROOT / "assets" / "photos").glob("*.jpg"))
    img = Image.open(photos[i % len(photos)]).convert("RGB")
    w, h = img.size
    dx, dy = (i * 37) % max(w // 5, 1), (i * 53) % max(h // 5, 1)
    img = img.crop((dx, dy, dx + 4 * w // 5, dy + 4 * h // 5))
    if (i // len(photos)) % 2:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    path = folder / f"student{i + 1}_photo.jpg"
    img.save(path, quality=90)
    return path


UNFINISHED = re.compile(r"Run \d+: .* \((stopped|capped|diverged|failed)\)")
RESULT = re.compile(r"Run \d+: .* \((done|stopped|capped|diverged|failed)\)")
# The server's time from a student's Run to the result, and for a computation of their own its own seconds
READY = re.compile(r"Ready (\d+) s after Run(?:: (\d+) s before it started, (\d+) s computing)?")
JOINED = ("you are watching the same computation", "had already been computed", "Computed once for everyone")
QUEUED = ("Queued behind", "Waiting for memory on this server")
# A queue line can show for less time than one poll of every page takes on a loaded machine: the page
# itself notes whether the line was ever drawn.
_NOTE_QUEUE = """(texts) => {
  window.__queueSeen = false;
  new MutationObserver((_, observer) => {
    const text = document.body ? document.body.textContent : "";
    if (texts.some(t => text.includes(t))) { window.__queueSeen = true; observer.disconnect(); }
  }).observe(document, {childList: true, subtree: true, characterData: true});
}"""


def _says_joined(page) -> bool:
    return any(page.get_by_text(t).count() for t in JOINED)


def _poll(pages: dict[int, object], start: float, finished: dict[int, float], errors: dict[int, str],
          joined: set[int] | None = None, queued: set[int] | None = None) -> None:
    """One look at every page still waiting: a result, or an exception, timed from ``start``; and
    whether the page said it shares a computation someone else started, or waits in the queue."""
    for i, page in pages.items():
        if i in finished or i in errors:
            continue
        if joined is not None and _says_joined(page):
            joined.add(i)
        if queued is not None and page.evaluate("window.__queueSeen === true"):
            queued.add(i)
        problem = exception_text(page)
        if problem:
            errors[i] = problem.splitlines()[0]
        elif page.get_by_text("over this server's limit").count():
            errors[i] = "refused: estimated over the server's ceiling (NST_MAX_RUN_S)"
        elif page.get_by_text("This server has no room for this run").count():
            errors[i] = "refused: no memory for it even with nothing else running"
        elif page.get_by_text("Latest result").count():
            finished[i] = time.time() - start


def _wait_results(pages: dict[int, object], start: float, timeout_s: float, finished: dict[int, float] | None = None,
                  errors: dict[int, str] | None = None, joined: set[int] | None = None,
                  queued: set[int] | None = None) -> tuple[dict, dict]:
    """Poll every page until it shows a result or an exception."""
    finished = {} if finished is None else finished
    errors = {} if errors is None else errors
    deadline = start + timeout_s
    while len(finished) + len(errors) < len(pages) and time.time() < deadline:
        _poll(pages, start, finished, errors, joined, queued)
        time.sleep(0.3)
    for i, page in pages.items():
        if i not in finished and i not in errors:
            bar = page.locator('[data-testid="stProgress"]')
            said = bar.first.inner_text().strip() if bar.count() else "no progress bar"
            errors[i] = f"no result within {timeout_s:.0f} s; it says: {said}"
    return finished, errors


def _upload_content(page, photo: Path) -> None:
    """Choose "Upload your own…" as the content image and give it ``photo``."""
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Content image").first.click()
    page.get_by_role("option", name="Upload your own…").first.click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(photo))


def _open(browser, url: str, width: int = 1200, height: int = 1400):
    ctx = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    ctx.set_default_timeout(120_000)  # browsers in the background group may wait long for a CPU
    page = ctx.new_page()
    page.goto(url)
    return ctx, page


def _run_buttons(pages: list) -> list[tuple[object, float, float]]:
    """Each page's ▶ Run button, as (page, x, y) of its centre. A locator's click checks the button
    before each press (visible, stable, not covered): about 0.4 s a tab, longer than a short run.
    Those checks are done here, before the students press."""
    buttons = []
    for page in pages:
        run = page.get_by_role("button", name="▶ Run")
        run.scroll_into_view_if_needed()
        box = run.bounding_box()
        buttons.append((page, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2))
    return buttons


def _press(buttons: list[tuple[object, float, float]]) -> tuple[float, list[float]]:
    """Press every button of :func:`_run_buttons` as a student's hand does, one mouse press each:
    the time of the first press, and the seconds after it of every press."""
    start, pressed = time.time(), []
    for page, x, y in buttons:
        page.mouse.click(x, y)
        pressed.append(time.time() - start)
    return start, pressed


def load_test(browser, url: str, sessions: int, query: str, timeout_s: float = 300,
              server_pid: int | None = None, shots: Path | None = None, unthrottled=nullcontext) -> dict:
    """Open ``sessions`` browser contexts on ``url``, press Run in all, wait for each result."""
    opened = [_open(browser, f"{url}/?{query}&seed={i + 1}") for i in range(sessions)]
    for _, page in opened:
        wait_idle(page)
        page.get_by_role("button", name="▶ Run").wait_for(timeout=60_000)
        page.evaluate(_NOTE_QUEUE, list(QUEUED))
    buttons = _run_buttons([page for _, page in opened])
    with unthrottled():
        start, _ = _press(buttons)
    queued: set[int] = set()
    finished, errors = _wait_results({i: p for i, (_, p) in enumerate(opened)}, start, timeout_s, queued=queued)

    kept, digests = {}, {}
    for i in sorted(finished):
        page = opened[i][1]
        wait_idle(page)
        if shots is not None:
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / f"load_session{i + 1}.png"), full_page=True)
        own_runs = page.get_by_text("Run 1:").count()
        foreign = page.get_by_text("Run 2:").count()
        settings, digests[i] = _result_png(page)
        kept[i] = own_runs == 1 and foreign == 0 and settings.get("seed") == i + 1
    duplicate = len(set(digests.values())) < len(digests)
    for ctx, _ in opened:
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


def shared_pair(browser, url: str, query: str, students: int, timeout_s: float = 300,
                unthrottled=nullcontext) -> dict:
    """``students`` press Run on the same job at the same moment: their times, whether their
    images are identical, and how many were told they watch a computation someone else started."""
    with unthrottled():
        opened = [_open(browser, f"{url}/?{query}") for _ in range(students)]
        for _, page in opened:
            wait_idle(page)
        start, _ = _press(_run_buttons([page for _, page in opened]))
    joined: set[int] = set()
    finished, errors = _wait_results({i: p for i, (_, p) in enumerate(opened)}, start, timeout_s, joined=joined)
    digests = set()
    with unthrottled():
        for i in sorted(finished):
            wait_idle(opened[i][1])
            # The poll can catch a page between its last progress and its result's note: the settled page says it too.
            if _says_joined(opened[i][1]):
                joined.add(i)
            digests.add(_result_png(opened[i][1])[1])
    for ctx, _ in opened:
        ctx.close()
    return {"students": students, "seconds": round(max(finished.values()), 1) if finished else None,
            "errors": [f"student {i + 1}: {e}" for i, e in sorted(errors.items())],
            "same_image": len(digests) == 1 and len(finished) == students, "joined": len(joined)}


def class_test(browser, url: str, query: str, shared: int = 20, uploads: int = 10,
               explainers: tuple[str, ...] = ("activations", "gram"), timeout_s: float = 600,
               server_pid: int | None = None, shots: Path | None = None, tmp: Path | None = None,
               unthrottled=nullcontext) -> dict:
    """A class: ``shared`` students on the default pair, ``uploads`` with their own photo, then
    every one of them opens the explainer pages in a second tab while the runs go. ``unthrottled``
    is a context that gives the browsers the whole machine: the clicks on Run and the reading of
    the finished results happen in it, not the wait, so they take nothing from the runs."""
    from playwright.sync_api import Error as PlaywrightError
    tmp = tmp or ROOT / "test-output" / "class_uploads"
    tmp.mkdir(parents=True, exist_ok=True)
    students = shared + uploads
    photos = {}
    with unthrottled():  # the pages open and the photos upload before the class starts
        opened = [_open(browser, f"{url}/?{query}") for _ in range(students)]
        for i, (_, page) in enumerate(opened):
            wait_idle(page)
            if i >= shared:
                photos[i] = _own_photo(i, tmp)
                _upload_content(page, photos[i])
        for i in photos:
            wait_idle(opened[i][1])
        buttons = _run_buttons([page for _, page in opened])
    with unthrottled():
        start, pressed = _press(buttons)
    # Every student also tours the explainer pages in a second tab while the runs go. Tabs and
    # results are watched in one loop, so no slow page hides when a result arrived.
    mains = {i: p for i, (_, p) in enumerate(opened)}
    finished: dict[int, float] = {}
    errors: dict[int, str] = {}
    joined: set[int] = set()
    tours = [ctx.new_page() for ctx, _ in opened]
    stage = [0] * students  # which explainer each tab is on; len(explainers) when its tour is over
    quiet = [0] * students
    tour_errors: dict[int, str] = {}
    for tab in tours:
        tab.goto(f"{url}/{explainers[0]}?{query}", wait_until="commit")
    deadline = start + timeout_s
    while time.time() < deadline and (min(stage) < len(explainers) or len(finished) + len(errors) < students):
        for i, tab in enumerate(tours):
            if stage[i] >= len(explainers):
                continue
            problem = exception_text(tab)
            if problem:
                tour_errors[i] = f"{explainers[stage[i]]}: {problem.splitlines()[0]}"
            drawn = tab.locator('[data-testid="stApp"]').count() and tab.locator('[data-testid="stMain"] h1').count()
            busy = tab.locator('[data-testid="stStatusWidget"]').count() + tab.locator('[data-testid="stSkeleton"]').count()
            quiet[i] = quiet[i] + 1 if drawn and not busy else 0
            if quiet[i] >= 3:  # idle for three looks in a row: on to the next page
                stage[i], quiet[i] = stage[i] + 1, 0
                if stage[i] < len(explainers):
                    tab.goto(f"{url}/{explainers[stage[i]]}?{query}", wait_until="commit")
        _poll(mains, start, finished, errors, joined)
        time.sleep(0.3)
    for i in range(students):
        if stage[i] < len(explainers):
            tour_errors.setdefault(i, f"{explainers[stage[i]]}: still not drawn after {timeout_s:.0f} s")
    for tab in tours:
        tab.close()
    _wait_results(mains, start, timeout_s, finished, errors, joined)

    wrong, why_wrong, lost, unfinished, digests, ready_s, computing_s = [], [], [], [], {}, {}, {}
    with unthrottled():
        for i in sorted(finished):
            page = opened[i][1]
            wait_idle(page)
            try:  # a page caught between reruns (a reconnect) draws its result a moment later
                page.get_by_text(RESULT).first.wait_for(timeout=30_000)
            except PlaywrightError:
                pass  # judged below as it stands, with a screenshot
            if shots is not None and i in (0, shared):
                shots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shots / f"class_student{i + 1}.png"), full_page=True)
            runs_shown = page.get_by_text("Run 1:").count() + page.get_by_text("Run 2:").count()
            ready = page.get_by_text(READY)
            if ready.count():
                found = READY.search(ready.first.inner_text())
                ready_s[i] = float(found.group(1))
                if found.group(3):
                    computing_s[i] = float(found.group(3))
            settings, digests[i] = _result_png(page)
            expected = photos[i].name if i in photos else SETTINGS["content"].default
            if runs_shown != 1:
                lost.append(i)
            if not page.get_by_text("(done)").count():  # capped or stopped: a picture, but not a finished one
                why = page.get_by_text(UNFINISHED)
                unfinished.append(f"student {i + 1}: {why.first.inner_text() if why.count() else 'no finished picture'}")
                if shots is not None:  # what the student saw, for the next run to say why
                    shots.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(shots / f"class_student{i + 1}_unfinished.png"), full_page=True)
            if settings.get("content") != expected:
                wrong.append(i)
                why_wrong.append(f"student {i + 1}: a picture of {settings.get('content')!r}, not {expected!r}")
    # The class on one pair must see one picture; every upload must see a picture of its own.
    by_digest: dict[str, list[int]] = {}
    for i, d in sorted(digests.items()):
        by_digest.setdefault(d, []).append(i)
    shared_digests = {digests[i] for i in digests if i < shared}
    if len(shared_digests) > 1:
        wrong += [i for i in digests if i < shared]
        why_wrong.append(f"the default pair gave {len(shared_digests)} different pictures")
    for same in by_digest.values():
        uploaders = [i for i in same if i >= shared]
        if uploaders and len(same) > 1:
            wrong += uploaders
            why_wrong.append("one picture shown to students " + ", ".join(str(i + 1) for i in same))
    for ctx, _ in opened:
        ctx.close()
    times = sorted(finished.values())
    return {
        "students": students, "on_default_pair": shared, "with_uploads": uploads,
        "default_pair_pressed_within_s": round(pressed[shared - 1], 1) if shared else None,
        "everyone_pressed_within_s": round(max(pressed), 1),
        "completed": len(finished),
        "shared_a_computation": len(joined),
        "errors": [f"student {i + 1}: {t}" for i, t in sorted(errors.items())]
                  + [f"student {i + 1} tour {t}" for i, t in sorted(tour_errors.items())],
        "lost_results": len(set(lost)) + len(errors),
        "unfinished_results": len(unfinished),
        "unfinished": unfinished,
        "misdelivered_results": len(set(wrong)),
        "misdelivered": why_wrong,
        "first_result_s": round(times[0], 1) if times else None,
        "every_result_s": round(times[-1], 1) if len(times) == students else None,
        # From each student's Run to their result as the server saw it: the browsers' own delays
        # (here they share the server's cores) left out.
        "every_result_server_s": max(ready_s.values()) if len(ready_s) == students else None,
        "without_ready_time": [i + 1 for i in sorted(finished) if i not in ready_s],
        "median_result_server_s": statistics.median(ready_s.values()) if ready_s else None,
        # Each group's times in order: how the queue served the uploads, two at a time.
        "result_server_s": {"default_pair": sorted(t for i, t in ready_s.items() if i < shared),
                            "uploads": sorted(t for i, t in ready_s.items() if i >= shared)},
        # (ready, computing) for each computation a student started: the rest of ready was the queue.
        "own_computations_s": sorted((ready_s[i], t) for i, t in computing_s.items()),
        "server_peak_rss_mb": peak_rss_mb(server_pid) if server_pid else None,
    }


def _big_photo(folder: Path, i: int, megapixels: float = 40) -> Path:
    """A real photo blown up to ``megapixels`` and saved as a JPEG under the 10 MB upload limit."""
    photos = sorted((ROOT / "assets" / "photos").glob("*.jpg"))
    img = Image.open(photos[i % len(photos)]).convert("RGB")
    w = int((megapixels * 1e6 * img.width / img.height) ** 0.5)
    path = folder / f"big{i + 1}.jpg"
    img.resize((w, int(megapixels * 1e6 / w)), Image.Resampling.BILINEAR).save(path, quality=80)
    return path


def memory_test(browser, url: str, query: str, tourists: int = 4, uploads: int = 3, runs: int = 2,
                size: int = 512, timeout_s: float = 600, tmp: Path | None = None) -> dict:
    """The two ways a class once killed the server: ``tourists`` students on every explainer page at
    ``size`` px, while ``uploads`` students upload 40-megapixel photos and ``runs`` of them run at
    ``size`` px. Reports errors and results; the memory figures come from the caller."""
    tmp = tmp or ROOT / "test-output" / "class_uploads"
    tmp.mkdir(parents=True, exist_ok=True)
    query = f"{query}&size={size}"
    uploaders = [_open(browser, f"{url}/?{query}") for _ in range(uploads)]
    tourers = [_open(browser, f"{url}/?{query}") for _ in range(tourists)]
    errors: list[str] = []
    for i, (_, page) in enumerate(uploaders):
        wait_idle(page)
        _upload_content(page, _big_photo(tmp, i))
    start = time.time()
    for _, page in uploaders[:runs]:
        wait_idle(page)
        page.get_by_role("button", name="▶ Run").click()
    for path in ("activations", "gram", "cost_curves", "experiments", "how_it_works"):
        for _, page in tourers:
            page.goto(f"{url}/{path}?{query}", wait_until="commit")
        for i, (_, page) in enumerate(tourers):
            try:
                wait_idle(page, timeout=timeout_s)
            except AssertionError as exc:
                errors.append(f"tourist {i + 1} on {path}: {exc}")
            problem = exception_text(page)
            if problem:
                errors.append(f"tourist {i + 1} on {path}: {problem.splitlines()[0]}")
    finished, failed = _wait_results({i: p for i, (_, p) in enumerate(uploaders[:runs])}, start, timeout_s)
    errors += [f"uploader {i + 1}: {t}" for i, t in sorted(failed.items())]
    for ctx, _ in uploaders + tourers:
        ctx.close()
    return {"tourists": tourists, "uploads_40mp": uploads, "runs": runs, "size": size,
            "completed_runs": len(finished), "errors": errors,
            "last_result_s": round(max(finished.values()), 1) if finished else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=["class", "watch", "queue", "memory"])
    parser.add_argument("--sessions", type=int, default=10, help="queue, watch: how many students")
    parser.add_argument("--shared", type=int, default=20, help="class: students on the default pair")
    parser.add_argument("--uploads", type=int, default=10, help="class: students with their own photo")
    parser.add_argument("--max-runs", type=int, default=2, help="NST_MAX_RUNS for the server")
    parser.add_argument("--max-run-s", type=float, help="NST_MAX_RUN_S for the server (default: its own)")
    parser.add_argument("--weights", help="a VGG features state dict (default: random VGG16)")
    parser.add_argument("--query", help="the settings each student's link carries "
                                        "(class: the app's defaults; queue: a short run from noise)")
    parser.add_argument("--standin", action="store_true", help="run the server under Community Cloud's limits")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--browsers-background", action="store_true",
                        help="run the browsers in a CPU group capped at BROWSER_CPUS, so they take little "
                             "from the server, as on Community Cloud, where they run on the students' own "
                             "computers; the cap is lifted while the students press Run (needs root and "
                             "cgroup v1)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    env: dict[str, str | None] = {"NST_MAX_RUNS": str(args.max_runs), "NST_WEIGHTS": None,
                                  "NST_MAX_RUN_S": None if args.max_run_s is None else str(args.max_run_s)}
    query = args.query if args.query is not None else (SHORT_RUN if args.scenario == "queue" else "preset=Quick")
    if args.weights:
        env["NST_WEIGHTS"] = str(Path(args.weights).resolve())
        query += f"&weights_source=file:{Path(args.weights).name}"
    else:
        query += "&weights_source=random&arch=vgg16"
    from playwright.sync_api import sync_playwright
    out = ROOT / "test-output"
    with ExitStack() as stack:
        group = None
        if args.standin:
            from scripts.cloud_standin import CloudGroup
            group = stack.enter_context(CloudGroup())
        url, proc = stack.enter_context(streamlit_server(env, out / "load_test_streamlit.log",
                                                         preexec_fn=group.enter if group else None))
        p = stack.enter_context(sync_playwright())
        background = None
        if args.browsers_background:
            from scripts.cloud_standin import BackgroundGroup
            background = stack.enter_context(BackgroundGroup(cpus=BROWSER_CPUS))
        browser = launch_chromium(p, background.procs if background else None)
        unthrottled = background.lifted if background else nullcontext
        cpu_before = cpu_seconds(proc.pid)
        if args.scenario == "memory":
            result = memory_test(browser, url, query, timeout_s=args.timeout)
            result["server_peak_rss_mb"] = peak_rss_mb(proc.pid)
            ok = not result["errors"] and result["completed_runs"] == result["runs"]
        elif args.scenario == "watch":
            alone = shared_pair(browser, url, query + "&seed=101", 1, unthrottled=unthrottled)
            result = shared_pair(browser, url, query + "&seed=102", args.sessions, unthrottled=unthrottled)
            result["one_student_s"] = alone["seconds"]
            ok = not result["errors"] and result["same_image"]
        elif args.scenario == "queue":
            result = load_test(browser, url, args.sessions, query, args.timeout, proc.pid, out / "screenshots",
                               unthrottled=unthrottled)
            ok = result["completed"] == args.sessions and not result["lost_results"]
        else:
            alone = shared_pair(browser, url, query + "&seed=101", 1, unthrottled=unthrottled)
            two = shared_pair(browser, url, query + "&seed=102", 2, unthrottled=unthrottled)
            result = class_test(browser, url, query, args.shared, args.uploads, timeout_s=args.timeout,
                                server_pid=proc.pid, shots=out / "screenshots", unthrottled=unthrottled)
            result["one_student_s"], result["two_students_s"] = alone["seconds"], two["seconds"]
            result["two_students_ratio"] = (round(two["seconds"] / alone["seconds"], 2)
                                            if alone["seconds"] and two["seconds"] else None)
            result["two_students_same_image"], result["two_students_joined"] = two["same_image"], two["joined"]
            ok = (result["completed"] == result["students"] and not result["lost_results"]
                  and not result["misdelivered_results"] and not result["errors"]
                  and not result["unfinished_results"])
        browser.close()
        alive = proc.poll() is None
        if alive:
            result["server_cpu_s"] = round(cpu_seconds(proc.pid) - cpu_before, 1)
        if group is not None:
            proc.terminate()
            result["standin"] = group.report(None if alive else proc.wait())
            ok = ok and not result["standin"]["oom_killed"]
        result["server_survived"] = alive
    result["max_runs"], result["browsers_background"] = args.max_runs, args.browsers_background
    result["settings"] = query
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if ok and alive else 1


if __name__ == "__main__":
    raise SystemExit(main())
