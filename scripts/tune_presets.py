"""Time candidate settings against the benchmark's plain baseline, on the benchmark's fixed objective
and judge: how the presets in nst_core/transfer.py were chosen (figures in docs/benchmarks.md,
"Time to quality").

    .venv/bin/python -m scripts.tune_presets 256 '[{"optimizer": "lbfgs", "lr": 1, "levels": 2, "steps": 100}]'

Each candidate is a JSON object of TransferConfig fields (optimizer, schedule, levels, precision…);
the objective is always ``benchmark.JUDGE``. The baseline (Adam lr 0.02, 300 steps, one scale,
float32) is run once and kept in test-output/baseline_<size>.json for later calls.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nst_core.benchmark import JUDGE, judged_curves, time_to_reach
from nst_core.model import load_vgg
from nst_core.transfer import TransferConfig

WEIGHTS = "../shared/weights/vgg16_hed_features_fp16.pth"


def main(size: int, candidates: list[dict]) -> None:
    model = load_vgg(None, WEIGHTS)
    curve = judged_curves(model, size)
    saved = Path("test-output") / f"baseline_{size}.json"
    if saved.is_file():
        base = json.loads(saved.read_text())
    else:
        base = curve(TransferConfig(size=size, steps=300, optimizer="adam", lr=0.02, levels=1, precision="fp32",
                                    snapshot_every=10, **JUDGE))
        saved.parent.mkdir(exist_ok=True)
        saved.write_text(json.dumps(base))
    print(f"baseline {base[-1][0]:.1f} s, final cost {base[-1][1]:.4g}", flush=True)
    for c in candidates:
        points = curve(TransferConfig(**{"size": size, "snapshot_every": 1, **JUDGE, **c}))
        seconds, final = points[-1]
        same = time_to_reach(base, final)
        reached = time_to_reach(points, base[-1][1])
        print(f"{json.dumps(c)}: {seconds:.1f} s, final cost {final:.4g}; the baseline needs "
              f"{'more than its whole run' if same is None else f'{same:.1f} s'} for that cost; "
              f"{'never reached' if reached is None else f'reached'} the baseline's final cost"
              f"{'' if reached is None else f' at {reached:.1f} s ({reached / base[-1][0]:.0%} of its time)'}",
              flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), json.loads(sys.argv[2]) if len(sys.argv) > 2 else [])
