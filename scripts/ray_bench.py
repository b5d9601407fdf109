"""Measures the Ray backend on a local Ray cluster this command starts (and stops) on this machine.

    .venv/bin/python -m scripts.ray_bench overhead --size 128 --steps 40 --reps 5
    .venv/bin/python -m scripts.ray_bench scaling --students 24
    .venv/bin/python -m scripts.ray_bench lecture --students 300
    .venv/bin/python -m scripts.ray_bench all

``overhead``: the same run, one at a time, on the local backend (in this process) and on the Ray
backend (one worker process), alternating, after a warm-up run on each; both compute with
``--threads`` torch threads. Reports the median seconds from Run to the finished result, and Ray's
overhead in percent.

``scaling``: a simulated class, a driver submitting runs as students would (each its own images, so
none is shared; all press Run at once and poll as the page does) on 1, then 2 worker processes with
one torch thread each. Reports runs per minute and the ratio, and the cores each role kept busy
(``others``: the rest of the machine); on a shared machine, where the workers get fewer cores
than they ask for, ``ratio_per_worker_core`` says what a second worker costs per core it gets.

``lecture``: 300 students on the 2-worker cluster, arriving within ``--arrive-s`` seconds: two
thirds on three bundled pairs with the same settings, the rest on photos of their own; a tenth
reload their page mid-run (leave without Stop, then rejoin). Every student must end with a finished
result (errors: any exception or a state other than done; lost: no result within the deadline;
misdelivered: a result whose key is not the student's, or whose image differs from the others' of
the same key, matches another key's, or differs from the same run recomputed here in-process).

The figures, with their command, date and machine, are in docs/ray.md. Ray is required
(requirements-ray.txt); no GPU is needed or used unless the machine has one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import threading
import time
from dataclasses import replace

import numpy as np
from PIL import Image

from nst_core.serve.backend import LocalBackend, NetworkSpec, RunRequest
from nst_core.serve.states import RunState
from nst_core.transfer import TransferConfig

SPEC = NetworkSpec("vgg16", "random", 0, "vgg16|random|seed0|bench")


def noise(seed: int, side: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8))


def request(seed: int, size: int, steps: int, session: str) -> RunRequest:
    config = TransferConfig(size=size, steps=steps, optimizer="adam", lr=0.05, snapshot_every=10)
    return RunRequest(noise(2 * seed, size), (noise(2 * seed + 1, size),), config, SPEC, session, None)


def follow(handle, timeout: float = 600.0):
    deadline = time.monotonic() + timeout
    view = handle.view()
    while not view.finished:
        if time.monotonic() > deadline:
            return None
        view = handle.wait(view.version, 0.5)
    return view


def start_cluster(cpus: int) -> None:
    import ray
    ray.init(num_cpus=cpus, include_dashboard=False, namespace="nst", log_to_driver=False, configure_logging=False)


def ray_backend(tag: str, workers: int, threads: int):
    from nst_core.serve.ray import RayBackend
    return RayBackend("auto", registry_name=f"bench_{tag}", worker_prefix=f"bench_{tag}", workers=workers,
                      threads=threads)


def retire(backend) -> None:
    """Stop the registry's runs, then end it and its worker processes (their CPUs go back to the cluster)."""
    from nst_core.serve.ray import shutdown_service
    shutdown_service(backend.registry_name, backend.worker_prefix)


def wait_ready(backend, workers: int) -> None:
    while backend.info(0)["ready"] < workers:
        time.sleep(0.2)


# ---------------------------------------------------------------- overhead

def overhead(args) -> dict:
    import torch
    torch.set_num_threads(args.threads)
    local = LocalBackend()
    ray_b = ray_backend("overhead", 1, args.threads)
    wait_ready(ray_b, 1)
    times = {"local": [], "ray": []}
    for rep in range(args.reps + 1):  # rep 0 warms both up: the network built, the code paths run once
        order = [("local", local), ("ray", ray_b)] if rep % 2 else [("ray", ray_b), ("local", local)]
        for name, backend in order:
            seed = 1000 * rep + (1 if name == "local" else 2)
            t0 = time.perf_counter()
            handle = backend.start(request(seed, args.size, args.steps, f"{name}{rep}"))
            view = follow(handle)
            seconds = time.perf_counter() - t0
            handle.leave()
            assert view is not None and view.state == RunState.DONE, (name, view and view.state, view and view.message)
            if rep:
                times[name].append(seconds)
    retire(ray_b)
    local_s, ray_s = statistics.median(times["local"]), statistics.median(times["ray"])
    return {"size": args.size, "steps": args.steps, "threads": args.threads, "reps": args.reps,
            "local_s": [round(t, 3) for t in times["local"]], "ray_s": [round(t, 3) for t in times["ray"]],
            "local_median_s": round(local_s, 3), "ray_median_s": round(ray_s, 3),
            "overhead_pct": round(100 * (ray_s / local_s - 1), 1)}


# ---------------------------------------------------------------- scaling

def a_class(backend, requests: list[RunRequest]) -> tuple[float, list]:
    """Every student presses Run at once and polls until their result; (seconds, final views)."""
    views: list = [None] * len(requests)
    go = threading.Event()

    def student(i):
        go.wait()
        handle = backend.start(requests[i])
        views[i] = follow(handle)
        handle.leave()

    threads = [threading.Thread(target=student, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    go.set()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, views


def cpu_by_role() -> dict:
    """CPU seconds so far of this driver, the registry, the workers, Ray's own processes and the
    whole machine (what is left is other people's work on it)."""
    import psutil
    roles = dict.fromkeys(("driver", "registry", "workers", "ray"), 0.0)
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            title = " ".join(proc.info["cmdline"] or []) or proc.info["name"] or ""
            t = proc.cpu_times()
        except psutil.Error:
            continue
        cpu = t.user + t.system
        if proc.info["pid"] == me:
            roles["driver"] += cpu
        elif "Registry" in title:
            roles["registry"] += cpu
        elif "Worker" in title and "ray::" in title:
            roles["workers"] += cpu
        elif "ray" in title and ("raylet" in title or "gcs_server" in title or "ray::" in title
                                 or "ray/_private" in title or "ray/autoscaler" in title or "dashboard" in title):
            roles["ray"] += cpu
    total = psutil.cpu_times()
    roles["machine"] = total.user + total.system + getattr(total, "nice", 0.0)
    return roles


def cpu_share(before: dict, after: dict, seconds: float) -> dict:
    """Cores each role kept busy on average; ``others``: the rest of the machine."""
    used = {k: (after[k] - before[k]) / seconds for k in before}
    used["others"] = used["machine"] - sum(v for k, v in used.items() if k != "machine")
    return {k: round(v, 2) for k, v in used.items()}


def scaling(args) -> dict:
    out = {"students": args.students, "size": args.size, "steps": args.steps}
    for workers in (1, 2):
        backend = ray_backend(f"scale{workers}", workers, 1)
        wait_ready(backend, workers)
        a_class(backend, [request(900 + w, args.size, args.steps, f"warm{w}") for w in range(workers)])
        base = 10_000 * workers
        cpu = cpu_by_role()
        seconds, views = a_class(backend, [request(base + i, args.size, args.steps, f"student{i}")
                                           for i in range(args.students)])
        assert all(v is not None and v.state == RunState.DONE for v in views)
        busy = cpu_share(cpu, cpu_by_role(), seconds)
        out[f"workers_{workers}"] = {"seconds": round(seconds, 2), "runs_per_min": round(60 * args.students / seconds, 1),
                                     "cores_busy": busy, "loadavg_1m": round(os.getloadavg()[0], 2),
                                     # On a shared machine the workers get fewer cores than they ask for: per
                                     # core they got, the throughput says whether a second worker costs anything.
                                     "runs_per_min_per_worker_core": round(60 * args.students / seconds
                                                                           / max(busy["workers"], 1e-9), 1)}
        retire(backend)
    out["ratio"] = round(out["workers_2"]["runs_per_min"] / out["workers_1"]["runs_per_min"], 2)
    out["ratio_per_worker_core"] = round(out["workers_2"]["runs_per_min_per_worker_core"]
                                         / out["workers_1"]["runs_per_min_per_worker_core"], 2)
    return out


# ---------------------------------------------------------------- lecture

def lecture(args) -> dict:
    import torch
    backend = ray_backend("lecture", 2, 1)
    wait_ready(backend, 2)
    rng = random.Random(args.seed)
    n_shared = args.students * 2 // 3
    plan = []  # (student, request, arrival s, reloads)
    for i in range(args.students):
        seed = 50_000 + i % 3 if i < n_shared else 60_000 + i  # three bundled pairs, else one's own photos
        plan.append((i, request(seed, args.size, args.steps, f"student{i}"), rng.uniform(0, args.arrive_s),
                     rng.random() < 0.1))
    rng.shuffle(plan)
    results: dict[int, dict] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def student(i, req, arrival, reloads, t0):
        time.sleep(max(0.0, t0 + arrival - time.monotonic()))
        try:
            handle = backend.start(req)
            if reloads:  # the page reloads mid-run: the old script ends without leaving, a new one rejoins
                time.sleep(rng.uniform(0.2, 2.0))
                handle = backend.rejoin(req.key, req.session) or backend.start(req)
            view = follow(handle, timeout=args.deadline_s)
            handle.leave()
            got = {"key": handle.key, "state": None if view is None else str(view.state),
                   "digest": None if view is None or view.best is None else
                   hashlib.sha256(view.best.tobytes()).hexdigest(), "best": None if view is None else view.best,
                   "message": None if view is None else view.message}
        except Exception as exc:  # noqa: BLE001 - counted, reported
            with lock:
                errors.append(f"student {i}: {type(exc).__name__}: {exc}")
            return
        with lock:
            results[i] = got

    t0 = time.monotonic() + 1.0
    threads = [threading.Thread(target=student, args=(*p, t0)) for p in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    expected = {i: req.key for i, req, _, _ in plan}
    lost = [i for i in expected if i not in results and not any(e.startswith(f"student {i}:") for e in errors)]
    lost += [i for i, r in results.items() if r["state"] is None]
    failed = [i for i, r in results.items() if r["state"] not in (None, "done")]
    errors += [f"student {i}: {results[i]['state']}: {results[i]['message']}" for i in failed]
    wrong = [i for i, r in results.items() if r["key"] != expected[i]]
    by_key: dict[str, set] = {}
    for r in results.values():
        if r["digest"] is not None:
            by_key.setdefault(r["key"], set()).add(r["digest"])
    wrong_keys = [k for k, d in by_key.items() if len(d) != 1]
    digests = [next(iter(d)) for d in by_key.values() if len(d) == 1]
    collisions = len(digests) - len(set(digests))
    # A sample of the runs recomputed here, in-process with one thread like the workers: the same image.
    torch.set_num_threads(1)
    local = LocalBackend()
    recomputed, differ = 0, []
    for i, req, _, _ in sorted(plan, key=lambda p: p[0])[:: max(1, args.students // 6)]:
        r = results.get(i)
        if r is None or r["best"] is None:
            continue
        mine = follow(local.start(replace(req, session=f"check{i}")))
        recomputed += 1
        diff = np.abs(np.asarray(mine.best, dtype=np.int16) - np.asarray(r["best"], dtype=np.int16)).max()
        if diff > 1:
            differ.append((i, int(diff)))
    counters = backend.info(0)["counters"]
    retire(backend)
    return {"students": args.students, "arrive_s": args.arrive_s, "size": args.size, "steps": args.steps,
            "distinct_runs": len(set(expected.values())), "computed": counters["started"],
            "joined": counters["joined"], "served_from_results": counters["served"],
            "seconds_to_last_result": round(elapsed, 1), "errors": len(errors), "error_samples": errors[:5],
            "lost": len(lost), "misdelivered": len(wrong) + len(wrong_keys) + collisions + len(differ),
            "recomputed_checked": recomputed, "recomputed_differ": differ}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["overhead", "scaling", "lecture", "all"])
    p.add_argument("--size", type=int, default=None, help="px (overhead: 128; scaling and lecture: 64)")
    p.add_argument("--steps", type=int, default=None, help="steps a run (overhead: 40; scaling, lecture: 30)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of a run (overhead)")
    p.add_argument("--reps", type=int, default=5, help="runs timed on each backend (overhead)")
    p.add_argument("--students", type=int, default=None, help="scaling: 24; lecture: 300")
    p.add_argument("--arrive-s", type=float, default=30.0, help="lecture: students arrive within this")
    p.add_argument("--deadline-s", type=float, default=900.0, help="lecture: a student waits at most this")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="the local cluster's CPUs")
    args = p.parse_args()
    start_cluster(args.cpus)
    report = {"cpus": args.cpus, "gpu": _gpu()}
    todo = ["overhead", "scaling", "lecture"] if args.what == "all" else [args.what]
    for what in todo:
        sub = argparse.Namespace(**vars(args))
        sub.size = args.size or (128 if what == "overhead" else 64)
        sub.steps = args.steps or (40 if what == "overhead" else 30)
        sub.students = args.students or (24 if what == "scaling" else 300)
        t0 = time.perf_counter()
        report[what] = {**globals()[what](sub), "wall_s": round(time.perf_counter() - t0, 1)}
        print(json.dumps({what: report[what]}), flush=True)
    import ray
    ray.shutdown()


def _gpu() -> str:
    import torch
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"


if __name__ == "__main__":
    main()
