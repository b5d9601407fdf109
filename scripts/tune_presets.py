"""Time candidate settings against the benchmark's plain baseline, with the benchmark's judge: how
the presets in nst_core/transfer.py were chosen (figures in README, "Time to quality").

    .venv/bin/python -m scripts.tune_presets 384 '[{"steps": 40, "levels": 2, "lr": 0.03}]'

Each candidate is a JSON object of TransferConfig fields; the baseline (Adam lr 0.02, 300 steps,
one scale) is run once and kept in test-output/baseline_<size>.json for later calls.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nst_core.benchmark import ASSET_CONTENT, ASSET_STYLE, _timed_snapshots, time_to_reach
from nst_core.images import load_image, to_tensor
from nst_core.model import load_vgg
from nst_core.transfer import TransferConfig, evaluate, prepare_targets

WEIGHTS = "../shared/weights/vgg16_hed_features_fp16.pth"


def main(size: int, candidates: list[dict]) -> None:
    model = load_vgg(None, WEIGHTS)
    content, style = load_image(ASSET_CONTENT), load_image(ASSET_STYLE)
    judge = TransferConfig(size=size)  # the default layers, α = 1, β = 5, balanced
    shape = tuple(to_tensor(content, size).shape[-2:])
    targets = prepare_targets(to_tensor(content), [to_tensor(style)], shape, judge, model)

    def curve(cfg):
        return [(t, evaluate(img, content, style, judge, model, targets)["total"])
                for t, img in _timed_snapshots(content, style, cfg, model, shape)]

    saved = Path("test-output") / f"baseline_{size}.json"
    if saved.is_file():
        base = json.loads(saved.read_text())
    else:
        base = curve(TransferConfig(size=size, steps=300, optimizer="adam", lr=0.02, levels=1, snapshot_every=10))
        saved.parent.mkdir(exist_ok=True)
        saved.write_text(json.dumps(base))
    print(f"baseline {base[-1][0]:.1f} s, final cost {base[-1][1]:.4g}", flush=True)
    for c in candidates:
        points = curve(TransferConfig(**{"size": size, "snapshot_every": 1, **c}))
        seconds, final = points[-1]
        same = time_to_reach(base, final)
        print(f"{json.dumps(c)}: {seconds:.1f} s, final cost {final:.4g}; the baseline needs "
              f"{'more than its whole run' if same is None else f'{same:.1f} s'} for that cost", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), json.loads(sys.argv[2]) if len(sys.argv) > 2 else [])
