"""The Community Cloud stand-in: limits applied, the OOM killer seen, the groups removed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from scripts.cloud_standin import BackgroundGroup, CloudGroup, Unavailable, _mount, main

try:
    CloudGroup().check()
    REASON = None
except (Unavailable, OSError) as exc:
    REASON = f"the cgroup v1 stand-in cannot run here: {exc}"

needs_cgroups = pytest.mark.skipif(REASON is not None, reason=REASON or "")
ALLOCATE = [sys.executable, "-c", "b = bytearray(200_000_000); b[::4096] = b'x' * len(b[::4096])"]


@needs_cgroups
def test_a_command_within_the_limit_runs_and_the_groups_are_removed(tmp_path):
    out = tmp_path / "report.json"
    assert main(["--memory-mb", "600", "--json", str(out), "--", *ALLOCATE]) == 0
    report = json.loads(out.read_text())
    assert report["oom_killed"] is False and report["returncode"] == 0
    assert 200 <= report["peak_mb"] <= 600 and report["cpus"] == 2


@needs_cgroups
def test_a_command_over_the_limit_is_reported_as_killed_for_memory(tmp_path):
    out = tmp_path / "report.json"
    assert main(["--memory-mb", "100", "--json", str(out), "--", *ALLOCATE]) == 1
    report = json.loads(out.read_text())
    assert report["oom_killed"] is True and report["returncode"] == -9


@needs_cgroups
def test_the_groups_are_gone_afterwards():
    with CloudGroup(memory_mb=300, cpus=1.5, name="nst-cloud-standin-test") as group:
        made = [group.memory_dir, group.cpu_dir]
        assert (group.memory_dir / "memory.limit_in_bytes").read_text().strip() == str(300 * 10**6 // 4096 * 4096)
        assert int((group.cpu_dir / "cpu.cfs_quota_us").read_text()) == 150_000
    assert not any(p.exists() for p in made)


def test_without_cgroup_v1_it_says_why(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("memory cpu")  # a cgroup v2 mount
    with pytest.raises(Unavailable, match="cgroup v2 only"):
        _mount("memory", tmp_path)


# Both start spinning at {start}, so a slow interpreter start on a busy machine cannot eat the time.
SPIN = [sys.executable, "-c", "import time\nwhile time.time() < {start}: time.sleep(0.01)\n"
        "t = time.process_time()\nwhile time.time() < {end}: pass\nprint(time.process_time() - t)"]


@needs_cgroups
def test_a_process_in_the_background_group_gets_only_the_cpu_others_leave():
    """Two busy processes on one CPU: the one in the background group gets a sliver, however
    high a priority it gives itself (Chromium as root sets its own to nice -8)."""
    start = time.time() + 1.5
    spin = [*SPIN[:2], SPIN[2].format(start=start, end=start + 2.0)]
    with BackgroundGroup() as background:
        made = background.dirs["cpu"]
        assert (made / "cpu.shares").read_text().strip() == "2"

        def start(group):
            def enter():
                os.sched_setaffinity(0, {0})
                if group is not None:
                    group.enter()
                    os.nice(-8)  # what Chromium does to its browser process
            return subprocess.Popen(spin, preexec_fn=enter, stdout=subprocess.PIPE, text=True)

        low, normal = start(background), start(None)
        low_cpu, normal_cpu = (float(p.communicate()[0]) for p in (low, normal))
    assert low_cpu < 0.2 * normal_cpu, (low_cpu, normal_cpu)
    assert not made.exists()


@needs_cgroups
def test_the_background_groups_limits_are_lifted_for_a_moment_and_restored():
    """The load test lifts the browsers' weight and cap while a class presses Run."""
    with BackgroundGroup(cpus=0.5) as background:
        cpu = background.dirs["cpu"]
        limits = lambda: ((cpu / "cpu.shares").read_text().strip(), int((cpu / "cpu.cfs_quota_us").read_text()))
        period = int((cpu / "cpu.cfs_period_us").read_text())
        assert limits() == ("2", period // 2)
        with pytest.raises(KeyboardInterrupt):  # restored even when the clicks fail
            with background.lifted():
                assert limits() == ("1024", -1)
                raise KeyboardInterrupt
        assert limits() == ("2", period // 2)
