"""Times What layers see when a student moves the layer slider, on the server's side.

    .venv/bin/python -m scripts.layer_switch_bench --weights ../shared/weights/vgg16_hed_features_fp16.pth

The page runs under Streamlit's AppTest in this process (no browser): it is opened once, the
background warm-up (every layer's activations and drawings, the bundled pictures' top-9 index) is
left to finish, and then the slider visits every layer, in order and back. Each figure is the
seconds of one rerun of the page after a slider move: what the server spends before the browser can
draw, not counting the browser's own drawing or the network. ``--cold`` skips the wait for the
warm-up, to show what it saves.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from streamlit.testing.v1 import AppTest

from ui.cache import background

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="a weight file (sets NST_WEIGHTS); without it, a random VGG16")
    parser.add_argument("--size", type=int, default=256, help="image size (long side, px)")
    parser.add_argument("--cold", action="store_true", help="do not wait for the background warm-up")
    args = parser.parse_args()
    os.chdir(ROOT)
    state = {"size": args.size}
    if args.weights:
        os.environ["NST_WEIGHTS"] = os.path.abspath(args.weights)
    else:
        state.update(weights_source="random", arch="vgg16")

    at = AppTest.from_file(os.path.join(ROOT, "streamlit_app.py"), default_timeout=1800)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    start = time.perf_counter()
    at.switch_page("pages/activations.py").run()
    first = time.perf_counter() - start
    assert not at.exception, [e.value for e in at.exception]
    warm_s = None
    if not args.cold:
        start = time.perf_counter()
        background().drain(1800)
        at.run()  # the page's own reruns ask for the rest of the warm-up
        background().drain(1800)
        warm_s = time.perf_counter() - start
    layers = list(at.select_slider(key="act_layer").options)
    times = {}
    for layer in layers[1:] + layers[-2::-1]:
        start = time.perf_counter()
        at.select_slider(key="act_layer").set_value(layer).run()
        times.setdefault(layer, []).append(time.perf_counter() - start)
        assert not at.exception, [e.value for e in at.exception]
    every = [t for ts in times.values() for t in ts]
    print(f"machine: {platform.node()} ({os.cpu_count()} CPUs), {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"network: {args.weights or 'random VGG16'}; size {args.size} px; "
          f"{'cold (no warm-up)' if args.cold else f'after the warm-up ({warm_s:.0f} s)'}")
    print(f"first view of the page: {first:.2f} s")
    for layer, ts in times.items():
        print(f"  {layer:8s} " + " ".join(f"{t:.2f}" for t in ts))
    print(f"slider moves: {len(every)}; median {statistics.median(every):.2f} s, slowest {max(every):.2f} s")


if __name__ == "__main__":
    main()
