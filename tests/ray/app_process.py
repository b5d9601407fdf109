"""A second app process, for the test of two app processes on one cluster: it attaches to the
cluster at ``address`` as a driver, says "ready", presses Run for one student as soon as the file
``go`` exists, follows the run to its end and writes what the student got to ``out``: a JSON line
on stdout, and the best image as PNG.

    python -m tests.ray.app_process ADDRESS REGISTRY_NAME SEED STEPS GO OUT
"""

from __future__ import annotations

import io
import json
import os
import sys
import time

import numpy as np
from PIL import Image

from nst_core.serve.backend import NetworkSpec, RunRequest
from nst_core.transfer import TransferConfig

SPEC = NetworkSpec("vgg16", "random", 0, "vgg16|random|seed0|tests")


def noise(seed: int, side: int = 48) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8))


def request(seed: int, steps: int, session: str) -> RunRequest:
    config = TransferConfig(size=48, steps=steps, optimizer="adam", lr=0.05, snapshot_every=5)
    return RunRequest(noise(2 * seed), (noise(2 * seed + 1),), config, SPEC, session, 5.0)


def main(address: str, registry_name: str, seed: str, steps: str, go: str, out: str) -> None:
    from nst_core.serve.ray_backend import RayBackend
    backend = RayBackend(address, registry_name=registry_name, init={"configure_logging": False})
    req = request(int(seed), int(steps), f"student-of-{out}")
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.01)
    pressed = time.time()
    handle = backend.start(req)
    view = handle.view()
    while not view.finished:
        view = handle.wait(view.version, 0.5)
    handle.leave()
    png = io.BytesIO()
    view.best.save(png, format="PNG")
    with open(out, "wb") as f:
        f.write(png.getvalue())
    print(json.dumps({"state": str(view.state), "joined": handle.joined, "key": handle.key,
                      "steps": view.latest.step if view.latest else 0, "pressed": pressed,
                      "finished": time.time()}), flush=True)
    os._exit(0)  # the student's result is out; Ray's and PyTorch's teardown would take seconds that test nothing


if __name__ == "__main__":
    main(*sys.argv[1:])
