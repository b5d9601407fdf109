"""Command line: ``python -m nst_core stylize|reconstruct|benchmark``.

Errors a person can fix (a bad image, an unknown layer, missing weights) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import replace
from pathlib import Path

from .experiments import RECONSTRUCTION, content_reconstruction, style_reconstruction
from .images import ImageError, load_image, to_pil
from .model import ARCHS, WEIGHTS_ENV, ModelError, configure_threads, load_vgg, resolve_device, resolve_layers
from .settings import add_cli_options, cli_values
from .transfer import DEFAULT_PRESET, PRESETS, TransferConfig, preset_config, run


def _csv_list(text: str, cast=str) -> tuple:
    try:
        return tuple(cast(x.strip()) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a comma-separated list: {text!r}") from exc


PRESET_NAMES = {name.split()[0].lower(): name for name in PRESETS}  # "paper" → "Paper (Gatys 2016)"


def _preset_list(text: str) -> tuple[str, ...]:
    names = _csv_list(text)
    unknown = [n for n in names if n.lower() not in PRESET_NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown preset {unknown[0]!r}: choose from {', '.join(PRESET_NAMES)}")
    return tuple(PRESET_NAMES[n.lower()] for n in names)


def _add_run_options(p: argparse.ArgumentParser, base: TransferConfig, preset_note=None, skip=()) -> None:
    p.add_argument("-o", "--output", required=True, help="where to write the PNG")
    add_cli_options(p, base, skip=skip, preset_note=preset_note)
    p.add_argument("--arch", choices=ARCHS, default=None, help="network (default vgg19; a weights file decides it)")
    p.add_argument("--weights", default=os.environ.get(WEIGHTS_ENV, "imagenet"),
                   help=f"imagenet, random, or a path to a VGG features state dict (default: ${WEIGHTS_ENV} or imagenet)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--save-every", type=int, default=0, help="also save a snapshot every N steps")
    p.add_argument("--log", default=None, help="write every cost term of every step to this CSV file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nst_core", description="Neural style transfer (Gatys et al.) on VGG.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("stylize", help="paint CONTENT in the style of STYLE")
    p.add_argument("content")
    p.add_argument("style", nargs="+", help="one or more style images")
    p.add_argument("--style-weights", type=lambda t: _csv_list(t, float), default=None, help="λ per style layer")
    p.add_argument("--style-blend", type=lambda t: _csv_list(t, float), default=None, help="weight per style image")
    p.add_argument("--preset", choices=tuple(PRESET_NAMES), default=DEFAULT_PRESET.split()[0].lower(),
                   help="starting settings, as in the app; the options below override them")
    _add_run_options(p, preset_config(), preset_note="from --preset")

    p = sub.add_parser("reconstruct", help="rebuild an image from noise, matching one kind of cost only")
    p.add_argument("kind", choices=("content", "style"))
    p.add_argument("image")
    p.add_argument("--layers", type=_csv_list, required=True,
                   help="content: one layer (e.g. conv4_2); style: layers whose Grams to match")
    _add_run_options(p, RECONSTRUCTION, skip=("content_layer", "style_layers", "alpha", "beta", "preserve_color"))

    p = sub.add_parser("benchmark", help="measure speed and memory (see nst_core/benchmark.py)")
    p.add_argument("--arch", choices=ARCHS, default="vgg19")
    p.add_argument("--weights", default="random", help="random, imagenet or a weights file")
    p.add_argument("--sizes", type=lambda t: _csv_list(t, int), default=(256, 384, 512))
    p.add_argument("--steps", type=int, default=5, help="steps timed per size for the overhead")
    p.add_argument("--sections", type=_csv_list, default=("overhead", "precision", "totals"),
                   help="any of overhead,precision,totals,quality,concurrency,estimates (quality, concurrency "
                        "and estimates take minutes)")
    p.add_argument("--quality-size", type=int, default=256, help="(default: the app's default size)")
    p.add_argument("--presets", type=_preset_list, default=tuple(PRESETS),
                   help=f"presets the quality and estimates sections time, of {','.join(PRESET_NAMES)}")
    p.add_argument("--baseline-steps", type=int, default=300)
    p.add_argument("--concurrency-size", type=int, default=256)
    p.add_argument("--json", default=None, help="also write the results as JSON")
    return parser


def _config(args) -> TransferConfig:
    given = cli_values(args)
    if given.get("optimizer") == "lbfgs" and "lr" not in given:
        given["lr"] = 1.0  # a preset's Adam step size means nothing to L-BFGS's line search
    given["snapshot_every"] = args.save_every or 10
    if args.command == "stylize":
        return preset_config(PRESET_NAMES[args.preset], style_weights=args.style_weights,
                             style_blend=args.style_blend, **given)
    init = given.pop("init", None)
    base = replace(RECONSTRUCTION, **given)
    if args.kind == "content":
        if len(args.layers) != 1:
            raise ValueError("a content reconstruction matches exactly one layer")
        cfg = content_reconstruction(args.layers[0], base)
    else:
        cfg = style_reconstruction(args.layers, base)
    return replace(cfg, init=init) if init else cfg


def _progress(rec) -> None:
    width = 24
    filled = int(width * rec.step / max(rec.total_steps, 1))
    line = (f"\r[{'#' * filled}{'.' * (width - filled)}] {rec.step}/{rec.total_steps} "
            f"total {rec.total:.4g}  α·Jc {rec.content:.3g}  β·Js {rec.style:.3g}  "
            f"{rec.elapsed:.0f}s, ~{rec.eta:.0f}s left ")
    sys.stderr.write(line)
    sys.stderr.flush()


def _run_command(args) -> int:
    cfg = _config(args)
    device = resolve_device(args.device)
    model = load_vgg(args.arch, args.weights, seed=cfg.seed, device=device)
    resolve_layers(model.arch, cfg.layers)
    if args.command == "stylize":
        content, styles = load_image(args.content), [load_image(s) for s in args.style]
    else:
        image = load_image(args.image)
        content, styles = image, [image]
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(args.log, "w", newline="") if args.log else None
    writer = None
    print(f"{model.description}; {cfg.content_layer if cfg.alpha else '-'} / "
          f"{','.join(cfg.style_layers) if cfg.beta else '-'}; {device}, network in "
          f"{model.precision_label(cfg.precision)}", file=sys.stderr)
    try:
        for rec in run(content, styles, cfg, model):
            _progress(rec)
            if log_file:
                row = rec.as_row()
                if writer is None:
                    writer = csv.DictWriter(log_file, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow(row)
            if args.save_every and rec.image is not None and rec.status == "running":
                to_pil(rec.image).save(out.with_name(f"{out.stem}_step{rec.step:04d}.png"))
            last = rec
    finally:
        if log_file:
            log_file.close()
        sys.stderr.write("\n")
    to_pil(last.best_image).save(out)
    print(f"{last.status}: {last.message} Wrote {out} ({last.elapsed:.1f} s).", file=sys.stderr)
    return 0 if last.status == "done" else 1


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    configure_threads()
    try:
        if args.command == "benchmark":
            from .benchmark import main as benchmark_main
            return benchmark_main(args)
        return _run_command(args)
    except (ImageError, ModelError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # torch's own failures (out of memory, say): one line, not a traceback
        print(f"error: the run failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
