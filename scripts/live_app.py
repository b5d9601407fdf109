"""The real app for browser tests and the load test: `streamlit run` on a free localhost port,
driven by Playwright through Debian's Chromium (never a downloaded browser)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Debian's headless shell (package chromium-headless-shell) is Chromium without the desktop
# browser around it: the browser suite took about 20 s less with it (docs/testing.md).
CHROMIUM = next((path for path in ("/usr/bin/chromium-headless-shell", "/usr/bin/chromium")
                 if Path(path).exists()), "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


# A server for tests and measurements: the app's default weights whatever this shell sets, and no
# watching of the source for edits (its polling of every file only takes CPU from the pages).
QUIET_SERVER_ENV = {"STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none", "NST_WEIGHTS": None}
# A long run on the small random network, as a link's query: its steps are quick, and a test or a
# measurement stops it once it has seen what it came for.
LONG_RUN = "?weights_source=random&arch=vgg16&size=128&steps=400&levels=1&preset=Quick"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(env: dict[str, str | None], log_path: Path, ready_s: float = 90, preexec_fn=None):
    """Start the app with ``env`` on top of this process's environment (a None value unsets a
    variable); yield (url, process); stop it afterwards. ``preexec_fn`` runs in the child before
    the server starts (the Community Cloud stand-in moves it into its cgroups there)."""
    full_env = dict(os.environ)
    for key, value in env.items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    port = free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port",
                                 str(port), "--server.address", "127.0.0.1", "--server.headless", "true"],
                                cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec_fn)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + ready_s
            while True:
                try:
                    if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                        break
                except OSError:
                    if time.time() > deadline or proc.poll() is not None:
                        raise RuntimeError(f"streamlit did not become healthy within {ready_s:.0f} s "
                                           f"(log: {log_path})")
                    time.sleep(0.5)
            yield url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def launch_chromium(playwright, cgroup_procs: Path | None = None):
    """Debian's Chromium; with ``cgroup_procs`` (a cgroup's ``cgroup.procs``, such as
    ``scripts.cloud_standin.BackgroundGroup``'s), started inside that group, which its renderers
    cannot leave."""
    executable = CHROMIUM
    if cgroup_procs is not None:
        wrapper = ROOT / "test-output" / "chromium_in_group.sh"
        wrapper.parent.mkdir(parents=True, exist_ok=True)
        wrapper.write_text(f'#!/bin/sh\necho $$ > "{cgroup_procs}"\nexec {CHROMIUM} "$@"\n')
        wrapper.chmod(0o755)
        executable = str(wrapper)
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)


# Streamlit's page marks its root with the script's state ("running", "notRunning", ...), as its
# own browser tests read it; a rerun's placeholders are skeletons, and the status widget spins. The
# state turns "running" only when the server's answer to a rerun request arrives, so the page also
# notes when it last sent the server a message and last heard from it: a request unanswered for up
# to 3 s counts as busy. The note is set on the first look at a page, and lasts until it navigates.
_LOOK = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    const drawing = app === null || app.dataset.testScriptState !== 'notRunning'
        || document.querySelector('[data-testid="stStatusWidget"], [data-testid="stSkeleton"]') !== null;
    const w = window;
    if (w.__nstSocket === undefined) {
        const socket = w.__nstSocket = {sentAt: 0, heardAt: 0};
        const send = WebSocket.prototype.send;
        WebSocket.prototype.send = function (data) {
            if (!this.__nstHeard) {
                this.__nstHeard = true;
                this.addEventListener('message', () => { socket.heardAt = performance.now(); });
            }
            socket.sentAt = performance.now();
            return send.call(this, data);
        };
        return {busy: drawing, fresh: true};
    }
    const s = w.__nstSocket;
    return {busy: drawing || (s.sentAt > s.heardAt && performance.now() - s.sentAt < 3000), fresh: false};
}"""


def wait_idle(page, timeout=120):
    """Wait until Streamlit has finished running the script, and is not between two reruns."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout * 1000)
    deadline = time.time() + timeout
    if page.evaluate(_LOOK)["fresh"]:
        time.sleep(0.4)  # an action before the page was first looked at has reached the server by now
    quiet = 0
    while time.time() < deadline:
        quiet = 0 if page.evaluate(_LOOK)["busy"] else quiet + 1
        if quiet >= 3:
            return
        time.sleep(0.15)
    raise AssertionError("the app kept running")


def exception_text(page) -> str | None:
    """The text of the first exception box Streamlit shows, if any."""
    boxes = page.locator('[data-testid="stException"]')
    return boxes.first.inner_text() if boxes.count() else None


class FlakyNetwork:
    """A localhost TCP proxy in front of the app whose connections can be cut, as a school's Wi-Fi
    drops them: the browser's WebSocket closes without a goodbye, and Streamlit's page reconnects
    by itself once the proxy lets it through again. Use ``url`` instead of the server's."""

    def __init__(self, server_url: str):
        self._target = ("127.0.0.1", int(server_url.rsplit(":", 1)[1]))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self.down = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self, seconds: float) -> None:
        """Drop every connection and refuse new ones for ``seconds``."""
        self.down = True
        with self._lock:
            for conn in self._open:
                self._shut(conn)
            self._open.clear()
        time.sleep(seconds)
        self.down = False

    def _accept(self) -> None:
        while True:
            client, _ = self._listener.accept()
            if self.down:
                client.close()
                continue
            server = socket.create_connection(self._target)
            with self._lock:
                self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for conn in (src, dst):
            FlakyNetwork._shut(conn)

    @staticmethod
    def _shut(conn: socket.socket) -> None:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
