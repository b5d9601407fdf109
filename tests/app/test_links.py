"""Hostile and broken links, path traversal, and the state every page shares, under AppTest."""

from __future__ import annotations

import sys
from pathlib import Path
from unittest import mock

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st_
from streamlit.testing.v1 import AppTest

from nst_core.settings import BY_URL
from nst_core.settings import defaults as setting_defaults
from tests.app.apptest import PAGES, TIMEOUT, app, no_exception  # noqa: F401
from tests.support import ROOT

OPENED: list[str] | None = None  # paths opened while a test watches (None: not watching)


def _audit(event, args):
    if event == "open" and OPENED is not None and isinstance(args[0], (str, bytes)):
        OPENED.append(args[0].decode(errors="replace") if isinstance(args[0], bytes) else args[0])


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one records only while OPENED is a list


def _offline(monkeypatch):
    monkeypatch.setattr(torch.hub, "download_url_to_file",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("network unreachable")))


def _linked(page: str, query: dict) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.run()
    if page != PAGES[0]:
        at.switch_page(page).run()
    return at


def _param(at: AppTest, key: str) -> str:
    value = at.query_params[key]
    return value if isinstance(value, str) else value[-1]


@pytest.fixture
def probe(tmp_path):
    """Files outside assets/ shaped like what a traversal would look for."""
    plant = tmp_path / "probe" / "plant"
    plant.mkdir(parents=True)
    (plant / "index.json").write_text('{"content": [{"file": "x.png", "label": "x"}]}')
    (plant / "x.png").write_bytes(b"not really")
    return plant


@pytest.mark.parametrize("page", PAGES)
def test_no_image_name_reads_a_file_outside_assets(monkeypatch, probe, page):
    global OPENED
    _offline(monkeypatch)
    up = "../" * 12
    names = [f"flow_brush/{up}{str(probe).lstrip('/')}", f"{up}etc/passwd", "/etc/passwd", str(probe),
             "..\\..\\..\\etc\\passwd", "chelsea_cat\x00.jpg", "chelsea_cat/../../../../etc/hostname"]
    for name in names:
        OPENED = []
        try:
            at = _linked(page, {"weights_source": "random", "arch": "vgg16", "size": "128", "content": name,
                                "style": name, "style2": name, "second": "true"})
        finally:
            opened, OPENED = OPENED, None
        no_exception(at)
        assert any(Path(p).resolve().is_relative_to(ROOT / "assets") for p in opened), "the watch saw nothing"
        for path in opened:
            resolved = Path(path).resolve()
            assert ".." not in path and "\x00" not in path, path
            assert not str(resolved).startswith(str(probe.parent)), path
            assert str(resolved) not in ("/etc/passwd", "/etc/hostname"), path
            if str(resolved).startswith(str(ROOT)) and resolved.suffix in (".jpg", ".png", ".json"):
                assert resolved.is_relative_to(ROOT / "assets"), path
        defaults = setting_defaults()
        assert at.session_state["content"] == defaults["content"] and at.session_state["style"] == defaults["style"]


_VALUE = st_.one_of(
    st_.sampled_from(["nan", "-nan", "inf", "-1", "0", "1e9", "-1e308", "9" * 60, "", ",", ",,", "true", "none",
                      "conv1_1,conv1_1", "conv9_9", "conv1_1:nan", "relu1_1", "pool5", "vgg11", "file:x.pth",
                      "../x", "random", "lbfgs", "mse", "512", "3", "0.5"]),
    st_.text(max_size=30),
    st_.integers(-10**30, 10**30).map(str),
    st_.floats(allow_nan=True, allow_infinity=True).map(repr),
)
_KEY = st_.one_of(st_.sampled_from(sorted(BY_URL)), st_.text(max_size=8))
_QUERY = st_.dictionaries(_KEY, st_.lists(_VALUE, min_size=1, max_size=3).map(
    lambda vs: vs if len(vs) > 1 else vs[0]), max_size=8)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(page=st_.sampled_from(PAGES), query=_QUERY)
def test_hostile_links_never_show_an_exception(page, query):
    query = {"size": "128", **{k: v for k, v in query.items() if k != "size"}}  # the page, not its size, is tested
    with mock.patch.object(torch.hub, "download_url_to_file", side_effect=OSError("network unreachable")):
        at = _linked(page, {"weights_source": "random", **query})
    no_exception(at)
    assert at.title


def test_repeated_style_layers_in_a_link_do_not_crash_stylize():
    at = _linked(PAGES[0], {"weights_source": "random", "arch": "vgg16", "size": "128",
                            "style_layers": "conv1_1,conv1_1,conv2_1"})
    no_exception(at)
    assert any("repeated" in t.value for t in at.toast)
    assert at.session_state["style_layers"] == ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]


def test_a_bad_layer_in_a_link_then_a_b_runs_is_not_a_crash():
    at = _linked("pages/cost_curves.py", {"weights_source": "random", "arch": "vgg16", "size": "128",
                                          "content_layer": "bogus", "steps": "1", "levels": "1"})
    no_exception(at)
    next(b for b in at.button if b.label == "Run A, then B").click().run()
    no_exception(at)
    labels = [r.label for r in at.session_state["runs"]]
    assert labels == ["B: Content layer = conv3_2", "A: Content layer = conv2_2"], labels


def test_settings_persist_across_pages_that_do_not_draw_them():
    """Streamlit drops the state of widgets a run does not draw; the settings must not go with them."""
    at = app()
    at.run()
    at.selectbox(key="_w_content_layer").set_value("conv2_2").run()
    at.selectbox(key="_w_init").set_value("noise").run()
    at.radio(key="_w_normalization").set_value("mse").run()
    for page in PAGES[1:]:
        at.switch_page(page).run()
        no_exception(at)
        assert (at.session_state["content_layer"], at.session_state["init"], at.session_state["normalization"]) \
            == ("conv2_2", "noise", "mse"), page
        assert _param(at, "content_layer") == "conv2_2" and _param(at, "normalization") == "mse"
        if page == "pages/how_it_works.py":
            assert any("mean-squared" in c.value for c in at.caption)
    at.switch_page(PAGES[0]).run()
    assert at.selectbox(key="_w_content_layer").value == "conv2_2"
    assert at.radio(key="_w_normalization").value == "mse"


def test_drawing_stylize_does_not_change_a_linked_weight_off_the_slider_scale():
    """α = 0.3 from a link (between the slider's 0.2 and 0.5) is what every page runs with, whether
    or not Stylize has drawn its slider."""
    at = _linked(PAGES[0], {"alpha": "0.3", "style_scale": "0.75"})
    no_exception(at)
    assert at.session_state["alpha"] == 0.3 and at.select_slider(key="_w_alpha").value == 0.3
    assert at.session_state["style_scale"] == 0.75
    at.switch_page("pages/cost_curves.py").run()
    assert at.session_state["alpha"] == 0.3 and _param(at, "alpha") == "0.3"


def test_the_url_names_the_network_really_loaded(monkeypatch, tmp_path):
    from tests.support import REAL_WEIGHTS
    if not REAL_WEIGHTS.is_file():
        pytest.skip(f"no weights file at {REAL_WEIGHTS}")
    monkeypatch.setenv("NST_WEIGHTS", str(REAL_WEIGHTS))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"arch": "vgg19", "size": "128"})
    at.run()
    no_exception(at)
    assert _param(at, "arch") == "vgg16"
    assert _param(at, "weights_source") == f"file:{REAL_WEIGHTS.name}"


def test_retry_loading_retries_only_the_failed_source(monkeypatch):
    from ui import network
    tries = []
    monkeypatch.setattr(torch.hub, "download_url_to_file",
                        lambda *a, **k: tries.append(1) or (_ for _ in ()).throw(OSError("network unreachable")))
    at = app(weights_source="imagenet")
    at.run()
    no_exception(at)
    random_model = network._load("vgg16", "random")
    at.run()  # a plain rerun does not try the download again
    assert len(tries) == 1
    next(b for b in at.button if b.label == "Retry loading").click().run()
    no_exception(at)
    assert len(tries) == 2
    assert network._load("vgg16", "random") is random_model  # other students' models stay loaded


def test_experiments_recompute_uses_the_stylize_settings_and_the_run_panel():
    from nst_core.experiments import BETA_SWEEP
    at = app(steps=2, levels=1, content_layer="conv3_1", init="noise")
    at.run()
    at.switch_page("pages/experiments.py").run()
    at.radio(key="exp_name").set_value("beta").run()
    no_exception(at)
    next(b for b in at.button if b.label == "▶ Recompute").click().run()
    no_exception(at)
    results = at.session_state["exp_result_beta"]
    assert [r.status for r in results] == ["done"] * 4
    assert {r.settings["steps"] for r in results} == {2}
    assert {r.settings["init"] for r in results} == {"noise"}
    assert [r.settings["beta"] for r in results] == list(BETA_SWEEP)
    assert "runs" not in at.session_state or not at.session_state["runs"]  # the gallery is Stylize's


def test_an_interrupted_experiment_keeps_what_it_reached():
    from nst_core import Step
    from ui.runs import Batch, RunRecord
    at = app()
    at.run()
    done = RunRecord("β = 0.5", {}, "m", status="done", image=b"\x89PNG...")
    steps = [Step(step=1, total_steps=9, stage=0, size=(16, 16), elapsed=1, eta=1, content=1, style=1, tv=0,
                  total=2, style_layers={}, best_image=None, best_total=1)]
    at.session_state["live"] = Batch("exp_result_beta", done=[done], current=RunRecord(
        "β = 2", {}, "m", history=steps, best=torch.rand(1, 3, 16, 16)))
    at.run()
    no_exception(at)
    kept = at.session_state["exp_result_beta"]
    assert [r.label for r in kept] == ["β = 0.5", "β = 2"] and kept[1].status == "stopped"


def test_the_prior_toggle_shows_where_it_acts_and_each_precomputed_network_is_named():
    """The prior changes only recomputed reconstructions; trained versus random was made with two networks."""
    at = app()
    at.run()
    at.switch_page("pages/experiments.py").run()
    # Each precomputed set names only the images its pictures come from, and the prior says what it does there.
    for name, reconstructs, images in (("content", True, "Photo: grace hopper"),
                                       ("beta", False, "Photo: chelsea cat · painting: the scream"),
                                       ("content_layer", False, "Photo: grace hopper · painting: starry night"),
                                       ("style", True, "Painting: starry night"),
                                       ("weights", True, "Painting: starry night")):
        at.radio(key="exp_name").set_value(name).run()
        no_exception(at)
        assert any(t.key == "exp_prior" for t in at.toggle) == reconstructs, name
        assert images in [c.value for c in at.caption], (name, [c.value for c in at.caption])
        if reconstructs:
            penalty = "total-variation penalty" in at.toggle(key="exp_prior").label
            assert penalty == (name == "content"), name  # a style reconstruction pays none
        # A recompute smaller than the pictures above is told that its deepest content layer sees less.
        warned = [c.value for c in at.caption if "may keep no outline" in c.value]
        assert (name == "content") == bool(warned), (name, warned)
    captions = " ".join(c.value for c in at.caption)
    assert "Made with VGG16 from an edge detector (HED) and VGG16 with random weights" in captions, captions


def test_a_pair_with_some_precomputed_experiments_falls_back_per_experiment(monkeypatch):
    """A pair that has only the β sweep shows its own sweep, and another pair's reconstructions."""
    from ui import pickers
    sets = {"a__x": ({"content": [{"file": "c.jpg"}], "beta": [{"file": "b.jpg"}]}, {}),
            "b__y": ({"beta": [{"file": "b.jpg"}]}, {})}
    monkeypatch.setattr(pickers, "_EXPERIMENTS", sets)
    assert pickers.experiment_set("b", "y", "beta")[0] == "b__y"
    assert pickers.experiment_set("b", "y", "content")[0] == "a__x"
    assert pickers.experiment_set("c", "z", "beta")[0] == "a__x"  # no set of its own: the first that has it
    assert pickers.experiment_set("b", "y", "weights") == ("", {}, {})
