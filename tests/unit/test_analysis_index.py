"""The top-patch index built one image at a time, merged with a student's own pictures, and drawn
without Matplotlib; and the Layer experiments fitted to the server's limits."""

from dataclasses import replace

import pytest
import torch

from nst_core.analysis import BORDER_PX, border_margin
from nst_core.patches import IndexBuilder, index_patches, merge_indexes, patch_index, patch_indexes, patch_view
from nst_core.experiments import RECONSTRUCTION, fit_to_limits, series
from tests.support import gradient_image, stripes_image

LAYERS = ["conv1_1", "conv2_1", "conv3_1", "pool3"]
BUNDLED = [(f"g{s}", gradient_image(64, 48, seed=s)) for s in range(3)]


def test_one_image_at_a_time_gives_what_one_call_gives(vgg19_random):
    whole = patch_indexes(vgg19_random, BUNDLED, LAYERS, scales=(48, 64), border_px=BORDER_PX)
    builder = IndexBuilder(vgg19_random, LAYERS, scales=(48, 64), border_px=BORDER_PX)
    for name, img in BUNDLED:
        assert list(builder.adding(name, img)) == [48, 64]  # one pause per scale, for a background job
    parts = builder.build()
    assert set(parts) == set(LAYERS)  # one pass covers every layer asked for
    for layer in LAYERS:
        assert torch.equal(parts[layer].values, whole[layer].values)
        assert torch.equal(parts[layer].places, whole[layer].places)
        assert parts[layer].places.dtype == torch.int32
        assert parts[layer].origin == whole[layer].origin == [0, 0, 1, 1, 2, 2]


def test_the_frame_is_still_left_out_after_the_faster_block_search(vgg19_random):
    """The frame is cut off the map, not overwritten in a copy: positions must still be the whole grid's."""
    index = patch_index(vgg19_random, BUNDLED, "conv2_1", scales=(64,), border_px=BORDER_PX)
    info = index.info
    for p in range(len(index.pictures)):
        grid = index.grids[p]
        a = vgg19_random.extract(index.pictures[p][None].float() / 255, ["conv2_1"])["conv2_1"][0]
        assert a.shape[-2:] == grid
        flat = index.places[:, p, 0].long()
        rows, cols = flat // grid[1], flat % grid[1]
        margin = border_margin(info, grid)
        assert margin >= 1
        assert bool(((rows >= margin) & (cols >= margin) & (rows < grid[0] - margin) & (cols < grid[1] - margin)).all())
        # Each channel's first candidate is its strongest value inside the frame, found at that place.
        inside = a[:, margin:grid[0] - margin, margin:grid[1] - margin].flatten(1).amax(1)
        assert torch.allclose(index.values[:, p, 0], inside, atol=1e-3)
        assert torch.allclose(a.flatten(1).gather(1, flat[:, None])[:, 0], inside, atol=1e-3)


def test_a_students_picture_joins_the_top_nine(vgg19_random):
    """Merged with the bundled index, a student's picture appears among the nine wherever it excites a
    channel more than any bundled picture, and is numbered after the bundled ones."""
    bundled = patch_indexes(vgg19_random, BUNDLED, ["conv2_1"], scales=(48, 64))["conv2_1"]
    own = patch_indexes(vgg19_random, [("your content", stripes_image(64, 64))], ["conv2_1"], scales=(48, 64))["conv2_1"]
    merged = merge_indexes(bundled, own)
    assert merged.values.shape[1] == bundled.values.shape[1] + own.values.shape[1]
    assert merged.names[-1] == "your content" and max(merged.origin) == 3
    wins = (own.values[:, :, 0].amax(1) > bundled.values[:, :, 0].amax(1)).nonzero()[:, 0].tolist()
    assert wins, "the stripes should beat the gradients on some channel"
    for channel in wins[:5]:
        top = index_patches(merged, channel, k=9)
        assert top[0].source == "your content" and top[0].image == 3
        assert index_patches(bundled, channel, k=9)[0].source != "your content"
    with pytest.raises(ValueError):
        merge_indexes(bundled, patch_indexes(vgg19_random, BUNDLED[:1], ["conv1_1"], scales=(48,))["conv1_1"])


def test_a_patch_is_drawn_with_its_field_boxed(vgg19_random):
    index = patch_index(vgg19_random, BUNDLED, "conv3_1", scales=(64,))
    p = index_patches(index, 7, k=1)[0]
    tile = patch_view(p, side=144)
    assert tile.width == 144
    top, left, bottom, right = p.context_box
    z = 144 / p.context.width
    assert tile.getpixel((round((left + right) / 2 * z), round(top * z))) == (0, 229, 255)


def _linear(seconds_per_step_px):
    """An estimate proportional to steps × pixels, like the server's for a fixed network."""
    return lambda i, c: seconds_per_step_px[i] * c.steps * c.size ** 2


def test_runs_over_the_ceiling_get_fewer_steps_all_alike():
    configs = [c for _, c in series("weights", reconstruction=RECONSTRUCTION)]  # trained, random
    estimate = _linear([1e-5, 2e-5])  # the random network was timed slower: it sets the fit
    assert estimate(1, configs[1]) > 100
    fitted, note = fit_to_limits(configs, estimate, max_run_s=100, margin=0.7)
    assert len({(c.steps, c.size) for c in fitted}) == 1
    assert all(estimate(i, c) <= 70 for i, c in enumerate(fitted))
    assert fitted[0].steps < RECONSTRUCTION.steps and fitted[0].size == RECONSTRUCTION.size
    assert f"{fitted[0].steps} steps instead of {RECONSTRUCTION.steps}" in note and "100 s" in note
    assert replace(fitted[1], steps=RECONSTRUCTION.steps) == configs[1]  # nothing else changed


def test_the_size_goes_down_once_the_steps_cannot():
    configs = [RECONSTRUCTION]
    fitted, note = fit_to_limits(configs, _linear([1e-4]), max_run_s=100, margin=1.0, min_steps=30)
    assert fitted[0].steps == 30 and fitted[0].size < RECONSTRUCTION.size
    assert _linear([1e-4])(0, fitted[0]) <= 100 and "px instead of" in note


def test_a_run_that_fits_is_left_alone_and_memory_caps_the_size():
    configs = [RECONSTRUCTION]
    assert fit_to_limits(configs, _linear([1e-6]), max_run_s=100) == (configs, "")
    fitted, note = fit_to_limits(configs, _linear([1e-6]), max_run_s=100, max_size=128)
    assert fitted[0].size == 128 and "memory" in note
