"""What only the Ray backend does: runs on a cluster's worker processes, shared by every app process
attached to it, stopped on their worker, and failed cleanly when a worker process dies."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -r requirements-ray.txt "
                                        "to run the Ray backend's tests")

from nst_core.images import ImageError  # noqa: E402
from nst_core.serve import RunState  # noqa: E402
from nst_core.serve.admission import RunRefused  # noqa: E402
from nst_core.serve.ray_backend import RayBackend, check_address  # noqa: E402
from tests.ray.app_process import noise  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def counters(backend) -> dict:
    return backend.info(max_age_s=0)["counters"]


def test_ray_client_addresses_are_refused_with_the_way_to_attach():
    with pytest.raises(ValueError, match="Ray Client.*not supported.*NST_RAY_ADDRESS=auto"):
        check_address("ray://head:10001")
    with pytest.raises(ValueError, match="Ray Client"):
        RayBackend("ray://head:10001")


def test_describe_names_the_cluster_its_workers_and_gpus(make_ray_backend):
    backend = make_ray_backend()
    assert backend.name == "ray" and backend.slots == 2
    deadline = time.monotonic() + 60
    while backend.info(0)["ready"] < 2:
        assert time.monotonic() < deadline, "the workers never became ready"
        time.sleep(0.2)
    assert backend.describe() == "Runs: Ray cluster at auto, 2 workers (0 GPUs)"


def test_describe_says_how_many_workers_are_ready_when_not_all_are(make_ray_backend):
    """A worker that asks for three CPUs on this two-CPU cluster is never placed: the sidebar must
    not count it as a worker that takes runs."""
    backend = make_ray_backend(workers=1, threads=3, worker_prefix="unplaceable")
    assert backend.describe() == "Runs: Ray cluster at auto, 1 worker, 0 ready (0 GPUs)"


def test_a_run_streams_its_progress_and_its_result_is_served_to_the_next_student(make_ray_backend, make_request,
                                                                                  follow_run):
    backend = make_ray_backend()
    handle = backend.start(make_request(1, steps=20, session="a"))
    assert not handle.joined
    seen = []
    view = follow_run(handle, until=lambda v: seen.append((v.state, v.latest and v.latest.step)) or v.finished)
    running = [step for state, step in seen if state == RunState.RUNNING and step]
    assert len(running) >= 3 and running == sorted(running), "progress arrived step by step while it ran"
    assert view.state == RunState.DONE and view.latest.step == 20 and len(view.history) >= 20
    assert view.best is not None and view.best.size == (48, 48) and view.snapshots
    assert all(rec.best_image is None and rec.image is None for rec in view.history), "records travel without tensors"
    handle.leave()
    again = backend.start(make_request(1, steps=20, session="b"))
    assert again.joined and again.view().state == RunState.DONE
    assert again.view().best.tobytes() == view.best.tobytes()
    assert backend.peek(handle.key).state == RunState.DONE
    assert counters(backend)["started"] == 1


def test_the_registry_moves_runs_without_loading_pytorch(make_ray_backend, make_request, follow_run):
    """The registry only queues and relays: after a run went through it, its process has not mapped
    PyTorch's library (with it, a registry was 750 MB resident; without, 120 MB)."""
    backend = make_ray_backend()
    view = follow_run(backend.start(make_request(7, steps=10)))
    assert view.state == RunState.DONE and view.best is not None
    registry = ray.get(backend._registry.info.remote())["registry"]
    maps = Path(f"/proc/{registry['pid']}/maps")
    if not maps.exists():
        pytest.skip("the registry's process cannot be inspected on this system")
    assert "libtorch" not in maps.read_text(), "the registry process loaded PyTorch"
    assert registry["rss_mb"] > 0


def test_bad_images_and_refused_settings_never_reach_the_cluster(make_ray_backend, make_request):
    from dataclasses import replace
    backend = make_ray_backend()
    good = make_request(2)
    for bad in (noise(3, side=4), "content.png"):
        with pytest.raises(ImageError):
            backend.start(replace(good, content=bad))
    with pytest.raises(ImageError):
        backend.start(replace(good, styles=(noise(3, side=8),)))
    with pytest.raises(RunRefused, match="over this server's limit"):
        backend.start(replace(good, estimate_s=backend.max_run_s * 3))
    assert counters(backend)["started"] == 0 and backend.info(0)["queued"] == 0


def test_the_ceiling_holds_cluster_wide(make_ray_backend, make_request, follow_run):
    strict = make_ray_backend(max_run_s=0.1)  # the registry's creator sets the cluster's ceiling
    lenient = RayBackend("auto", registry_name=strict.registry_name, max_run_s=500)
    assert lenient.max_run_s == pytest.approx(0.1)
    with pytest.raises(RunRefused):
        lenient.start(make_request(4, estimate_s=5.0))
    # With no estimate to refuse it, the worker's wall-time backstop (20 × the ceiling) caps the run.
    view = follow_run(lenient.start(make_request(4, steps=5000, estimate_s=None)), timeout=30)
    assert view.state == RunState.CAPPED and view.best is not None and "far past" in view.message


def test_stop_ends_the_run_on_its_worker_within_seconds(make_ray_backend, make_request, follow_run):
    backend = make_ray_backend(workers=1)
    handle = backend.start(make_request(5, steps=5000, session="a"))
    follow_run(handle, until=lambda v: v.latest is not None and v.latest.step >= 3)
    pressed = time.monotonic()
    handle.leave(stop=True)
    view = follow_run(handle, timeout=10)
    assert time.monotonic() - pressed < 3.0
    assert view.state == RunState.STOPPED and view.best is not None and view.latest.step < 5000
    # The one worker is free again: the next run starts at once rather than queueing behind it.
    nxt = backend.start(make_request(6, steps=3, session="b"))
    follow_run(nxt, until=lambda v: v.state != RunState.QUEUED, timeout=5)


def test_stop_after_a_reload_ends_the_run_once_the_old_tab_lapses(make_ray_backend, make_request, follow_run):
    """The old tab of a reloaded page watches no more (its handle is never polled again); Stop on
    the reloaded page ends the run on its worker once the old tab's lease lapses."""
    backend = make_ray_backend(workers=1, lease_s=1.0)
    old_tab = backend.start(make_request(13, steps=5000, session="tab"))
    follow_run(old_tab, until=lambda v: v.latest is not None and v.latest.step >= 3)
    reloaded = backend.start(make_request(13, steps=5000, session="reloaded"))
    assert reloaded.joined
    reloaded.leave(stop=True)
    deadline = time.monotonic() + 15
    while not (view := backend.peek(old_tab.key)).finished:
        assert time.monotonic() < deadline, f"still {view.state}: the run computes on for nobody"
        time.sleep(0.2)
    assert view.state == RunState.STOPPED and view.best is not None and view.latest.step < 5000
    assert "nobody was watching" not in view.message, view.message


def test_a_killed_worker_fails_its_run_with_the_best_image_and_other_runs_finish(make_ray_backend, make_request,
                                                                                   follow_run):
    backend = make_ray_backend(workers=2)
    doomed = backend.start(make_request(7, steps=5000, session="a"))
    other = backend.start(make_request(8, steps=60, session="b"))
    follow_run(doomed, until=lambda v: v.best is not None and v.latest.step >= 3)
    follow_run(other, until=lambda v: v.state == RunState.RUNNING)
    pids = ray.get(backend._registry.worker_pids.remote())
    pid = next(pid for pid, run_id in pids if run_id == doomed._mirror.run_id)
    os.kill(pid, signal.SIGKILL)
    view = follow_run(doomed, timeout=20)
    assert view.state == RunState.FAILED
    assert "The worker computing this run stopped" in view.message and "best image so far is kept" in view.message
    assert view.best is not None and view.best.size == (48, 48)
    assert follow_run(other).state == RunState.DONE
    # Ray restarts the worker process; the registry uses it again once it answers.
    deadline = time.monotonic() + 60
    while backend.info(0)["ready"] < 2:
        assert time.monotonic() < deadline, "the killed worker did not come back"
        time.sleep(0.2)


def test_one_session_keeps_at_most_one_waiting_run(make_ray_backend, make_request, follow_run):
    backend = make_ray_backend(workers=1)
    busy = backend.start(make_request(9, steps=5000, session="a"))
    follow_run(busy, until=lambda v: v.state == RunState.RUNNING)
    first = backend.start(make_request(10, session="b"))
    assert first.view().state == RunState.QUEUED and first.view().queue.ahead == 1
    second = backend.start(make_request(11, session="b"))
    assert follow_run(first, timeout=5).state == RunState.WITHDRAWN
    assert second.view().state == RunState.QUEUED
    busy.leave(stop=True)
    assert follow_run(second).state == RunState.DONE


def test_two_app_processes_share_one_computation(make_ray_backend, ray_address, tmp_path):
    """Two app processes attached to the cluster, one student on each pressing Run on the same pair
    at the same moment: one computation, and both get the same image."""
    backend = make_ray_backend()  # the registry the two processes share, created with the test's settings
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-m", "tests.ray.app_process", ray_address, backend.registry_name,
                               "12", "40", str(go), str(tmp_path / f"app{i}.png")],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    try:
        for proc in procs:  # both attached before either student presses Run
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-2000:]
        go.touch()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-2000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert abs(results[0]["pressed"] - results[1]["pressed"]) < 1.0
    assert [r["state"] for r in results] == ["done", "done"] and results[0]["key"] == results[1]["key"]
    assert sorted(r["joined"] for r in results) == [False, True]
    images = [(tmp_path / f"app{i}.png").read_bytes() for i in range(2)]
    from PIL import Image
    assert Image.open(io.BytesIO(images[0])).tobytes() == Image.open(io.BytesIO(images[1])).tobytes()
    c = counters(backend)
    assert c["started"] == 1 and c["joined"] + c["served"] == 1
