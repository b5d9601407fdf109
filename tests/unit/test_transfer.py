"""The one optimization loop, on small images and random weights (seconds, not minutes)."""

import math
from dataclasses import replace

import pytest
import torch

import nst_core.transfer as transfer
from nst_core import TransferConfig, content_cost, cost_terms, load_vgg, prepare_targets, run, to_tensor
from nst_core.experiments import (NO_PRIOR, STYLE_PRIOR, content_reconstruction, growing_style_sets, series,
                                  style_reconstruction, sweep)
from nst_core.images import resize_tensor
from nst_core.transfer import MAX_COARSE_STEPS, stage_plan

SMALL = dict(size=48, steps=8, snapshot_every=4, style_layers=("conv1_1", "conv2_1", "conv3_1"),
             content_layer="conv3_2")


def run_all(content, style, cfg, model):
    return list(run(content, style, cfg, model))


@pytest.mark.parametrize("optimizer, lr", [("adam", 0.05), ("lbfgs", 1.0)])
def test_cost_falls(vgg19_random, content_img, style_img, optimizer, lr):
    cfg = TransferConfig(**{**SMALL, "steps": 12}, optimizer=optimizer, lr=lr)
    recs = run_all(content_img, style_img, cfg, vgg19_random)
    running = [r for r in recs if r.status == "running"]
    assert len(running) == 12 and recs[-1].status == "done"
    assert recs[-1].total < 0.7 * running[0].total
    assert all(math.isfinite(r.total) for r in recs)


def test_records_carry_every_term_and_snapshots(vgg19_random, content_img, style_img):
    cfg = TransferConfig(**SMALL, tv_weight=0.1)
    recs = run_all(content_img, style_img, cfg, vgg19_random)
    first = recs[0]
    assert set(first.style_layers) == set(cfg.style_layers)
    assert first.style == pytest.approx(sum(first.style_layers.values()), rel=1e-5)
    assert first.total == pytest.approx(first.content + first.style + first.tv, rel=1e-5)
    assert first.tv > 0
    snaps = [r.step for r in recs if r.image is not None and r.status == "running"]
    assert snaps == [1, 4, 8]
    final = recs[-1]
    assert final.image is not None and final.image.shape == (1, 3, 36, 48)
    assert final.best_total == min(r.total for r in recs)
    assert set(final.weights) == {"alpha", "beta", "lambdas"}
    row = final.as_row()
    assert row["size"] == "48x36" and row["total"] == final.total and row["style_conv2_1"] == final.style_layers["conv2_1"]


def test_auto_balance_scales_alpha_and_lambdas(vgg19_random, content_img, style_img):
    cfg = TransferConfig(**SMALL, alpha=3.0, beta=5.0)
    size = (36, 48)
    t = prepare_targets(to_tensor(content_img), [to_tensor(style_img)], size, cfg, vgg19_random)
    # α_eff · J_content(C, 0) is exactly the α the student chose...
    zero = t.alpha * content_cost(t.content, torch.zeros_like(t.content))
    assert zero.item() == pytest.approx(3.0, rel=1e-5)
    # ...and with G = C, the content term is 0.
    terms = cost_terms(resize_tensor(to_tensor(content_img), size), t, cfg, vgg19_random)
    assert terms["content"].item() == pytest.approx(0.0, abs=1e-6)
    raw = prepare_targets(to_tensor(content_img), [to_tensor(style_img)], size,
                          replace(cfg, balance="raw"), vgg19_random)
    assert raw.alpha == 3.0 and raw.lambdas == cfg.lambdas


def test_auto_balance_makes_runs_independent_of_activation_scale(content_img, style_img):
    """Scaling the first conv by k scales every activation by k (zero biases, ReLU): J_content
    grows by k², J_style by k⁴. Balanced costs must not change; raw costs must."""
    base = load_vgg("vgg16", "random", seed=1)
    scaled = load_vgg("vgg16", "random", seed=1)
    with torch.no_grad():
        scaled.features[0].weight.mul_(10.0)
    cfg = TransferConfig(**{**SMALL, "steps": 4}, precision="fp32")  # an exact identity: no bf16 rounding
    a = run_all(content_img, style_img, cfg, base)
    b = run_all(content_img, style_img, cfg, scaled)
    for ra, rb in zip(a, b):
        assert rb.total == pytest.approx(ra.total, rel=1e-3)
    raw = replace(cfg, balance="raw")
    ra, rb = run_all(content_img, style_img, raw, base)[0], run_all(content_img, style_img, raw, scaled)[0]
    assert rb.style == pytest.approx(ra.style * 1e4, rel=1e-3)


def test_stage_plan_coarse_to_fine():
    cfg = TransferConfig(size=256, steps=90, levels=3)
    plan = stage_plan(cfg, (192, 256))
    assert [s for s, _ in plan] == [(48, 64), (96, 128), (192, 256)]
    assert sum(n for _, n in plan) == 90 and plan[0][1] > plan[1][1] > plan[2][1]
    assert len(stage_plan(TransferConfig(size=96, levels=4), (96, 96))) == 1  # never below 64 px
    long = stage_plan(TransferConfig(size=256, steps=300, levels=2), (192, 256))
    assert long[0][1] == MAX_COARSE_STEPS and long[1][1] == 300 - MAX_COARSE_STEPS  # a long run's rest is fine


def test_coarse_to_fine_run(vgg19_random, content_img, style_img):
    cfg = TransferConfig(**{**SMALL, "size": 128, "steps": 6}, levels=2)
    recs = run_all(content_img, style_img, cfg, vgg19_random)
    assert {r.size for r in recs} == {(48, 64), (96, 128)}
    assert recs[-1].best_image.shape == (1, 3, 96, 128)
    assert [r.step for r in recs if r.status == "running"] == list(range(1, 7))


def test_stop_keeps_the_best_image(vgg19_random, content_img, style_img):
    cfg = TransferConfig(**{**SMALL, "steps": 50})
    gen = run(content_img, style_img, cfg, vgg19_random)
    last = None
    for rec in gen:
        last = rec
        if rec.step == 3:
            gen.close()
            break
    assert last.step == 3 and last.status == "running"
    assert last.best_image.shape == (1, 3, 36, 48) and torch.isfinite(last.best_image).all()
    assert last.best_total <= last.total or math.isinf(last.best_total) is False


def test_divergence_stops_with_best_finite_image(vgg19_random, content_img, style_img, monkeypatch):
    real = transfer.cost_terms
    calls = {"n": 0}

    def flaky(image, *args):
        calls["n"] += 1
        terms = real(image, *args)
        if calls["n"] >= 5:
            terms["total"] = terms["total"] * float("nan")
        return terms

    monkeypatch.setattr(transfer, "cost_terms", flaky)
    recs = run_all(content_img, style_img, TransferConfig(**{**SMALL, "steps": 20}), vgg19_random)
    assert recs[-1].status == "diverged" and "diverged" in recs[-1].message
    assert torch.isfinite(recs[-1].best_image).all() and math.isfinite(recs[-1].best_total)
    assert len(recs) == 5


def test_absurd_weights_overflow_to_a_clear_divergence(vgg19_random, content_img, style_img):
    cfg = TransferConfig(**SMALL, balance="raw", alpha=1e38, beta=1e38, init="noise")
    recs = run_all(content_img, style_img, cfg, vgg19_random)
    assert recs[-1].status == "diverged" and torch.isfinite(recs[-1].best_image).all()


def test_same_seed_same_image(vgg19_random, content_img, style_img):
    cfg = TransferConfig(**SMALL, init="noise", seed=11)
    a = run_all(content_img, style_img, cfg, vgg19_random)[-1].best_image
    b = run_all(content_img, style_img, cfg, vgg19_random)[-1].best_image
    c = run_all(content_img, style_img, replace(cfg, seed=12), vgg19_random)[-1].best_image
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_style_blend(vgg19_random, content_img, style_img):
    cfg = TransferConfig(**SMALL)
    c, s = to_tensor(content_img), to_tensor(style_img)
    other = torch.rand_like(s)
    size = (36, 48)
    only = prepare_targets(c, [s], size, cfg, vgg19_random)
    blended = prepare_targets(c, [s, other], size, replace(cfg, style_blend=(1.0, 0.0)), vgg19_random)
    half = prepare_targets(c, [s, other], size, replace(cfg, style_blend=(1.0, 1.0)), vgg19_random)
    other_only = prepare_targets(c, [other], size, cfg, vgg19_random)
    for name in cfg.style_layers:
        assert torch.allclose(blended.grams[name], only.grams[name])
        assert torch.allclose(half.grams[name], (only.grams[name] + other_only.grams[name]) / 2, rtol=1e-5)
    with pytest.raises(ValueError, match="blend"):
        prepare_targets(c, [s], size, replace(cfg, style_blend=(1.0, 2.0)), vgg19_random)


def test_preserve_color_output(vgg19_random, content_img, style_img):
    cfg = TransferConfig(**SMALL, preserve_color=True)
    out = run_all(content_img, style_img, cfg, vgg19_random)[-1].best_image
    c = resize_tensor(to_tensor(content_img), tuple(out.shape[-2:]))
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    chroma = lambda x: x - (x * luma).sum(1, keepdim=True)  # noqa: E731
    inside = (out > 0.02).all(1) & (out < 0.98).all(1)  # away from clipping
    assert torch.allclose(chroma(out)[:, :, inside[0]], chroma(c)[:, :, inside[0]], atol=1e-4)


def test_content_reconstruction_moves_toward_the_content(vgg19_random, content_img, style_img):
    cfg = content_reconstruction("conv1_2", TransferConfig(size=48, steps=25, optimizer="lbfgs", lr=1.0, **NO_PRIOR))
    assert cfg.beta == 0 and cfg.init == "noise" and cfg.layers == ["conv1_2"]
    recs = run_all(content_img, style_img, cfg, vgg19_random)
    c = resize_tensor(to_tensor(content_img), (36, 48))
    noise = transfer._initial_image(cfg, c, [c], (36, 48))
    assert ((recs[-1].best_image - c) ** 2).mean() < 0.5 * ((noise - c) ** 2).mean()


def test_style_reconstruction_config_and_helpers():
    cfg = style_reconstruction(("conv1_1", "conv2_1"))
    assert cfg.alpha == 0 and cfg.init == STYLE_PRIOR["init"] and cfg.layers == ["conv1_1", "conv2_1"]
    assert growing_style_sets(["a", "b", "c"]) == [("a",), ("a", "b"), ("a", "b", "c")]
    configs = sweep(TransferConfig(), "beta", [1, 10])
    assert [c.beta for c in configs] == [1, 10] and configs[0].seed == configs[1].seed


def test_style_only_run_uses_no_content_layer(vgg19_random, content_img, style_img):
    cfg = style_reconstruction(("conv1_1",), TransferConfig(size=48, steps=3))
    recs = run_all(content_img, style_img, cfg, vgg19_random)
    assert recs[-1].content == 0 and recs[-1].style > 0


@pytest.mark.parametrize("bad, match", [
    (dict(optimizer="sgd"), "optimizer"), (dict(alpha=0, beta=0), "both"), (dict(steps=-1), "steps"),
    (dict(style_weights=(1.0,)), "λ"), (dict(init="zeros"), "init"), (dict(lr=0), "learning rate"),
])
def test_config_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        TransferConfig(**bad)


def test_lbfgs_keeps_descending_from_noise(vgg19_random, style_img):
    """Regression: with torch's default max_eval (1 for max_iter=1) the line search gave up after one
    trial, returned t = 0, and the run froze after its first step."""
    cfg = style_reconstruction(("conv1_1", "conv2_1"),
                               TransferConfig(size=48, steps=12, optimizer="lbfgs", lr=1.0, **NO_PRIOR))
    totals = [r.total for r in run_all(style_img, style_img, cfg, vgg19_random) if r.status == "running"]
    assert totals[-1] < 0.5 * totals[1], totals
    assert len(set(round(t, 12) for t in totals[2:])) > 5, "the cost stopped changing"


def test_an_lbfgs_step_reuses_the_evaluation_its_predecessor_ended_on(vgg19_random, content_img, style_img):
    """torch's L-BFGS begins each step by evaluating the point the previous line search accepted;
    without the reuse every step cost at least two passes. The image shown stays within [0, 1]."""
    cfg = TransferConfig(**{**SMALL, "steps": 30}, optimizer="lbfgs", lr=1.0)
    recs = run_all(content_img, style_img, cfg, vgg19_random)
    passes = recs[-1].gflop / transfer.step_gflop(vgg19_random.arch, cfg.layers, recs[-1].size)
    assert recs[-1].status == "done" and passes < 1.5 * cfg.steps, passes
    assert recs[-1].total < 0.5 * recs[0].total
    for r in recs:
        if r.image is not None:
            assert 0 <= r.image.min() and r.image.max() <= 1


@pytest.mark.parametrize("shape", [(100, 800), (800, 100), (16, 128)])
@pytest.mark.parametrize("size, levels", [(128, 2), (192, 3)])
def test_extreme_aspect_ratios_run_at_every_app_size(vgg16_random, shape, size, levels):
    """The loader accepts up to 8:1; every such image must run as content and as style, with
    coarse levels and the deepest layers (pool5 needs 32 rows), never 'Output size is too small'."""
    h, w = shape
    img = torch.rand(1, 3, h, w)
    cfg = TransferConfig(size=size, levels=levels, steps=levels, style_layers=("conv1_1", "conv5_1", "pool5"))
    recs = run_all(img, img, cfg, vgg16_random)
    assert recs[-1].status == "done"
    final = recs[-1].best_image.shape[-2:]
    assert min(final) >= 32 and max(final) >= size
    assert abs(final[1] / final[0] - w / h) < 0.1 * w / h  # the aspect ratio is kept


def test_cost_terms_are_the_seed_total(vgg19_random, content_img, style_img):
    """With raw weights the loop's J is exactly α·J_content + β·Σ_l λ[l]·J_style[l], term by term."""
    from nst_core import gram_matrix, style_layer_cost
    cfg = TransferConfig(**SMALL, alpha=2.0, beta=300.0, balance="raw", style_weights=(0.5, 0.3, 0.2),
                         precision="fp32")
    size = (36, 48)
    c, s = to_tensor(content_img), to_tensor(style_img)
    t = prepare_targets(c, [s], size, cfg, vgg19_random)
    g = torch.rand(1, 3, *size)
    terms = cost_terms(g, t, cfg, vgg19_random)
    a_C = vgg19_random.extract(resize_tensor(c, size), ["conv3_2"])["conv3_2"]
    acts = vgg19_random.extract(g, ["conv3_2", *cfg.style_layers])
    s48 = resize_tensor(s, size)  # the style image is 64×64: resized to G's long side, 48×48
    expected_style = sum(lam * style_layer_cost(vgg19_random.extract(s48, [n])[n], acts[n])
                         for n, lam in zip(cfg.style_layers, cfg.style_weights))
    expected = 2.0 * content_cost(a_C, acts["conv3_2"]) + 300.0 * expected_style
    assert terms["total"].item() == pytest.approx(expected.item(), rel=1e-4)
    assert gram_matrix(acts["conv1_1"]).shape == (64, 64)


def test_finer_level_keeps_the_photo_detail_and_the_coarse_change(content_img, style_img):
    """A coarse level's result enters the finer level as a change to the photo, so the photo's
    fine detail is not blurred away at the switch (that made J jump up)."""
    cfg = TransferConfig(size=64, levels=2)
    c = to_tensor(content_img) * 0.9  # so the coarse image below stays a valid image, in [0, 1]
    coarse = resize_tensor(c, (24, 32)) + 0.1
    start = transfer._stage_start(cfg, c, [to_tensor(style_img)], (48, 64), coarse)
    expected = (resize_tensor(c, (48, 64)) + 0.1).clamp(0, 1)
    assert torch.allclose(start, expected, atol=1e-5)
    blurred = torch.nn.functional.interpolate(coarse, size=(48, 64), mode="bilinear").clamp(0, 1)
    assert (start - blurred).abs().max() > 0.1  # plain enlarging would have lost detail


def test_reconstructions_use_the_prior_unless_switched_off():
    """The prior (smooth start, total variation) is on by default and can be switched off, so a
    student can see why it is there; stylizations never get it."""
    for name in ("content", "style"):
        with_prior = [cfg for _, cfg in series(name)]
        without = [cfg for _, cfg in series(name, prior=False)]
        assert all(c.init == "smooth" for c in with_prior)
        assert all(c.tv_weight > 0 for c in with_prior) == (name == "content")  # textures need no TV
        assert all(c.init == "noise" and c.tv_weight == 0 for c in without)
    assert all(cfg.init == "content" for _, cfg in series("beta"))


def test_smooth_start_has_no_fine_grain(content_img):
    """The smooth start holds colour blobs, not pixel noise: a deep layer blind to fine grain
    cannot leave any behind."""
    size = (96, 128)
    smooth = transfer._initial_image(TransferConfig(init="smooth"), None, [], size)
    noise = transfer._initial_image(TransferConfig(init="noise"), None, [], size)
    assert smooth.shape == noise.shape == (1, 3, *size)
    tv = transfer.costs.total_variation
    assert tv(smooth) < 0.01 * tv(noise)
    assert smooth.std() > 0.02  # not a flat grey either: its blobs break the symmetry


def test_lbfgs_stops_spending_steps_at_a_size_once_it_cannot_move_g(vgg16_random, monkeypatch):
    """Once an L-BFGS step leaves G where it was, every later step at that size repeats it exactly.
    In bfloat16 that happened from step 83 of a 150-step run on a random VGG19, each repeat still
    spending a whole line search. Here G starts at the optimum (the same image as content and
    style), so no step can move it: each level stops after its second step, and says so."""
    img = torch.rand(1, 3, 100, 128)
    cfg = TransferConfig(size=128, steps=20, levels=2, optimizer="lbfgs", lr=1.0, init="content",
                         style_layers=("conv1_1", "conv2_1"), precision="fp32")
    steps = []
    step = torch.optim.LBFGS.step
    monkeypatch.setattr(torch.optim.LBFGS, "step", lambda self, closure: steps.append(1) or step(self, closure))
    recs = run_all(img, img, cfg, vgg16_random)
    plan = stage_plan(cfg, (100, 128))
    assert len(plan) == 2
    assert [r.step for r in recs] == [1, 2, plan[0][1] + 1, plan[0][1] + 2, 20]
    assert len(steps) == 4
    done = recs[-1]
    assert done.status == "done" and done.step == done.total_steps == 20
    for step_number, left in ((2, plan[0][1] - 2), (plan[0][1] + 2, plan[1][1] - 2)):
        assert f"from step {step_number} on ({left} steps left at that image size)" in done.message
    assert torch.equal(done.best_image, resize_tensor(img, tuple(done.best_image.shape[-2:])))
    assert recs[1].image is not None  # the level's last picture is kept for the filmstrip
