"""How much a run slows when other Python threads of the same process are busy, as a Streamlit
server's session threads are during a class, under two GIL switch intervals.

    .venv/bin/python -m scripts.measure_gil --weights ../shared/weights/vgg16_hed_features_fp16.pth

Prints the seconds of one short run alone, then beside ``--threads`` busy pure-Python threads at
each switch interval. The server sets the smaller interval in ``ui/network.py``.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from nst_core import load_image, load_vgg
from nst_core.transfer import preset_config, run

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default="random")
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--intervals", default="0.005,0.0002", help="switch intervals in seconds, comma-separated")
    args = p.parse_args()
    model = load_vgg("vgg16" if args.weights == "random" else None, args.weights)
    content, style = load_image(ASSETS / "content/chelsea_cat.jpg"), load_image(ASSETS / "styles/starry_night.jpg")
    config = preset_config("Quick", size=128, steps=20, levels=1)
    model.auto_precision()  # decided before any timing

    def timed() -> float:
        start = time.perf_counter()
        for _ in run(content, style, config, model):
            pass
        return time.perf_counter() - start

    print(f"{model.description}: 20 L-BFGS steps at 128 px")
    print(f"alone, switch interval {sys.getswitchinterval():g} s: {timed():.2f} s")
    for interval in (float(v) for v in args.intervals.split(",")):
        sys.setswitchinterval(interval)
        stop = threading.Event()

        def busy() -> None:
            while not stop.is_set():
                sum(i * i for i in range(2000))
        threads = [threading.Thread(target=busy) for _ in range(args.threads)]
        for t in threads:
            t.start()
        try:
            print(f"beside {args.threads} busy Python threads, switch interval {interval:g} s: {timed():.2f} s")
        finally:
            stop.set()
            for t in threads:
                t.join()
        print(f"alone, switch interval {interval:g} s: {timed():.2f} s")


if __name__ == "__main__":
    main()
