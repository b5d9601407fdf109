"""The explainer computations and their figures."""

import math
from dataclasses import replace

import pytest
import torch
from matplotlib.figure import Figure

from nst_core import gram_matrix, layer_table, to_tensor
from nst_core import plots
from nst_core.analysis import (TOY_KINDS, activations, analysis_size, interior, border_margin, style_channel_order,
                               channel_correlation, channel_covariance, gram_parts, channel_order, cost_scales,
                               layer_shapes, receptive_field_box, shuffle_experiment, shuffle_tiles, toy_block,
                               unit_center)
from nst_core.patches import bundled_collection, index_patches, patch_index, patch_indexes
from tests.support import ROOT, gradient_image, step_record, stripes_image


def gram_order(gram: torch.Tensor) -> torch.Tensor:
    """The plain ranking: channels by the Gram's diagonal (each channel's energy), strongest first."""
    return gram.diagonal().argsort(descending=True)


def border_ratio(a: torch.Tensor, channel: int, margin: int = 2) -> float:
    """Energy per position in the outer ``margin`` rows/columns over energy per position inside:
    about 1 for a texture channel, well above 1 for a channel that responds to the frame."""
    m = a[channel]
    inner = interior(m, margin)
    e_in, e_all = float((inner ** 2).sum()), float((m ** 2).sum())
    n_in, n_all = inner.numel(), m.numel()
    return ((e_all - e_in) / max(n_all - n_in, 1)) / max(e_in / max(n_in, 1), 1e-12)


def searched_as_given(model, images, layer: str, channel: int, k: int):
    """The ``k`` places that excite one channel most, the images searched at their own size only."""
    return index_patches(patch_index(model, images, layer, scales=None, per_picture=4 * k), channel, k,
                         max_per_image=None)


def test_toy_gram_equals_f_times_f_transpose():
    for kind in ("correlated", "anticorrelated", "random"):
        block = toy_block(kind)
        f = block.reshape(5, -1)
        assert torch.allclose(gram_matrix(block), f @ f.T)
    with pytest.raises(ValueError):
        toy_block("sideways")


def test_toy_blocks_show_correlation_and_its_absence():
    corr = channel_correlation(toy_block("correlated"))
    anti = channel_correlation(toy_block("anticorrelated"))
    assert corr[0, 1] > 0.85 and anti[0, 1] < -0.85
    # In the raw Gram, channels that never fire together give exactly 0.
    assert gram_matrix(toy_block("anticorrelated"))[0, 1] == 0


@pytest.mark.parametrize("seed", range(40))
def test_toy_gram_orders_together_above_independent_above_never(seed):
    g = {kind: float(gram_matrix(toy_block(kind, seed=seed))[0, 1]) for kind in TOY_KINDS}
    # Clearly apart, not just in order: each step down at least a quarter of the largest entry.
    gap = 0.25 * g["correlated"]
    assert g["correlated"] - g["random"] > gap and g["random"] - g["anticorrelated"] > gap, g
    assert g["anticorrelated"] == 0
    assert abs(float(channel_correlation(toy_block("random", seed=seed))[0, 1])) < 0.25
    # The bystander channels 2… never look more tied to channel 0 than channel 1 does.
    for kind in ("correlated", "random"):
        gram = gram_matrix(toy_block(kind, seed=seed))
        assert gram[0, 1] > gram[0, 2:].max(), (kind, gram[0])


def test_gram_entry_is_n_times_covariance_plus_means():
    a = toy_block("random", seed=3)
    parts = gram_parts(a, 0, 1)
    assert parts["gram"] == pytest.approx(float(gram_matrix(a)[0, 1]), rel=1e-6)
    assert parts["gram"] == pytest.approx(parts["positions"] * parts["covariance"] + parts["means"], rel=1e-5)
    cov = channel_covariance(a)
    assert torch.allclose(cov, cov.T) and float(cov[0, 0]) == pytest.approx(float(a[0].var(unbiased=False)), rel=1e-5)


def test_layer_shapes_and_receptive_fields_match_the_design_table(vgg19_random):
    rows = {r["layer"]: r for r in layer_shapes(vgg19_random, (256, 192))}
    assert rows["conv4_2"]["receptive field (px)"] == 84 and rows["conv5_1"]["receptive field (px)"] == 156
    assert (rows["conv3_1"]["n_H"], rows["conv3_1"]["n_W"], rows["conv3_1"]["n_C"]) == (64, 48, 256)
    assert vgg19_random.extract(torch.rand(1, 3, 256, 192), ["conv3_1"])["conv3_1"].shape[-2:] == (64, 48)


def test_receptive_field_box():
    info = layer_table("vgg19")["conv1_1"]
    assert unit_center(info, 5, 7) == (5, 7)
    assert receptive_field_box(info, 5, 7, (32, 32)) == (4, 6, 7, 9)  # 3×3 around (5, 7)
    deep = layer_table("vgg19")["conv4_2"]
    top, left, bottom, right = receptive_field_box(deep, 10, 10, (1000, 1000))
    assert bottom - top == 84 and right - left == 84
    assert receptive_field_box(deep, 0, 0, (100, 100))[:2] == (0, 0)  # clipped at the border


def test_receptive_field_box_really_bounds_what_a_unit_sees(vgg19_random):
    """Change pixels just outside a unit's box: its activation must not move; inside, it must."""
    info = vgg19_random.table["conv2_1"]
    x = torch.rand(1, 3, 48, 48)
    i, j = 10, 10
    top, left, bottom, right = receptive_field_box(info, i, j, (48, 48))
    base = vgg19_random.extract(x, ["conv2_1"])["conv2_1"][0, :, i, j]
    outside = x.clone()
    outside[..., :top, :] = 0
    outside[..., bottom:, :] = 0
    outside[..., :, :left] = 0
    outside[..., :, right:] = 0
    assert torch.allclose(vgg19_random.extract(outside, ["conv2_1"])["conv2_1"][0, :, i, j], base, atol=1e-5)
    inside = x.clone()
    inside[..., top:bottom, left:right] = 0
    assert not torch.allclose(vgg19_random.extract(inside, ["conv2_1"])["conv2_1"][0, :, i, j], base, atol=1e-3)


def test_top_patches_are_the_argmax_positions(vgg19_random):
    images = [to_tensor(gradient_image(64, 48, seed=s)) for s in range(3)] + [to_tensor(stripes_image())]
    patches = searched_as_given(vgg19_random, images, "conv2_1", channel=5, k=9)
    assert len(patches) == 9
    acts = [vgg19_random.extract(img, ["conv2_1"])["conv2_1"][0, 5] for img in images]
    best = max(float(a.max()) for a in acts)
    assert patches[0].value == pytest.approx(best)
    first = patches[0]
    assert float(acts[first.image][first.i, first.j]) == pytest.approx(best)
    values = [p.value for p in patches]
    assert values == sorted(values, reverse=True)
    rf = vgg19_random.table["conv2_1"].receptive_field
    assert all(p.crop.width <= rf and p.crop.height <= rf for p in patches)


def test_shuffle_tiles_is_a_permutation_of_tiles():
    x = torch.rand(1, 3, 32, 32)
    y = shuffle_tiles(x, 4, seed=1)
    assert not torch.equal(x, y)
    tiles = lambda t: sorted(t[..., r:r + 8, c:c + 8].sum().item() for r in range(0, 32, 8) for c in range(0, 32, 8))  # noqa: E731
    assert tiles(x) == pytest.approx(tiles(y))


def test_shuffle_keeps_grams_and_breaks_content(vgg19_random):
    # A stationary synthetic texture: shuffling its tiles changes little that a Gram matrix can
    # see (only the seams), but moves everything a content cost sees.
    g = torch.Generator().manual_seed(0)
    texture = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 132, 132, generator=g), 5, stride=1)[..., :128, :128]
    result = shuffle_experiment(vgg19_random, texture, ["conv1_1", "conv2_1", "conv3_1"], "conv3_2", tiles=4, seed=3)
    assert max(result["gram_change"].values()) < 0.1, result
    assert result["content_change"] > 5 * max(result["gram_change"].values()), result


def test_cost_scales_grow_with_area_for_content_only(vgg19_random):
    rows = cost_scales(vgg19_random, gradient_image(128, 128), stripes_image(128, 128), "conv3_2", ["conv2_1"],
                       sizes=(64, 128))
    small, big = rows
    assert big["J_content(C,0)"] / small["J_content(C,0)"] == pytest.approx(4, rel=0.3)
    assert big["J_style[conv2_1](S,0)"] / small["J_style[conv2_1](S,0)"] == pytest.approx(1, rel=0.3)


def test_orders():
    a = torch.zeros(3, 2, 2)
    a[2] += 5
    a[0] += 1
    assert channel_order(a).tolist() == [2, 0, 1]


def test_every_figure_builds(vgg19_random):
    img = gradient_image(64, 48)
    block = activations(vgg19_random, [to_tensor(img)], "conv2_1", (48, 64))[0]
    order = channel_order(block)
    limits = plots.scale_limits([block, block], "global", order, 16)
    history = [step_record(s, elapsed=s * 0.1, total=10 / s, content=1 / s, style=9 / s,
                           size=(24, 32) if s < 3 else (48, 64), style_layers={"conv1_1": 4 / s, "conv2_1": 5 / s})
               for s in range(1, 6)]
    toy = toy_block()
    figs = [
        plots.feature_grid(block, order, "content", limits=limits[0]),
        plots.channel_overlay(img, block[0], (0, 0, 10, 10), "ch 0"),
        *plots.pair_panels(block, 0, 1),
        *plots.toy_panels(toy, gram_matrix(toy), 0, 1),
        *plots.gram_panels(gram_matrix(block), gram_matrix(block * 2), order, 16, cell=(1, 2)),
        plots.layer_shares(history, total_steps=8),
        plots.cost_curves(history),
        plots.layer_costs(history),
        plots.compare_runs({"a": history, "b": history}),
        plots.receptive_fields(img, layer_shapes(vgg19_random, (48, 64))[:3]),
    ]
    for fig in figs:
        assert isinstance(fig, Figure) and fig.axes
        fig.canvas.draw()  # renders without error
    curves = next(f for f in figs if f.axes[0].get_xlabel() == "step" and f.axes[0].get_ylabel().startswith("weighted"))
    assert "64×48 px\nlarger image" in [t.get_text() for t in curves.axes[0].texts]  # the level switch is marked


@pytest.mark.parametrize("wh", [(800, 100), (100, 800), (16, 128)])
@pytest.mark.parametrize("side", [64, 128])
def test_every_layer_works_on_extreme_aspect_ratios(vgg16_random, wh, side):
    """What the loader accepts (up to 8:1, 16 px short side) must work at every layer and app size:
    an 800×100 photo at 128 px is 16 px tall, too short for pool5's stride of 32."""
    from nst_core import load_image
    from tests.support import encode
    img = load_image(encode(gradient_image(*wh)))
    x = to_tensor(img, side)
    size = tuple(x.shape[-2:])
    rows = {r["layer"]: r for r in layer_shapes(vgg16_random, size)}
    for layer in ("conv1_1", "conv3_1", "conv5_3", "pool5"):
        need = analysis_size(vgg16_random, layer, size)
        assert min(need) >= vgg16_random.table[layer].stride
        assert abs(need[0] / need[1] - size[0] / size[1]) < 0.1 * size[0] / size[1]  # shape kept
        block = activations(vgg16_random, [x], layer, size)[0]
        assert min(block.shape[-2:]) >= 1
        assert block.shape[-2:] == (need[0] // vgg16_random.table[layer].stride,
                                    need[1] // vgg16_random.table[layer].stride)
        assert (rows[layer]["n_H"], rows[layer]["n_W"]) == tuple(block.shape[-2:])  # the table says what is computed
    assert rows["pool5"]["n_H"] >= 1 and rows["pool5"]["n_W"] >= 1
    assert len(searched_as_given(vgg16_random, [x], "pool5", channel=0, k=1)) == 1
    assert analysis_size(vgg16_random, "pool5", (256, 192)) == (256, 192)  # big enough: unchanged


def _history(n=30, switch=20, content_from_zero=True):
    rows = []
    for s in range(1, n + 1):
        fine = s > switch
        style = (40.0 if not fine else 20.0) / s
        content = 0.0 if (content_from_zero and s == 1) else 0.5
        rows.append(step_record(s, elapsed=0.1 * s, size=(48, 64) if fine else (24, 32), total=content + style,
                                content=content, style=style,
                                style_layers={"conv1_1": 0.7 * style, "conv2_1": 0.3 * style}))
    return rows


def test_stage_spans_split_the_history_at_each_level():
    assert plots.stage_spans(_history(30, 20)) == [(0, 20), (20, 30)]
    assert plots.stage_spans(_history(5, 99)) == [(0, 5)]
    assert plots.stage_spans([]) == []


def test_cost_curves_axis_shows_the_decrease_not_the_zero():
    """The content cost starts at exactly 0 from the content photo; the log axis must start near the
    smallest nonzero cost, not at 10⁻¹², and each level must be its own piece of line."""
    hist = _history()
    ax = plots.cost_curves(hist, scale="log").axes[0]
    lo, hi = ax.get_ylim()
    positives = [getattr(h, k) for h in hist for k in ("total", "content", "style") if getattr(h, k) > 0]
    assert lo > min(positives) / 2 and hi < 2 * max(positives)
    total_lines = [line for line in ax.get_lines() if line.get_color() == "black"]
    assert len(total_lines) == 2  # one per level: no line drawn across the switch
    # A run whose cost falls by less than 20× reads best on a linear, stacked axis from 0.
    flat = [replace(h, total=2.0 - 0.01 * h.step, style=1.5 - 0.01 * h.step) for h in _history(10, 99)]
    assert plots.cost_curves(flat).axes[0].get_yscale() == "linear"
    assert plots.cost_curves(hist).axes[0].get_yscale() == "log"


@pytest.mark.parametrize("n", [0, 1, 2, 25])
def test_layer_shares_draws_any_history_so_far(n):
    fig = plots.layer_shares(_history()[:n], total_steps=30)
    fig.canvas.draw()
    if n >= 1:
        ax = fig.axes[0]
        assert ax.get_xlim()[1] >= 30  # room for the rest of the run
        labels = [t.get_text() for t in ax.texts]
        assert any(t.startswith(" conv1_1 70%") for t in labels), labels


def test_compare_runs_legend_uses_the_labels_given():
    from nst_core.describe import differing_labels
    from nst_core.transfer import TransferConfig
    labels = differing_labels([TransferConfig(), TransferConfig(beta=20.0)])
    fig = plots.compare_runs(dict(zip(labels, [_history(), _history(20, 10)])))
    fig.canvas.draw()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["β 5", "β 20"]


def test_style_channel_order_ignores_the_frame():
    info = layer_table("vgg16")["conv3_1"]  # stride 4: 16 px of border is 4 grid steps
    a = torch.zeros(3, 32, 32)
    a[0, :2, :] = 50.0  # a frame detector: huge, but only along the top edge
    a[1, 8:24, 8:24] = 1.0  # a texture unit inside the image
    a[2, 10:20, 10:20] = 0.5
    assert gram_order(gram_matrix(a))[0] == 0  # the plain ranking is fooled by the frame
    assert style_channel_order(a, info).tolist() == [1, 2, 0]
    assert border_ratio(a, 0) > 10 and border_ratio(a, 1) < 1
    assert border_margin(info, (32, 32)) == 4 and border_margin(info, (8, 40)) == 2  # a small map keeps its middle


def test_trained_top_style_channels_are_not_border_detectors(vgg16_trained):
    """With the trained VGG16 (HED), the plain energy ranking of a painting's channels at conv3_1
    and conv4_1 starts with units that fire at the image's frame; the interior ranking must not."""
    from nst_core import load_image
    root = ROOT / "assets" / "styles"
    for name in ("starry_night.jpg", "the_scream.jpg", "flow_brush.png"):
        x = to_tensor(load_image(root / name), 256)
        acts = vgg16_trained.extract(x, ["conv3_1", "conv4_1"])
        for layer, a in acts.items():
            a = a[0]
            top = style_channel_order(a, vgg16_trained.table[layer])[:5].tolist()
            ratios = [border_ratio(a, k) for k in top]
            # Frame detectors carry 6 to 3000 times more energy per position on the border than inside;
            # texture units about 1 (up to ~3 where the painting itself is dark at its edge).
            assert max(ratios) < 4.0, (name, layer, list(zip(top, ratios)))
            plain = gram_order(gram_matrix(a))[:3].tolist()
            assert max(border_ratio(a, k) for k in plain) > 5.0, (name, layer, plain)  # the problem is real


def test_patch_index_answers_every_channel_without_the_network(vgg19_random, monkeypatch):
    images = [(f"g{s}", gradient_image(64, 48, seed=s)) for s in range(3)] + [("stripes", stripes_image())]
    index = patch_index(vgg19_random, images, "conv2_1", scales=(48, 64), per_picture=12)
    assert index.values.shape[:2] == (128, 8) and len(index.pictures) == 8 and set(index.scales) == {48, 64}
    monkeypatch.setattr(vgg19_random, "extract", lambda *a, **k: pytest.fail("the index must not rerun the network"))
    for channel in (0, 5, 127):
        patches = index_patches(index, channel, k=9, max_per_image=3)
        assert 1 <= len(patches) <= 9
        values = [p.value for p in patches]
        assert values == sorted(values, reverse=True)
        assert values[0] == pytest.approx(float(index.values[channel].max()))  # the strongest place comes first
        counts = {}
        for p in patches:
            counts[p.source] = counts.get(p.source, 0) + 1
            top, left, bottom, right = p.context_box
            assert 0 <= top < bottom <= p.context.height and 0 <= left < right <= p.context.width
            assert (right - left, bottom - top) == p.crop.size
        assert max(counts.values()) <= 3
        # Distinct places: no two patches from one image closer than half a receptive field, or half
        # the 32 px view a page shows around a small one (measured in that image's own pixels,
        # whatever scale each was found at).
        info = vgg19_random.table["conv2_1"]
        reach = max(info.receptive_field / 2, info.stride, 16)
        for a in patches:
            for b in patches:
                if a is not b and a.source == b.source:
                    za, zb = 64 / a.scale, 64 / b.scale
                    ca, cb = unit_center(info, a.i, a.j), unit_center(info, b.i, b.j)
                    d = math.dist((ca[0] * za, ca[1] * za), (cb[0] * zb, cb[1] * zb))
                    assert d >= reach * min(za, zb) - 1e-6, (a, b)
    with pytest.raises(ValueError, match="channels 0–127"):
        index_patches(index, 128)


def test_bundled_collection_is_photos_and_paintings():
    names = [n for n, _ in bundled_collection(ROOT / "assets")]
    assert {"chelsea cat", "starry night", "the scream", "grass", "camera"} <= set(names)
    assert "flow brush" not in names  # synthetic styles are not searched
    assert len(names) >= 15


def test_each_gram_panel_has_its_own_colour_scale():
    """G(C) can be ten times smaller than G(S); on one shared scale its panel was uniformly dark."""
    g = torch.Generator().manual_seed(0)
    a_s = torch.rand(8, 10, 10, generator=g) * 10
    a_c = torch.rand(8, 10, 10, generator=g)
    g_s, g_c = gram_matrix(a_s), gram_matrix(a_c)
    order = gram_order(g_s)
    figs = plots.gram_panels(g_s, g_c, order, 8)
    images = [im for f in figs for ax in f.axes for im in ax.get_images()]
    assert len(images) == 3
    norms = [im.norm for im in images]
    assert norms[0].vmax == pytest.approx(float(g_s.max())) and norms[1].vmax == pytest.approx(float(g_c.max()))
    assert norms[2].vmin == pytest.approx(-norms[2].vmax)  # the difference: symmetric about 0
    # The middle of G(C)'s range gets a middle colour (a square-root scale lifts small entries).
    assert 0.5 < float(norms[1](0.5 * float(g_c.max()))) < 0.8
    n_bars = sum(1 for f in figs for ax in f.axes if ax.get_label() == "<colorbar>")
    assert n_bars == 3


def test_one_pass_indexes_every_layer_like_one_at_a_time(vgg19_random):
    images = [("a", gradient_image(64, 48, seed=1)), ("b", stripes_image(48, 48))]
    both = patch_indexes(vgg19_random, images, ["conv1_1", "conv3_1"], scales=(48, 64))
    for layer in ("conv1_1", "conv3_1"):
        alone = patch_index(vgg19_random, images, layer, scales=(48, 64))
        assert torch.equal(both[layer].values, alone.values) and torch.equal(both[layer].places, alone.places)
    assert both["conv1_1"].pictures is both["conv3_1"].pictures  # the pixels are stored once


def test_shuffle_and_cost_scales_take_thin_images(vgg16_random):
    thin = gradient_image(800, 100)
    x = to_tensor(thin, 64)  # 8 px tall: below conv5_1's stride of 16
    result = shuffle_experiment(vgg16_random, x, ["conv1_1", "conv5_1"], "conv4_2", tiles=4)
    assert all(math.isfinite(v) for v in result["gram_change"].values())
    rows = cost_scales(vgg16_random, thin, stripes_image(), "conv4_2", ["conv5_1"], sizes=(64,))
    assert rows[0]["J_content(C,0)"] > 0


def test_patch_index_can_leave_the_frame_out(vgg19_random):
    """A unit at a picture's edge sees the zero padding's black frame; with ``border_px`` no top
    patch comes from there, while without it the frame does win for some channels."""
    from nst_core.analysis import BORDER_PX
    images = [("g", gradient_image(96, 64, seed=2)), ("s", stripes_image(64, 64))]
    info = vgg19_random.table["conv3_1"]
    framed, inside = (patch_index(vgg19_random, images, "conv3_1", scales=(64, 96), border_px=b) for b in (0, BORDER_PX))

    def grid(index, p):
        return next(g for g, o, s in zip(index.grids, index.origin, index.scales) if o == p.image and s == p.scale)

    at_edge = 0
    for channel in range(0, 256, 8):
        for p in index_patches(inside, channel, k=9):
            g = grid(inside, p)
            m = border_margin(info, g)
            assert m >= 1 and m <= p.i < g[0] - m and m <= p.j < g[1] - m, (channel, p.i, p.j, g)
        best = index_patches(framed, channel, k=1)[0]
        g = grid(framed, best)
        at_edge += best.i in (0, g[0] - 1) or best.j in (0, g[1] - 1)
    assert at_edge > 0  # without it, the frame does win: the exclusion is doing something


@pytest.mark.parametrize("seed", range(20))
def test_toy_entries_fall_in_the_order_the_page_promises(seed):
    """The page shows the three cases side by side: fire together > independent > never, and the
    cross-covariance part says why (positive, about zero, negative)."""
    from nst_core.analysis import toy_entries
    entries = toy_entries(seed)
    assert list(entries) == list(TOY_KINDS) == ["correlated", "random", "anticorrelated"]
    grams = [e["gram"] for e in entries.values()]
    assert grams[0] > grams[1] > grams[2] == 0, grams
    together, independent, never = (e["correlation"] for e in entries.values())
    assert together > 0.5 and abs(independent) < 0.25 and never < -0.5
    assert entries["correlated"]["covariance"] > 0 > entries["anticorrelated"]["covariance"]


def test_cell_picture_boxes_the_cell_asked_for():
    """A page boxes the chosen Gram cell on a picture drawn once; the box must land on that cell."""
    import io
    import matplotlib
    import numpy as np
    from PIL import Image
    g = torch.zeros(8, 8)
    g[2, 5] = 1.0  # one bright cell, to find in the picture
    pictures = plots.gram_pictures(g, g, torch.arange(8), 8)
    base = np.asarray(Image.open(io.BytesIO(pictures[0].png)).convert("RGB")).astype(int)
    boxed = np.asarray(Image.open(io.BytesIO(pictures[0].with_box(2, 5, colour="#ff0000"))).convert("RGB")).astype(int)
    changed = np.argwhere((boxed != base).any(-1))
    (top, left), (bottom, right) = changed.min(0), changed.max(0)
    cy, cx = (top + bottom) // 2, (left + right) // 2
    brightest = np.array(matplotlib.colormaps["viridis"](1.0)[:3]) * 255
    assert np.abs(base[cy, cx] - brightest).max() <= 3, base[cy, cx]  # the box's middle is the bright cell
    assert (boxed[changed[:, 0], changed[:, 1]] == [255, 0, 0]).all()
    assert 0.5 * pictures[0].cell_w < right - left - 2 < 1.5 * pictures[0].cell_w
    # The line lies outside the cell, 5 px thick: on a phone's 190 px matrix a 3 px line inside a
    # 32-channel cell shrank to about one pixel.
    assert (boxed[cy] != base[cy]).any(-1).sum() >= 10  # the left and right sides, on the middle row
    inside = boxed[top + 5:bottom - 4, left + 5:right - 4]
    assert (inside == base[top + 5:bottom - 4, left + 5:right - 4]).all()


def test_gram_distance_is_relative_to_the_reference():
    from nst_core.analysis import gram_distance
    g = gram_matrix(torch.rand(4, 6, 6, generator=torch.Generator().manual_seed(1)))
    assert gram_distance(g, g) == 0
    assert gram_distance(g, torch.zeros_like(g)) == pytest.approx(1.0)
    assert gram_distance(g, 3 * g) == pytest.approx(2.0)
    assert gram_distance(3 * g, g) == pytest.approx(2 / 3)  # not symmetric: measured against the first


@pytest.mark.parametrize("scaling", ["channel", "layer", "global"])
def test_a_bright_border_ring_does_not_set_a_channel_maps_colour_scale(scaling):
    """Zero padding makes a channel fire along the image's edges; a scale stretched to the ring left
    the map's inside nearly black. The ring saturates instead, and the inside spans the colours."""
    from nst_core.plots.maps import _unit_range
    inside = torch.linspace(0, 1, 100).reshape(10, 10)
    block = inside.clone()
    block[0, :] = block[-1, :] = block[:, 0] = block[:, -1] = 50.0
    block = block.expand(2, 10, 10).clone()
    limits = plots.scale_limits([block], scaling, torch.arange(2), 2)[0]
    scaled = _unit_range(block[0].numpy(), limits)
    assert scaled[1:-1, 1:-1].max() == pytest.approx(1.0) and scaled[1:-1, 1:-1].min() == pytest.approx(0.0)
    assert (scaled[0] == 1.0).all()  # the ring saturates
    tiny = torch.arange(9.0).reshape(3, 3)  # no inside to speak of: the whole map sets the scale
    assert _unit_range(tiny.numpy(), None)[1, 1] == pytest.approx(0.5)
