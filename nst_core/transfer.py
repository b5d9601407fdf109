"""The one optimization loop: the pixels of G descend α·J_content + β·J_style.

Every use of the engine — stylizing, content-only or style-only reconstruction, sweeps and A/B
comparisons — is a :class:`TransferConfig` handed to :func:`run`.

Cost scale. The seed costs depend on the network's activation scale s: J_content grows like s²
and with the image area, J_style[l] like s⁴ and not with the area. An α/β pair tuned for one
network and size is wrong for another. With ``balance="auto"`` (the default) the loop therefore
divides α by J_content(C, 0) and each λ[l] by J_style[l](S, 0) — the costs of an all-zero
activation — measured once per run on the student's own images. The formulas stay exactly the
seed's; only the weights in front of them are derived, and each record reports the α, β and λ
actually used. ``balance="raw"`` takes α, β and λ as typed.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from PIL import Image

from . import costs
from .checks import weights_checksum
from .images import MIN_SIDE, fit_long_side, preserve_colors, resize_tensor, to_pil, to_tensor
from .model import VGGFeatures, alternated_pass_times, layer_table, step_gflop
from .step import Step

PAPER_STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
OPTIMIZERS = ("adam", "lbfgs")
INITS = ("content", "noise", "smooth", "style")  # smooth: low-frequency noise around mid-grey
BALANCES = ("auto", "raw")
PRECISIONS = ("auto", "fp32", "bf16")  # the network's arithmetic; "auto" is decided at model load
MIN_STAGE_SIDE = 64
# A coarse level earns layout and colours in a few dozen L-BFGS steps; more would polish detail the
# upsampling throws away (docs/benchmarks.md, "How the optimizer was chosen").
MAX_COARSE_STEPS = 46
LBFGS_MAX_EVAL = 25  # cost evaluations one L-BFGS step may spend in its line search
LBFGS_HISTORY = 20  # curvature pairs L-BFGS keeps; 20 was measured with the presets
# Clamping x into [0, 1] moves the point L-BFGS remembers, so it is done only now and then
# (docs/benchmarks.md, "Constants behind the loop and the server").
LBFGS_PROJECT_EVERY = 10


# Named starting points for the app and CLI; the caller gives the size. Quick and Fine won a tuning
# at equal network work (docs/benchmarks.md, "How the optimizer was chosen"); Paper follows Gatys et
# al. (2016) for fidelity rather than speed.
PRESETS: dict[str, dict] = {
    "Quick": dict(steps=70, levels=2, optimizer="lbfgs", lr=1.0, init="content", pooling="max"),
    "Paper (Gatys 2016)": dict(steps=150, levels=1, optimizer="lbfgs", lr=1.0, init="noise", pooling="avg"),
    "Fine": dict(steps=200, levels=2, optimizer="lbfgs", lr=1.0, init="content", pooling="max"),
}


DEFAULT_PRESET = "Quick"


def preset_config(name: str = DEFAULT_PRESET, **settings) -> TransferConfig:
    """A preset's configuration; ``settings`` (the size, say) are added or override the preset's."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset '{name}': choose one of {', '.join(PRESETS)}")
    return TransferConfig(**{**PRESETS[name], **settings})


@dataclass(frozen=True)
class TransferConfig:
    """Everything that defines one run. Frozen, so a config can key a cache or a comparison."""

    content_layer: str = "conv4_2"
    style_layers: tuple[str, ...] = PAPER_STYLE_LAYERS
    style_weights: tuple[float, ...] | None = None  # λ[l]; None means equal weights summing to 1
    alpha: float = 1.0
    beta: float = 5.0
    tv_weight: float = 0.0
    balance: str = "auto"
    normalization: str = "seed"
    optimizer: str = "adam"
    lr: float = 0.02
    steps: int = 200
    init: str = "content"
    size: int = 256
    style_scale: float = 1.0  # the style image's long side relative to G's
    levels: int = 1  # coarse-to-fine: 1 runs at `size` only; 2 starts at size/2, and so on
    seed: int = 0
    pooling: str = "max"
    precision: str = "auto"
    preserve_color: bool = False
    style_blend: tuple[float, ...] | None = None  # weights of several style images
    snapshot_every: int = 10

    def __post_init__(self):
        checks = [
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}"),
            (self.init in INITS, f"init must be one of {INITS}"),
            (self.balance in BALANCES, f"balance must be one of {BALANCES}"),
            (self.normalization in costs.NORMALIZATIONS, f"normalization must be one of {costs.NORMALIZATIONS}"),
            (self.pooling in ("max", "avg"), "pooling must be 'max' or 'avg'"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}"),
            (self.steps >= 0, "steps must be ≥ 0"),
            (self.size >= 16, "size must be at least 16 pixels"),
            (self.levels >= 1, "levels must be ≥ 1"),
            (self.alpha >= 0 and self.beta >= 0 and self.tv_weight >= 0, "α, β and the TV weight must be ≥ 0"),
            (self.alpha > 0 or self.beta > 0, "α and β cannot both be 0"),
            (self.lr > 0, "the learning rate must be > 0"),
            (self.beta == 0 or len(self.style_layers) > 0, "style needs at least one layer"),
            (self.style_weights is None or len(self.style_weights) == len(self.style_layers),
             "give one λ per style layer"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def lambdas(self) -> dict[str, float]:
        if self.style_weights is None:
            return {name: 1.0 / len(self.style_layers) for name in self.style_layers}
        return dict(zip(self.style_layers, self.style_weights))

    @property
    def layers(self) -> list[str]:
        """Every layer the loop reads; the network is run only as deep as the last of these."""
        names = [self.content_layer] if self.alpha > 0 else []
        names += [n for n in self.style_layers if n not in names] if self.beta > 0 else []
        return names

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Targets:
    """Per-stage targets, computed once with no gradient, plus the weights actually used."""

    content: torch.Tensor | None
    grams: dict[str, torch.Tensor]
    alpha: float
    beta: float
    lambdas: dict[str, float]
    size: tuple[int, int]


def min_input_side(layers) -> int:
    """The shortest image side at which every layer in ``layers`` still has one position: VGG's
    pools floor odd sizes, so a layer of stride s needs at least s input pixels."""
    table = layer_table("vgg19")  # strides depend only on the name, the same in VGG16
    return max([MIN_SIDE] + [table[n].stride for n in layers if n in table])


def stage_plan(config: TransferConfig, shape: tuple[int, int]) -> list[tuple[tuple[int, int], int]]:
    """Coarse-to-fine stages as ((H, W), steps): each level halves the size, and the coarser
    levels, being 4× cheaper per step, get twice the steps of the next finer one, but at most
    ``MAX_COARSE_STEPS``; the finest level gets the rest. A coarse level too small for the deepest
    layer (or under ``MIN_STAGE_SIDE``) is skipped."""
    min_side = min_input_side(config.layers)
    sizes = [fit_long_side(shape, config.size // 2 ** k) for k in reversed(range(1, config.levels))]
    sizes = [s for s in sizes if max(s) >= MIN_STAGE_SIDE and min(s) >= min_side]
    sizes.append(fit_long_side(shape, config.size, min_side))
    shares = [2 ** (len(sizes) - 1 - k) for k in range(len(sizes))]
    steps = [min(config.steps * s // sum(shares), MAX_COARSE_STEPS) for s in shares]
    steps[-1] += config.steps - sum(steps)
    return list(zip(sizes, steps))


def _as_tensor(img) -> torch.Tensor:
    return img.detach().float() if isinstance(img, torch.Tensor) else to_tensor(img)


def _style_list(style) -> list:
    return list(style) if isinstance(style, (list, tuple)) else [style]


def prepare_targets(content: torch.Tensor, styles: list[torch.Tensor], size: tuple[int, int],
                    config: TransferConfig, model: VGGFeatures) -> Targets:
    """Content activation and blended style Grams at generated size ``size``, and the weights.

    Each style image is resized so its long side is ``style_scale`` × G's; its Gram is rescaled
    to G's number of positions (``costs.scaled_gram``), then blended with ``style_blend``.
    """
    device = model.mean.device
    lambdas = config.lambdas if config.beta > 0 else {}
    blend = config.style_blend or (1.0,) * len(styles)
    if len(blend) != len(styles):
        raise ValueError(f"{len(styles)} style images but {len(blend)} blend weights")
    blend = [b / sum(blend) for b in blend]
    with torch.no_grad():
        a_C = None
        if config.alpha > 0:
            c = resize_tensor(content, size).to(device)
            a_C = model.extract(c, [config.content_layer], config.pooling, config.precision)[config.content_layer]
        grams: dict[str, torch.Tensor] = {}
        if lambdas:
            style_side = max(MIN_STAGE_SIDE // 2, round(max(size) * config.style_scale))
            min_side = min_input_side(lambdas)
            for weight, s in zip(blend, styles):
                s = resize_tensor(s, fit_long_side(tuple(s.shape[-2:]), style_side, min_side)).to(device)
                acts = model.extract(s, list(lambdas), config.pooling, config.precision)
                for name, a_S in acts.items():
                    h, w = positions(model, name, size)
                    g = weight * costs.scaled_gram(a_S, h * w)
                    grams[name] = grams[name] + g if name in grams else g
        alpha, beta = config.alpha, config.beta
        if config.balance == "auto":
            if a_C is not None:
                zero = costs.content_cost(a_C, torch.zeros_like(a_C), config.normalization)
                alpha = config.alpha / max(float(zero), 1e-30)
            lambdas = {name: lam / max(_zero_style_cost(grams[name], positions(model, name, size),
                                                        config.normalization), 1e-30)
                       for name, lam in lambdas.items()}
    return Targets(a_C, grams, alpha, beta, lambdas, size)


def positions(model: VGGFeatures, name: str, size: tuple[int, int]) -> tuple[int, int]:
    """(n_H, n_W) of a layer for an input of ``size``: VGG's 2×2 pools floor odd sizes."""
    stride = model.table[name].stride
    return size[0] // stride, size[1] // stride


def _zero_style_cost(gram: torch.Tensor, hw: tuple[int, int], normalization: str) -> float:
    """J_style[l](S, 0): the style cost of an image whose activations at layer l are all zero."""
    n_C = gram.shape[0]
    zero_acts = torch.zeros(n_C, *hw, dtype=gram.dtype, device=gram.device)
    return float(costs.style_layer_cost(gram, zero_acts, normalization))


def cost_terms(image: torch.Tensor, targets: Targets, config: TransferConfig,
               model: VGGFeatures) -> dict:
    """Every weighted term of J(G) for the image, as tensors (differentiable if ``image`` is)."""
    acts = model.extract(image, config.layers, config.pooling, config.precision)
    zero = image.new_zeros(())
    content = (targets.alpha * costs.content_cost(targets.content, acts[config.content_layer],
                                                  config.normalization)
               if targets.content is not None else zero)
    per_layer = {name: targets.beta * lam * costs.style_layer_cost(targets.grams[name], acts[name],
                                                                    config.normalization)
                 for name, lam in targets.lambdas.items()}
    style = sum(per_layer.values(), zero)
    tv = config.tv_weight * costs.total_variation(image) if config.tv_weight > 0 else zero
    return {"total": content + style + tv, "content": content, "style": style, "tv": tv,
            "style_layers": per_layer}


def evaluate(image, content, style, config: TransferConfig, model: VGGFeatures,
             targets: Targets | None = None) -> dict[str, float]:
    """The weighted cost terms of a finished image under ``config``: a fixed yardstick for
    comparing images made by different runs (targets are computed at the image's own size, unless
    ``targets`` computed for that size are passed, as when judging many images of one size)."""
    x = _as_tensor(image).to(model.mean.device)
    if targets is None:
        targets = prepare_targets(_as_tensor(content), [_as_tensor(s) for s in _style_list(style)],
                                  tuple(x.shape[-2:]), config, model)
    with torch.no_grad():
        terms = cost_terms(x, targets, config, model)
    return {"total": float(terms["total"]), "content": float(terms["content"]), "style": float(terms["style"]),
            **{f"style_{k}": float(v) for k, v in terms["style_layers"].items()}}


def _initial_image(config: TransferConfig, content: torch.Tensor, styles: list[torch.Tensor],
                   size: tuple[int, int]) -> torch.Tensor:
    if config.init == "content":
        return resize_tensor(content, size).clone()
    if config.init == "style":
        return resize_tensor(styles[0], size).clone()
    gen = torch.Generator().manual_seed(config.seed)
    if config.init == "smooth":
        # Colour blobs 16 px across: an unregularised reconstruction keeps whatever high-frequency
        # noise it starts from wherever the matched layer is blind to it (Mahendran & Vedaldi 2015),
        # so a deep layer's layout shows only from a smooth start.
        low = torch.rand(1, 3, max(1, size[0] // 16), max(1, size[1] // 16), generator=gen)
        return (0.5 + 0.2 * (F.interpolate(low, size=size, mode="bicubic", align_corners=False) - 0.5)).clamp(0, 1)
    return torch.rand(1, 3, *size, generator=gen)


def _stage_start(config: TransferConfig, content: torch.Tensor, styles: list[torch.Tensor],
                 size: tuple[int, int], coarse: torch.Tensor | None) -> torch.Tensor:
    """G at the start of a stage. A finer level keeps what the coarser one earned: the coarse change
    to the starting image, enlarged, is added to the starting image at the finer size. Enlarging the
    coarse result itself would blur the photo's fine detail away, and the cost jumps when it must be
    earned back (J rose from 1.51 to 1.98 that way)."""
    start = _initial_image(config, content, styles, size)
    if coarse is None:
        return start
    coarse = coarse.detach().cpu().clamp(0, 1)
    if config.init in ("noise", "smooth"):  # noise drawn at another size has nothing in common with this one
        return resize_tensor(coarse, size)
    change = coarse - _initial_image(config, content, styles, tuple(coarse.shape[-2:]))
    return (start + F.interpolate(change, size=size, mode="bilinear", align_corners=False)).clamp(0, 1)


def _make_optimizer(config: TransferConfig, x: torch.Tensor) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam([x], lr=config.lr)
    # One L-BFGS iteration per step, with a strong-Wolfe line search so a cost of any scale cannot
    # blow up the first step; the curvature history persists across steps inside the optimizer.
    # max_eval must be set: its default (max_iter·5/4 = 1) stops the line search after one trial,
    # which leaves t = 0 and stalls the run. The tolerances are off because the cost's scale
    # depends on the network; the loop decides when to stop.
    return torch.optim.LBFGS([x], lr=config.lr, max_iter=1, max_eval=LBFGS_MAX_EVAL,
                             history_size=LBFGS_HISTORY, line_search_fn="strong_wolfe",
                             tolerance_grad=0.0, tolerance_change=0.0)


def run(content, style, config: TransferConfig, model: VGGFeatures):
    """Optimize G's pixels; yield a :class:`Step` after every optimizer step.

    ``content`` and ``style`` are PIL images or (1, 3, H, W) tensors in [0, 1]; ``style`` may be a
    list, blended by ``config.style_blend``. Closing the generator stops the run; every record
    already carries the best image so far. A NaN or infinite cost ends the run with status
    ``diverged`` and keeps the best finite image.
    """
    start = time.perf_counter()
    network_before = weights_checksum(model)
    device = model.mean.device
    content_t = _as_tensor(content)
    styles_t = [_as_tensor(s) for s in _style_list(style)]
    plan = stage_plan(config, tuple(content_t.shape[-2:]))
    total_steps = sum(n for _, n in plan)
    work = [n * h * w for (h, w), n in plan]  # pixel-steps, to estimate time left
    done_work, step = 0.0, 0
    passes = [0.0]  # GFLOP of every cost evaluation so far (an L-BFGS step makes several)
    skipped: list[tuple[int, int]] = []  # (the step where L-BFGS stopped moving, the steps left at that size)
    x = None
    for stage, (size, n_steps) in enumerate(plan):
        targets = prepare_targets(content_t, styles_t, size, config, model)
        weights = {"alpha": targets.alpha, "beta": targets.beta, "lambdas": dict(targets.lambdas)}
        # Contiguous whatever the caller's memory layout: L-BFGS flattens the gradient with .view(-1),
        # and a start that needs no resizing would otherwise keep the caller's strides.
        x = _stage_start(config, content_t, styles_t, size, x).to(device).contiguous().requires_grad_(True)
        optimizer = _make_optimizer(config, x)
        pass_gflop = step_gflop(model.arch, config.layers, size) if config.layers else 0.0
        best_image, best_total = _finish(x.detach(), content_t, config), math.inf
        final_stage = stage == len(plan) - 1
        # The last evaluation. An L-BFGS step begins by evaluating the point where its predecessor's
        # line search ended, which that search has just evaluated: reusing it halves the passes.
        last: dict = {}

        def at_last_point() -> bool:
            return bool(last) and torch.equal(last["x"], x.detach())

        for level_step in range(n_steps):
            step += 1
            before = x.detach().clone()
            first: dict = {}

            def closure():
                if at_last_point():
                    x.grad = last["grad"].clone()
                    terms = last["terms"]
                else:
                    optimizer.zero_grad(set_to_none=True)
                    terms = cost_terms(x.clamp(0, 1), targets, config, model)
                    terms["total"].backward()
                    passes[0] += pass_gflop
                    terms = {k: v.detach() if torch.is_tensor(v) else {n: t.detach() for n, t in v.items()}
                             for k, v in terms.items()}
                    last.update(x=x.detach().clone(), grad=x.grad.clone(), terms=terms)
                if not first:
                    first.update(terms)
                return terms["total"]

            optimizer.step(closure)
            total = float(first["total"])
            done_work += size[0] * size[1]
            elapsed = time.perf_counter() - start
            eta = elapsed / done_work * (sum(work) - done_work) if done_work else 0.0
            if not math.isfinite(total):
                yield _record(step, total_steps, stage, size, elapsed, 0.0, first, best_image, best_total,
                              image=best_image, status="diverged", weights=weights, gflop=passes[0],
                              message=f"The cost became {total} at step {step}: the run diverged "
                                      "(learning rate or α/β too large). The best finite image is kept.")
                return
            if total < best_total:
                best_total, best_image = total, _finish(before, content_t, config)
            # G is x clamped to [0, 1], where the cost is taken; pixels beyond the range get no
            # gradient there, so x is brought back into it: after every Adam step, whose momentum
            # would otherwise carry them further, but only every LBFGS_PROJECT_EVERY L-BFGS steps,
            # because moving x voids the evaluation its line search ended on.
            if config.optimizer == "adam" or step % LBFGS_PROJECT_EVERY == 0:
                with torch.no_grad():
                    x.clamp_(0, 1)
            # An L-BFGS step that left x where it was leaves the optimizer's state as it was, so every
            # later step at this size would repeat it exactly (a level's first step is the exception:
            # its line search starts differently). In bfloat16 this happens once the cost's rounding
            # hides any decrease, and each such step still spends its whole line search.
            stuck = config.optimizer == "lbfgs" and level_step > 0 and torch.equal(x.detach(), before)
            # Step 1 too, so a preview appears within a second of Run rather than after ten steps.
            snap = step == 1 or step % max(1, config.snapshot_every) == 0 or stuck
            yield _record(step, total_steps, stage, size, elapsed, eta, first, best_image, best_total,
                          image=_finish(x.detach(), content_t, config) if snap else None, weights=weights,
                          gflop=passes[0])
            if stuck and level_step < n_steps - 1:
                left = n_steps - 1 - level_step
                skipped.append((step, left))
                step += left
                done_work += left * size[0] * size[1]
                break
        if final_stage:
            if at_last_point():
                terms = last["terms"]
            else:
                with torch.no_grad():
                    terms = cost_terms(x.clamp(0, 1), targets, config, model)
            if float(terms["total"]) < best_total:
                best_total, best_image = float(terms["total"]), _finish(x.detach(), content_t, config)
            done = _record(step, total_steps, stage, size, time.perf_counter() - start, 0.0, terms,
                           best_image, best_total, image=best_image, status="done", weights=weights,
                           message=finished_text(total_steps, skipped), gflop=passes[0])
            yield replace(done, network_checksums=(network_before, weights_checksum(model)))


SKIPPED_NOTE = "they could not have changed the image."  # ends a message that says steps were skipped


def finished_text(total_steps: int, skipped: list[tuple[int, int]]) -> str:
    """The finished run's message; ``skipped`` holds (step, steps left at that image size) for each
    size where L-BFGS stopped moving G."""
    if not skipped:
        return f"Finished {total_steps} steps."
    where = ", ".join(f"from step {step} on ({left} steps left at that image size)"
                      for step, left in skipped)
    return f"Finished: L-BFGS could lower the cost no further {where}, so those steps were skipped; {SKIPPED_NOTE}"


def _finish(x: torch.Tensor, content: torch.Tensor, config: TransferConfig) -> torch.Tensor:
    x = x.detach().cpu().clamp(0, 1)
    return preserve_colors(x, content) if config.preserve_color else x.clone()


def _record(step, total_steps, stage, size, elapsed, eta, terms, best_image, best_total, image=None,
            status="running", message="", weights=None, gflop=0.0) -> Step:
    def f(key):
        v = terms.get(key)
        return float(v) if v is not None else math.nan
    return Step(step=step, total_steps=total_steps, stage=stage, size=tuple(size), elapsed=elapsed, eta=eta,
                content=f("content"), style=f("style"), tv=f("tv"), total=f("total"),
                style_layers={k: float(v) for k, v in terms.get("style_layers", {}).items()},
                best_image=best_image, best_total=best_total, image=image, status=status,
                message=message, weights=weights or {}, gflop=gflop)


def stylize(content, style, config: TransferConfig, model: VGGFeatures) -> tuple[Image.Image, list[Step]]:
    """Run to the end; return the final image and the records (snapshots dropped to save memory)."""
    history: list[Step] = []
    last = None
    for rec in run(content, style, config, model):
        last = rec
        history.append(replace(rec, image=None, best_image=None) if rec.status == "running" else rec)
    return to_pil(last.best_image), history


def bare_step_seconds(model: VGGFeatures, layers, size: tuple[int, int], repeats: int = 1,
                      precision: str = "auto") -> float:
    """Median time of a bare forward+backward (input gradient only) through ``layers``; a first,
    warm-up pass is not counted."""
    return statistics.median(alternated_pass_times(model, size, layers, repeats, (precision,))[precision])
