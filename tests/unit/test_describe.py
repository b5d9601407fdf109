"""Words shown to students: captions, friendly numbers, run labels, notices."""

import math
from dataclasses import replace

import pytest

from nst_core.describe import (cost_shares, describe_weights, differing_labels, friendly_number, layer_share_text,
                               network_name,
                               offline_notice, progress_text, queue_text, ready_text, run_caption, share_text,
                               took_text)
from nst_core.transfer import TransferConfig, preset_config
from tests.support import step_record


@pytest.mark.parametrize("x, text", [(2e-07, "2×10⁻⁷"), (1e-7, "10⁻⁷"), (-3.5e-9, "−3.5×10⁻⁹"), (0.25, "0.25"),
                                     (1.634, "1.63"), (-0.192, "−0.192"), (4200.0, "4200"), (0.0, "0"), (123456.0, "1.23×10⁵"),
                                     (9.9996e-8, "10⁻⁷"), (math.nan, "–")])
def test_friendly_number(x, text):
    assert friendly_number(x) == text


def test_run_caption_names_every_setting_that_changes_the_picture():
    base = preset_config(size=256)
    changes = dict(content_layer="conv3_2", style_weights=(0.6, 0.1, 0.1, 0.1, 0.1), alpha=2.0, beta=20.0,
                   balance="raw", tv_weight=0.01, preserve_color=True, pooling="avg",
                   optimizer="adam" if base.optimizer == "lbfgs" else "lbfgs", lr=0.5,
                   steps=77, size=384, levels=1, init="noise", precision="bf16", seed=5, style_blend=(0.7, 0.3))
    for field, value in changes.items():
        other = replace(base, **{field: value})
        assert run_caption(other) != run_caption(base), field
    text = run_caption(replace(base, style_blend=(0.7, 0.3), preserve_color=True, tv_weight=0.01))
    for word in ("conv4_2", "conv5_1", "α 1", "β 5", "auto-balanced", "70% / 30%", "content colours kept",
                 "smoothing (TV) 0.01", "max pooling", {"adam": "Adam", "lbfgs": "L-BFGS"}[base.optimizer],
                 f"{base.steps} steps", "256 px in 2 levels",
                 "content photo", "precision auto"):
        assert word in text, word
    assert run_caption({**base.to_dict(), "network": "VGG16 (HED)"}).startswith("VGG16 (HED) · ")
    # Beside a sentence that describes the network, the line leaves it out rather than name it twice.
    assert "VGG16" not in run_caption({**base.to_dict(), "network": "VGG16 (HED)"}, name_network=False)


def test_differing_labels_name_only_what_differs_and_never_collide():
    a, b = TransferConfig(), TransferConfig(beta=20.0)
    assert differing_labels([a, b]) == ["β 5", "β 20"]
    labels = differing_labels([a.to_dict(), a.to_dict(), replace(a, init="noise", optimizer="lbfgs").to_dict()])
    assert len(set(labels)) == 3 and "start noise" in labels[2] and "optimizer lbfgs" in labels[2]
    assert differing_labels([a, a]) == ["same settings, run 1", "same settings, run 2"]
    # A field hidden from students (preview cadence) does not label runs.
    assert differing_labels([a, replace(a, snapshot_every=3)]) == ["same settings, run 1", "same settings, run 2"]


def test_shares_in_words():
    rec = step_record(content=0.38, style=0.62, tv=0.0, total=1.0)
    assert cost_shares(rec) == pytest.approx({"content": 0.38, "style": 0.62, "tv": 0.0})
    assert share_text(rec) == "style 62% of the cost, content 38%"
    assert "smoothing (TV) 10%" in share_text(step_record(content=0.3, style=0.6, tv=0.1))
    # A reconstruction's missing term is not a share of 0%: a style reconstruction has α = 0.
    style_only = replace(step_record(content=0.0, style=1.0, total=1.0), weights={"alpha": 0.0, "beta": 1.0})
    assert share_text(style_only) == "style 100% of the cost"
    assert (layer_share_text(step_record(style_layers={"conv1_1": 3.0, "conv2_1": 1.0}))
            == "conv1_1 carries 75% of the style cost")


def test_progress_text_on_a_real_record(vgg19_random, content_img, style_img):
    from nst_core import run
    rec = next(run(content_img, style_img, TransferConfig(steps=2, size=32, style_layers=("conv1_1",),
                                                          content_layer="conv2_1"), vgg19_random))
    text = progress_text(rec)
    assert text.startswith("Step 1 of 2 · cost ") and "% of the cost" in text and "e-" not in text
    assert "left" not in text, "the loop's own eta charges all set-up to step 1: never shown"
    assert progress_text(rec, "about a minute left").endswith(" s, about a minute left")


def test_a_network_is_named_in_a_few_words_from_its_description():
    # How it works names the network whose checksum it shows; a sentence cut at its colon left
    # "VGG19 trained on ImageNet photos (torchvision), as in the paper." in the middle of a caption.
    assert network_name("VGG16, weights from vgg16_hed_features_fp16.pth") == "VGG16 from an edge detector (HED)"
    assert network_name("VGG19, torchvision ImageNet weights") == "VGG19 trained on ImageNet"
    assert network_name("VGG16, random untrained weights (seed 0)") == "VGG16 with random weights"
    assert network_name("VGG16, weights from mine.pth") == "VGG16 from mine.pth"


def test_weights_and_offline_words_are_plain():
    assert "edge" in describe_weights("file", "vgg16", "vgg16_hed_features_fp16.pth")
    assert "untrained" in describe_weights("random", "vgg19")
    note = offline_notice("vgg19", "the offline VGG16", trained=True)
    assert "VGG19" in note and "offline VGG16" in note and "differ a little" in note
    for bad in ("URLError", "--", "Errno", "Traceback", "NST_WEIGHTS"):
        assert bad not in note
    # Random weights are no small difference: the notice must not promise pictures like the paper's.
    untrained = offline_notice("vgg19", "a VGG19 with random, untrained weights", trained=False)
    assert "differ a little" not in untrained and "noisy" in untrained


def test_a_finished_run_names_its_network_from_the_description_alone():
    from nst_core.describe import describe_network
    assert describe_network("VGG16, weights from vgg16_hed_features_fp16.pth") == describe_weights(
        "file", "vgg16", "vgg16_hed_features_fp16.pth")
    assert describe_network("VGG19, random untrained weights (seed 0)") == describe_weights("random", "vgg19")
    assert describe_network("VGG19, torchvision ImageNet weights") == describe_weights("imagenet", "vgg19")
    assert describe_network("VGG16, weights from random.pth") == describe_weights("file", "vgg16", "random.pth")


def test_level_switch_note_explains_the_jump():
    from nst_core.describe import level_switch_note, level_switches, size_label
    hist = [step_record(s, size=(64, 96) if s < 4 else (128, 192), total=1.0 / s if s < 4 else 2.0 / s)
            for s in range(1, 7)]
    assert level_switches(hist) == [{"step": 4, "from": (64, 96), "to": (128, 192), "before": 1 / 3, "after": 0.5}]
    assert size_label((128, 192)) == "192×128"  # (H, W) kept until the label: width first
    note = level_switch_note(hist)
    assert "step 4" in note and "192×128 px" in note and "jumps from 0.333 to 0.5" in note
    assert level_switch_note(hist[:3]) == ""


def test_gram_entry_text_names_the_cross_covariance():
    from nst_core.analysis import gram_parts, toy_block
    from nst_core.describe import gram_entry_text
    text = gram_entry_text(gram_parts(toy_block("correlated"), 0, 1), 0, 1)
    assert "cross-covariance" in text and "G[0, 1] = " in text and "16 positions" in text


def test_model_and_used_weights_in_words(vgg16_random):
    from nst_core.describe import describe_model, used_weights_text
    assert "random" in describe_model(vgg16_random) and "VGG16" in describe_model(vgg16_random)
    used = {"alpha": 2e-07, "beta": 5.0, "lambdas": {"conv1_1": 3.2e-05}}
    assert used_weights_text(used) == "α = 2×10⁻⁷, β = 5; λ: conv1_1 3.2×10⁻⁵, as typed"
    # Balanced weights say how they came from the typed ones, which the run's caption calls equal.
    assert used_weights_text(used, "auto").startswith("α = 2×10⁻⁷, β = 5; λ: conv1_1 3.2×10⁻⁵. Balanced: the typed α")
    assert used_weights_text({}) == ""
    assert "(equal λ before balancing)" in run_caption(TransferConfig(balance="auto"))
    assert "(equal λ)" in run_caption(TransferConfig(balance="raw"))


def test_offline_vgg16_is_described_as_an_edge_detector(vgg16_trained):
    from nst_core.describe import describe_model
    assert "fine-tuned to find edges" in describe_model(vgg16_trained)


def test_toy_order_text_puts_the_largest_entry_first():
    from nst_core.analysis import TOY_KINDS, toy_entries
    from nst_core.describe import toy_order_text
    text = toy_order_text(toy_entries(0), TOY_KINDS)
    assert text.index("fire together") < text.index("independent") < text.index("never fire together")
    assert text.count(">") == 2 and text.endswith("never fire together 0")
    swapped = toy_order_text({"a": {"gram": 1.0}, "b": {"gram": 3.0}, "c": {"gram": 3.0}}, {"a": "A", "b": "B", "c": "C"})
    assert swapped == "B 3 = C 3 > A 1"
    mixed = toy_order_text({"a": {"gram": 5.4}, "b": {"gram": 2.53}, "c": {"gram": 0.0}}, {"a": "A", "b": "B", "c": "C"})
    assert mixed == "A 5.4 > B 2.5 > C 0"  # one precision for all three


def test_queue_text_says_starting_for_a_run_admitted_before_its_page_looked():
    from nst_core.serve.states import QueueStatus
    assert queue_text(QueueStatus(3, 41.6), 2) == ("Queued behind 3 run(s) on this server's 2 slot(s): about 42 s. "
                                                   "It starts by itself.")
    assert queue_text(QueueStatus(1, 0.0, memory_bound=True), 2).startswith("Waiting for memory")
    # What the queue says of a ticket no longer (or not yet) in it: nothing ahead, no memory wait.
    assert queue_text(QueueStatus(0, 0.0), 2) == "Starting…"
    assert queue_text(None, 2) == "Starting…"


def test_ready_text_splits_the_wait_only_for_a_computation_that_began_after_run():
    assert ready_text(45.2, 23.4) == "Ready 45 s after Run: 22 s before it started, 23 s computing."
    # Joined midway or served from the cache: the computation is older than the student's Run.
    assert ready_text(3.0, 23.4) == "Ready 3 s after Run."
    assert ready_text(12.0, None) == "Ready 12 s after Run."
    assert ready_text(2.1, 1.6) == "Ready 2 s after Run."  # started at once: no "0 s before it started"


def test_the_cost_formula_is_never_called_seed_beside_the_random_seed():
    """The stored value stays "seed" (old links open), but a student reads the formula's name."""
    from nst_core.describe import normalization_label
    labels = differing_labels([TransferConfig(normalization="seed"), TransferConfig(normalization="mse")])
    assert labels == ["cost formula course (Gatys)", "cost formula mean-squared"]
    assert "cost formula mean-squared" in run_caption(TransferConfig(normalization="mse"))
    assert normalization_label("seed") == "course (Gatys)" and normalization_label("mse") == "mean-squared"


def _row(layer, rf, act, gram):
    from nst_core.checks import ShuffleLayer
    return ShuffleLayer(layer, rf, act, gram)


def test_shuffle_text_says_what_the_bars_show():
    from nst_core.describe import shuffle_text
    calm = [_row("conv1_1", 3, 1.1, 0.02), _row("conv5_1", 132, 1.0, 0.3)]
    text = shuffle_text(calm, (128, 128))
    assert "1% to" not in text and "**100% to 110%**" in text and "**2% to 30%**" in text
    assert "far less than the activations" in text and "conv5_1's (30%)" in text and "wider than a tile" in text
    stormy = [_row("conv1_1", 3, 1.2, 0.2), _row("conv3_1", 24, 1.9, 3.0), _row("conv5_1", 132, 1.2, 1.0)]
    text = shuffle_text(stormy, (32, 32))
    assert "far less" not in text  # no promise the bars break
    assert "At conv3_1, conv5_1 the Gram moved as much as the activations" in text
    assert "and those on a seam" in text  # conv3_1 (24 px) sees less than a 32 px tile


def test_took_text_compares_a_finished_run_with_its_estimate():
    done = replace(step_record(step=40, elapsed=9.04), total_steps=40)
    assert took_text(done, 10.0) == "⏱ Took 9.0 s; estimated beforehand: 10.0 s."


def test_took_text_never_compares_a_run_that_ended_early_with_the_whole_plans_estimate():
    stopped = replace(step_record(step=5, elapsed=1.6), total_steps=400)
    text = took_text(stopped, 116.9)
    assert "step 5 of 400" in text and "all 400 steps were estimated at 116.9 s" in text
    assert "Took" not in text and "estimated beforehand" not in text


def test_the_filmstrip_is_spaced_by_step_and_shows_the_level_switch():
    """Snapshots every 10 steps of a 70-step run that moved to a larger image at step 47: every
    third snapshot skipped 40, and the first picture on the larger image never showed."""
    from nst_core.describe import filmstrip_steps
    steps = [1, 10, 20, 30, 40, 50, 60, 70]
    strip = filmstrip_steps(steps, [47])
    shown = [s for s, _ in strip]
    assert shown[0] == 1 and shown[-1] == 70 and 50 in shown
    assert [s for s, larger in strip if larger] == [50]  # marked as the first on the larger image
    gaps = [b - a for a, b in zip(shown, shown[1:])]
    assert max(gaps) <= 20, shown
    assert filmstrip_steps(steps, []) == [(s, False) for s in (1, 10, 30, 40, 60, 70)]
    assert filmstrip_steps([5], []) == [(5, False)] and filmstrip_steps([], [3]) == []
