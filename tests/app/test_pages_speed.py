"""What makes the explainer pages quick: the top-patch index is built once, in the background, for
every layer, and a student's own pictures join it; the Layer experiments fit their own runs to the
server's limits. No timings here: each test counts what is computed, or checks what is admitted."""

from __future__ import annotations

import re

import pytest
import streamlit as st

import nst_core.patches
import nst_core.experiments
from nst_core.serve.estimate import Calibration
from tests.app.apptest import app, no_exception
from tests.support import gradient_image, stripes_image
from ui import layers
from ui.cache import background

SMALL = [(f"g{s}", gradient_image(96, 64, seed=s)) for s in range(3)]


@pytest.fixture
def small_index(monkeypatch):
    """Three small bundled pictures at one size, and nothing left over from another test's index."""
    assert background().drain(600)
    monkeypatch.setattr(layers, "bundled_collection", lambda assets: list(SMALL))
    monkeypatch.setattr(layers, "RANDOM_SCALES", (96,))  # room for three distinct places in each
    for fn in (layers.bundled_index, layers.own_index, layers.top_patches, layers.acts, layers.grid_pictures,
               layers.overlay):
        fn.cache.clear()
    added = []
    adding = nst_core.patches.IndexBuilder.adding
    monkeypatch.setattr(nst_core.patches.IndexBuilder, "adding", lambda self, name, img: added.append(name) or adding(
        self, name, img))
    monkeypatch.setattr(layers, "patch_indexes", lambda *a, **k: pytest.fail("a page searched in the foreground"))
    yield added
    assert background().drain(600)


def _top9_captions(at) -> list[str]:
    return [img.caption for el in at.get("image") for img in el.proto.imgs if " · " in img.caption]


@pytest.mark.warmups
def test_switching_layers_does_not_search_the_pictures_again(small_index, monkeypatch):
    monkeypatch.setattr(layers, "warm_layers", lambda *a, **k: None)  # the next test's subject, and slow
    at = app()
    at.run()
    at.switch_page("pages/activations.py").run()
    no_exception(at)
    # Never a wait in front of the page: the nine, or a note that they are on their way.
    assert any("Searching the bundled pictures" in i.value for i in at.info) or len(_top9_captions(at)) == 9
    assert background().drain(600)
    assert small_index == ["g0", "g1", "g2"]  # every layer from one pass over each picture
    at.run()
    no_exception(at)
    assert len(_top9_captions(at)) == 9
    for layer in ("conv1_1", "conv5_1", "pool5", "conv2_2"):
        at.select_slider(key="act_layer").set_value(layer).run()
        no_exception(at)
        assert 1 <= len(_top9_captions(at)) <= 9, layer  # a deep layer of three small pictures has few places
        assert not any("Searching the bundled pictures" in i.value for i in at.info)
        # The layer table holds the chosen layer, marked, with at most three layers on each side.
        table = at.dataframe[0].value
        assert table[table["layer"].str.startswith("▶")]["layer"].tolist() == [f"▶ {layer}"], layer
        assert len(table) <= 7, layer
    assert small_index == ["g0", "g1", "g2"]


@pytest.mark.warmups
def test_every_layer_of_the_images_is_ready_before_the_student_gets_there(small_index, monkeypatch):
    at = app()
    at.run()
    at.switch_page("pages/activations.py").run()
    assert background().drain(600)
    computed = []
    monkeypatch.setattr(layers, "activations", lambda *a, **k: computed.append(a[2]) or pytest.fail("recomputed"))
    for layer in ("conv5_1", "conv1_1", "pool4"):
        at.select_slider(key="act_layer").set_value(layer).run()
        no_exception(at)
    assert computed == []


@pytest.mark.warmups
def test_an_upload_is_searched_with_the_bundled_pictures(small_index, monkeypatch):
    monkeypatch.setattr(layers, "warm_layers", lambda *a, **k: None)
    at = app()
    at.run()
    at.session_state["content"] = "upload"
    at.session_state["upload_content"] = ("mine.png", stripes_image(96, 96))
    at.switch_page("pages/activations.py").run()
    no_exception(at)
    assert background().drain(600)
    assert small_index[-1] == "your content" and small_index.count("your content") == 1
    at.run()
    no_exception(at)
    assert any("a ⭐ marks a patch from one of yours" in c.value for c in at.caption)
    from ui import network
    model = network._load("vgg16", "random")
    own = (("your content", stripes_image(96, 96)),)
    starred = [c for c in range(128) if layers.top_patches(model, own, "conv2_1", c)[0][2]]
    assert starred, "the stripes excite some conv2_1 channel more than the gradients do"
    tiles = layers.top_patches(model, own, "conv2_1", starred[0])
    assert tiles[0][1].endswith("your content") and len(tiles) == 9


def test_the_experiments_fit_their_runs_under_a_tight_ceiling(monkeypatch):
    """The page has no steps or size control, so under a ceiling the reconstruction's 150 steps would
    be refused: it must lower them itself, and both runs of trained versus random must be admitted."""
    # Calibration by the first run would move the second run's estimate: not what is tested here.
    monkeypatch.setattr(Calibration, "record", lambda *a, **k: None)
    monkeypatch.setattr(nst_core.experiments, "MIN_STEPS", 3)
    at = app()
    at.run()
    at.switch_page("pages/experiments.py").run()
    at.radio(key="exp_name").set_value("weights").run()
    no_exception(at)
    caption = next(c.value for c in at.caption if "runs at" in c.value)
    per_run = float(re.search(r"about (\d+) s", caption).group(1)) / 2
    before = int(re.search(r"(\d+) steps each", caption).group(1))

    limit = max(per_run / 15, 0.5)
    monkeypatch.setenv("NST_MAX_RUN_S", f"{limit:.2f}")
    st.cache_resource.clear()  # the backend reads its limits when it is made
    at.run()
    no_exception(at)
    fitted = next(c.value for c in at.caption if "Fitted to this server" in c.value)
    assert f"limit of {limit:.0f} s" in fitted
    next(b for b in at.button if b.label == "▶ Recompute").click().run()
    no_exception(at)
    results = at.session_state["exp_result_weights"]
    assert [(r.label, r.status) for r in results] == [("trained", "done"), ("random", "done")], [
        r.message for r in results]
    steps = {r.settings["steps"] for r in results}
    assert len(steps) == 1 and steps.pop() < before
