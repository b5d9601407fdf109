"""Where a command's CPU goes: run it, and sum the CPU seconds of it and every process it starts,
grouped by kind (app servers, Chromium's renderers and its other processes, Ray, pytest and
its xdist workers, other).

    .venv/bin/python -m scripts.cpu_by_process -- .venv/bin/python -m pytest tests/browser

Processes are looked at every 0.2 s, so one that lives less than that may be missed, and the last
0.2 s of one that ends is. docs/testing.md quotes its figures for the suite's steps.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from collections import Counter

import psutil

from nst_core.benchmark import cpu_seconds

# (words, kind): the first kind whose words all appear in a process's command line names it.
KINDS = ((("streamlit run",), "app servers"), (("chrom", "--type=renderer"), "Chromium renderers"),
         (("chrom",), "Chromium, other"), (("pytest",), "pytest"),
         (("exec(eval(sys.stdin.readline()))",), "pytest-xdist workers"), (("ray",), "Ray"))


def kind_of(cmdline: str) -> str:
    return next((kind for words, kind in KINDS if all(w in cmdline for w in words)), "other")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="+", help="the command to run (after --)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    proc = subprocess.Popen(args.command)
    root = psutil.Process(proc.pid)
    seen: dict[int, tuple[str, float]] = {}  # pid -> (kind, CPU seconds at its last look)
    while proc.poll() is None:
        try:
            family = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        for p in family:
            try:
                kind = seen[p.pid][0] if p.pid in seen else kind_of(" ".join(p.cmdline()))
                seen[p.pid] = (kind, cpu_seconds(p.pid))
            except psutil.Error:  # it ended between the listing and the look
                pass
        time.sleep(0.2)
    totals = Counter()
    for kind, cpu in seen.values():
        totals[kind] += cpu
    print(f"wall {time.monotonic() - start:.1f} s, exit status {proc.returncode}")
    for kind, cpu in totals.most_common():
        print(f"{kind:20} {cpu:7.1f} CPU-s")
    print(f"{'all':20} {sum(totals.values()):7.1f} CPU-s")
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
