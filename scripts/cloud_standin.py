"""A stand-in for Streamlit Community Cloud: run a command under its memory and CPU limits.

Community Cloud gives an app about 2 CPUs and 2.7 GB; past the memory limit the kernel kills the
server. This runs a command (the Streamlit server, a load test's target) inside a cgroup v1 memory
group (``memory.limit_in_bytes``) and a CPU group (``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``),
then reports the group's peak memory (``memory.max_usage_in_bytes``, page cache included) and
whether the OOM killer fired (``memory.oom_control``'s ``oom_kill`` count, ``memory.failcnt``, and
a SIGKILL exit), and removes the groups.

The groups are made inside this process's own groups, so whatever limits already hold there still
hold. It needs root and cgroup v1; elsewhere it exits with status 77 and says why (a skip).

    sudo .venv/bin/python scripts/cloud_standin.py [--memory-mb 2700] [--cpus 2] [--json FILE] -- CMD ARGS...
    .venv/bin/python scripts/cloud_standin.py --check      # can it run here? (exit 0, or 77 and why)

From Python (a load test): ``with CloudGroup() as group: proc = subprocess.Popen(cmd,
preexec_fn=group.enter); ...; report = group.report(proc.wait())``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
SKIP = 77  # the customary exit status of a test that could not run here
COMMUNITY_CLOUD_MEMORY_MB = 2700
COMMUNITY_CLOUD_CPUS = 2.0


class Unavailable(RuntimeError):
    """Why the stand-in cannot run here."""


def _own_group(controller: str, proc_cgroup: str = "/proc/self/cgroup") -> str:
    """This process's group in a cgroup v1 hierarchy (the path after 'N:controllers:')."""
    for line in Path(proc_cgroup).read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    raise Unavailable(f"this process is in no cgroup v1 '{controller}' hierarchy")


def _mount(controller: str, root: Path) -> Path:
    """Where a v1 controller is mounted: its own folder, or a joint one such as cpu,cpuacct."""
    for candidate in [root / controller, *sorted(root.glob(f"*{controller}*"))]:
        if candidate.is_dir() and (candidate / "cgroup.procs").exists() and not (candidate / "cgroup.controllers").exists():
            return candidate
    raise Unavailable(f"no cgroup v1 '{controller}' controller under {root} (cgroup v2 only, or not mounted)")


class _Groups:
    """Groups made inside this process's own v1 groups, and removed on exit with whatever the
    command left running in them."""

    controllers: tuple[str, ...] = ()

    def __init__(self, name: str, root: Path = CGROUP_ROOT):
        self.name, self.root = name, root
        self.dirs: dict[str, Path] = {}

    def check(self) -> None:
        """Raise :class:`Unavailable` with the reason when the groups cannot be made here."""
        if os.geteuid() != 0:
            raise Unavailable("needs root to create cgroups (run it with sudo, or as root in a container)")
        for controller in self.controllers:
            base = _mount(controller, self.root) / _own_group(controller).lstrip("/")
            if not os.access(base, os.W_OK):
                raise Unavailable(f"cannot create groups in {base} (read-only cgroup filesystem?)")

    def __enter__(self):
        self.check()
        try:
            for controller in self.controllers:
                path = _mount(controller, self.root) / _own_group(controller).lstrip("/") / self.name
                path.mkdir()
                self.dirs[controller] = path
            self._limit()
        except OSError as exc:
            self.__exit__(None, None, None)
            raise Unavailable(f"could not set up the groups: {exc}") from exc
        return self

    def _limit(self) -> None:
        raise NotImplementedError

    def enter(self) -> None:
        """Move the calling process into every group (a ``preexec_fn`` for subprocess)."""
        for group in self.dirs.values():
            (group / "cgroup.procs").write_text(str(os.getpid()))

    def _leftovers(self) -> list[int]:
        pids = set()
        for group in self.dirs.values():
            if group.exists():
                pids |= {int(p) for p in (group / "cgroup.procs").read_text().split()}
        return sorted(pids)

    def __exit__(self, *exc) -> None:
        # Processes the command left behind (it started them) are ended so the groups can go.
        for pid in self._leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while self._leftovers() and time.monotonic() < deadline:
            time.sleep(0.05)
        for group in reversed(list(self.dirs.values())):
            if group.exists():
                group.rmdir()


class CloudGroup(_Groups):
    """A memory group and a CPU group with Community Cloud's limits, removed on exit."""

    controllers = ("memory", "cpu")

    def __init__(self, memory_mb: float = COMMUNITY_CLOUD_MEMORY_MB, cpus: float = COMMUNITY_CLOUD_CPUS,
                 name: str | None = None, root: Path = CGROUP_ROOT):
        super().__init__(name or f"nst-cloud-standin-{os.getpid()}", root)
        self.memory_bytes = int(memory_mb * 1_000_000)
        self.cpus = cpus

    @property
    def memory_dir(self) -> Path | None:
        return self.dirs.get("memory")

    @property
    def cpu_dir(self) -> Path | None:
        return self.dirs.get("cpu")

    def _limit(self) -> None:
        # The limit first; memsw (memory + swap) may only be set at or above it.
        (self.memory_dir / "memory.limit_in_bytes").write_text(str(self.memory_bytes))
        memsw = self.memory_dir / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            memsw.write_text(str(self.memory_bytes))
        period = int((self.cpu_dir / "cpu.cfs_period_us").read_text())
        (self.cpu_dir / "cpu.cfs_quota_us").write_text(str(int(self.cpus * period)))

    def report(self, returncode: int | None = None) -> dict:
        """Peak memory, the limit, and whether the kernel's OOM killer fired in the group."""
        mem = self.memory_dir
        oom = dict(line.split() for line in (mem / "memory.oom_control").read_text().splitlines())
        peak = int((mem / "memory.max_usage_in_bytes").read_text())
        failcnt = int((mem / "memory.failcnt").read_text())
        oom_kills = int(oom.get("oom_kill", 0))
        quota = int((self.cpu_dir / "cpu.cfs_quota_us").read_text())
        period = int((self.cpu_dir / "cpu.cfs_period_us").read_text())
        killed = returncode == -signal.SIGKILL
        return {"peak_mb": round(peak / 1e6, 1), "limit_mb": round(self.memory_bytes / 1e6, 1),
                "cpus": quota / period, "failcnt": failcnt, "oom_kills": oom_kills,
                "oom_killed": oom_kills > 0 or (killed and failcnt > 0), "returncode": returncode}


class BackgroundGroup(_Groups):
    """A CPU group that takes little from everything else: a low weight (``cpu.shares``, against the
    default 1024; 2 is the lowest), and with ``cpus`` a cap. A load test's browsers go here, since
    on Community Cloud they run on the students' own computers. Niceness does not do this:
    Chromium running as root sets its own browser process to nice -8 and its busy renderers to 0."""

    controllers = ("cpu",)

    def __init__(self, shares: int = 2, cpus: float | None = None, name: str | None = None,
                 root: Path = CGROUP_ROOT):
        super().__init__(name or f"nst-background-{os.getpid()}", root)
        self.shares, self.cpus = shares, cpus

    def _limit(self) -> None:
        cpu = self.dirs["cpu"]
        (cpu / "cpu.shares").write_text(str(self.shares))
        if self.cpus is not None:
            period = int((cpu / "cpu.cfs_period_us").read_text())
            (cpu / "cpu.cfs_quota_us").write_text(str(int(self.cpus * period)))

    @property
    def procs(self) -> Path:
        return self.dirs["cpu"] / "cgroup.procs"

    @contextmanager
    def lifted(self):
        """The default weight and no cap for a moment, then the group's own again: for the instant a
        class presses Run, which on Community Cloud costs the server nothing, since the clicks come
        from the students' own computers."""
        cpu = self.dirs["cpu"]
        (cpu / "cpu.shares").write_text("1024")
        (cpu / "cpu.cfs_quota_us").write_text("-1")
        try:
            yield
        finally:
            self._limit()


def run(command: list[str], memory_mb: float, cpus: float) -> dict:
    with CloudGroup(memory_mb, cpus) as group:
        proc = subprocess.Popen(command, preexec_fn=group.enter)
        # Stopping the stand-in stops the command first, so the groups can be reported and removed.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, frame: proc.send_signal(signum))
        peak_rss = 0.0
        while proc.poll() is None:
            peak_rss = max(peak_rss, _peak_rss_mb(proc.pid))
            time.sleep(0.5)
        return {**group.report(proc.returncode), "command_peak_rss_mb": round(peak_rss, 1)}


def _peak_rss_mb(pid: int) -> float:
    """The command's own peak resident size (VmHWM). The group's figure counts only pages charged
    to it: shared libraries another process already loaded are charged elsewhere, so the group
    may report less than the process really maps, as a fresh container would not. Read here rather
    than with ``nst_core.benchmark.peak_rss_mb`` (psutil has no peak on Linux), because importing
    nst_core would load torch, some 800 MB, into this standard-library script that runs as root."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory-mb", type=float, default=COMMUNITY_CLOUD_MEMORY_MB)
    parser.add_argument("--cpus", type=float, default=COMMUNITY_CLOUD_CPUS)
    parser.add_argument("--json", help="also write the report to this file")
    parser.add_argument("--check", action="store_true", help="only say whether the stand-in can run here")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    try:
        if args.check:
            CloudGroup(args.memory_mb, args.cpus).check()
            print("cloud-standin: available (cgroup v1 memory and cpu, as root)")
            return 0
        if not command:
            parser.error("give the command to run after --")
        report = run(command, args.memory_mb, args.cpus)
    except Unavailable as exc:
        print(f"cloud-standin: SKIP: {exc}", file=sys.stderr)
        return SKIP
    print(f"cloud-standin: peak {report['peak_mb']:.0f} MB of {report['limit_mb']:.0f} MB in the group "
          f"(the command's own peak RSS {report['command_peak_rss_mb']:.0f} MB), "
          f"{report['cpus']:g} CPUs, OOM killer {'FIRED' if report['oom_killed'] else 'did not fire'} "
          f"(oom_kill {report['oom_kills']}, failcnt {report['failcnt']}), exit status {report['returncode']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0 if report["returncode"] == 0 and not report["oom_killed"] else 1


if __name__ == "__main__":
    sys.exit(main())
