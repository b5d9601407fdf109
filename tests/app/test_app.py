"""Every page under Streamlit's AppTest, on a small random network."""

from __future__ import annotations

import io
import sys
import types

import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from nst_core import Step
from tests.app.apptest import PAGES, TIMEOUT, app, no_exception
from tests.support import ROOT
from ui.runs import Batch, RunRecord


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(page):
    at = app()
    at.run()
    at.switch_page(page)
    at.run()
    no_exception(at)
    assert at.title, f"{page} shows no title"


def test_stylize_controls_exist():
    at = app()
    at.run()
    no_exception(at)
    labels = {w.label for w in at.selectbox} | {w.label for w in at.radio} | {w.label for w in at.multiselect}
    for label in ("Content image", "Style image", "Preset", "Content layer", "Style layers", "Optimizer",
                  "Start from", "Pooling", "Weighting", "Normalization", "Weights", "Architecture"):
        assert label in labels, label
    assert any(b.label == "▶ Run" for b in at.button)
    assert all(w.help for w in at.selectbox if w.label in ("Content layer", "Optimizer", "Pooling"))
    # Beside the finished example (made with its own network), the network line is the next run's.
    assert any(c.value.startswith("🧠 ▶ Run uses VGG") for c in at.caption), [c.value for c in at.caption]


def test_short_run_yields_a_downloadable_image_and_survives_page_switches():
    at = app(steps=2, levels=1)
    at.run()
    next(b for b in at.button if b.label == "▶ Run").click().run()
    no_exception(at)
    runs = at.session_state["runs"]
    assert len(runs) == 1 and runs[0].status == "done"
    assert runs[0].image[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(runs[0].history) == 3  # two steps and the final evaluation
    # Named as the pickers name the pictures; beside Run, once, that it is done (on a phone the
    # result is below the fold).
    assert runs[0].label == f"{at.session_state['content'].replace('_', ' ')} × starry night", runs[0].label
    assert [c.value for c in at.caption if c.value.startswith("✅ Done")] == [
        "✅ Done: the result is in the stage (below, on a phone)."]
    assert max(runs[0].history[-1].size) == 128 and set(runs[0].history[-1].style_layers) == set(
        at.session_state["style_layers"])  # typed records: the size in numbers, per-layer costs a mapping
    downloads = at.get("download_button")
    assert any(el.proto.label == "⬇ Download PNG" for el in downloads)
    assert downloads and all(el.proto.ignore_rerun for el in downloads), "a download must not rerun the page"
    at.switch_page("pages/cost_curves.py").run()
    no_exception(at)
    # The run's own number of steps, not its records (the final evaluation repeats step 2).
    assert any(str(o).startswith("Run 1") and str(o).endswith("(done, 2 steps)") for sb in at.selectbox
               for o in sb.options)
    strip = [img.caption for el in at.get("image") for img in el.proto.imgs if img.caption.startswith("step ")]
    assert strip == ["step 1", "step 2"], strip  # the filmstrip: every snapshot of so short a run
    at.switch_page("pages/stylize.py").run()
    no_exception(at)
    assert at.session_state["runs"][0].image == runs[0].image
    assert any(h.value == "Latest result" for h in at.subheader)
    settings_line = next(c.value for c in at.caption if "🧠" in c.value and "conv4_2" in c.value)
    assert settings_line.count("VGG") == 1, settings_line  # the network named once, in its own sentence
    assert not any(c.value.startswith("✅ Done") for c in at.caption)


@pytest.mark.parametrize("page", ["gram", ""])
def test_an_interrupted_run_is_kept_as_stopped(page):
    """A rerun mid-run that does not go on with the run (a move to another page; on the run's own
    page, changed settings) must store what the run had reached."""
    at = app()
    at.run()
    steps = [Step(step=i, total_steps=9, stage=0, size=(16, 16), elapsed=i, eta=1, content=1, style=1, tv=0,
                  total=3 - i, style_layers={"conv1_1": 1.0}, best_image=None, best_total=1) for i in (1, 2)]
    at.session_state["live"] = Batch("runs", current=RunRecord("x", {"steps": 9}, "m", history=steps,
                                                               best=torch.rand(1, 3, 16, 16)),
                                     kind="stylize", page=page, keys=["the key of other settings"])
    at.run()
    no_exception(at)
    entry = at.session_state["runs"][0]
    assert entry.status == "stopped" and "step 2" in entry.message and entry.image[:4] == b"\x89PNG"
    assert "live" not in at.session_state


def test_a_run_stopped_before_its_first_step_says_there_is_no_picture_yet():
    at = app()
    at.run()
    at.session_state["live"] = Batch("runs", current=RunRecord("x", {"steps": 9}, "m"), kind="stylize",
                                     page="pages/stylize.py", keys=["the key of the stopped run"])
    at.session_state["stop_stylize"] = True
    at.run()
    no_exception(at)
    assert "runs" not in at.session_state or not at.session_state["runs"]
    assert [t.value for t in at.toast] == ["Stopped before its first step: there is no picture to keep yet."]


def test_sessions_are_isolated():
    # Different seeds: a student who opens the very same images and settings is shown the kept
    # result on purpose (a reload, or back later), as the test below checks.
    a, b = app(steps=1, levels=1, seed=1), app(steps=1, levels=1, seed=2)
    a.run()
    b.run()
    next(x for x in a.button if x.label == "▶ Run").click().run()
    b.run()
    assert len(a.session_state["runs"]) == 1
    assert "runs" not in b.session_state or not b.session_state["runs"]


def test_shared_link_sets_the_widgets():
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"weights_source": "random", "steps": "7", "optimizer": "lbfgs", "beta": "20",
                            "style_layers": "conv1_1,conv2_1", "size": "999", "init": "bogus"})
    at.run()
    no_exception(at)
    assert at.session_state["steps"] == 7 and at.session_state["optimizer"] == "lbfgs"
    assert at.session_state["beta"] == 20.0 and at.session_state["style_layers"] == ["conv1_1", "conv2_1"]
    assert at.session_state["size"] == 256 and at.session_state["init"] == "content"  # bad values ignored
    notice = " ".join(t.value for t in at.toast)
    assert "Image size" in notice and "Start from" in notice, notice


def test_offline_imagenet_falls_back_with_a_notice(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    at = app(weights_source="imagenet", arch="vgg16")
    at.run()
    no_exception(at)
    warnings = " ".join(w.value for w in at.warning)
    # Plain words for a class: what happened and what is used instead; no error text, no flags.
    assert "cannot download the ImageNet VGG16" in warnings and "random, untrained weights" in warnings
    assert "unreachable" not in warnings and "--weights" not in warnings and "Error" not in warnings
    assert any(b.label == "Retry loading" for b in at.sidebar.button)


def test_presentation_mode_hides_the_settings_and_survives_a_page_switch():
    at = app()
    at.run()
    assert any(s.label == "Content layer" for s in at.selectbox)
    next(t for t in at.toggle if t.label == "Presentation mode").set_value(True).run()
    no_exception(at)
    assert at.session_state["present"] is True and at.query_params["present"] == "true"
    assert not any(s.label == "Content layer" for s in at.selectbox)
    assert any(b.label == "▶ Run" for b in at.button)  # the picture and Run stay
    at.switch_page("pages/cost_curves.py").run()
    no_exception(at)
    assert next(t for t in at.toggle if t.label == "Presentation mode").value is True
    at.switch_page("pages/stylize.py").run()
    assert at.session_state["present"] is True
    assert not any(s.label == "Content layer" for s in at.selectbox)


def test_bad_weights_file_in_the_environment_is_not_a_crash(monkeypatch, tmp_path):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"garbage")
    monkeypatch.setenv("NST_WEIGHTS", str(bad))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.session_state["size"] = 128
    at.run()
    no_exception(at)
    assert any("could not be loaded" in w.value for w in at.warning)


def test_every_cache_is_bounded():
    """Many students share one process: data caches are bounded in bytes (``ui.cache.shared``, never
    ``st.cache_data``, which bounds entries only); every resource cache has a size limit."""
    import ast

    shared = 0
    for path in [*(ROOT / "pages").glob("*.py"), *(ROOT / "ui").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for deco in node.decorator_list:
                call = deco if isinstance(deco, ast.Call) else None
                name = ast.unparse(call.func if call else deco)
                assert name != "st.cache_data", f"{path.name}:{node.name} is cached without a bound in bytes"
                shared += name == "shared"
                if name != "st.cache_resource":
                    continue
                keywords = {k.arg for k in call.keywords} if call else set()
                assert "max_entries" in keywords, f"{path.name}:{node.name} has no max_entries"
    assert shared >= 6


def test_ui_modules_import_each_other_at_the_top_and_in_one_direction():
    """An import inside a function hides a cycle until it bites; ``ui``'s modules have neither."""
    import ast
    import graphlib

    names = {path.stem for path in (ROOT / "ui").glob("*.py")}
    graph = {}
    for path in (ROOT / "ui").glob("*.py"):
        tree = ast.parse(path.read_text())
        top = set(tree.body)
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in ("ui", *(f"ui.{n}" for n in names)):
                assert node in top, f"{path.name}:{node.lineno} imports inside a function"
                deps |= {a.name for a in node.names} if node.module == "ui" else {node.module.split(".")[1]}
            elif isinstance(node, ast.Import) and any(a.name.startswith("ui.") for a in node.names):
                assert node in top, f"{path.name}:{node.lineno} imports inside a function"
                deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("ui.")}
        graph[path.stem] = deps & names
    list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError on a cycle


@pytest.mark.parametrize("source", ["file:/etc/passwd", "/etc/passwd", "file:../shared/weights/x.pth"])
def test_a_link_cannot_name_a_server_path_as_weights(monkeypatch, source):
    from ui import network
    asked = []
    real = network.load_vgg
    monkeypatch.setattr(network, "load_vgg", lambda arch, weights, **kw: asked.append(weights) or real(arch, weights, **kw))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"weights_source": source, "arch": "vgg16", "size": "128"})
    at.run()
    no_exception(at)
    assert at.session_state["weights_source"] != source
    assert all(w in ("random", "imagenet") for w in asked), asked
    model, error = network.load_model("vgg16", source)  # even called directly, it refuses
    assert model is None and "not one of this server's weight sources" in error


def test_a_second_student_gets_the_identical_run_without_computing_it(monkeypatch):
    """Runs are identified by image bytes, settings and network: the same request again is served
    from the server's shared results, computed once."""
    import nst_core.serve.registry
    started = []
    real = nst_core.serve.registry.run

    def counting(*args, **kwargs):
        started.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(nst_core.serve.registry, "run", counting)
    a, b = app(steps=2, levels=1, seed=4242), app(steps=2, levels=1, seed=4242)
    for at in (a, b):
        at.run()
        next(x for x in at.button if x.label == "▶ Run").click().run()
        no_exception(at)
    assert len(started) == 1
    assert a.session_state["runs"][0].image == b.session_state["runs"][0].image
    back = app(steps=2, levels=1, seed=4242)  # back later with the same images and settings
    back.run()
    assert back.session_state["runs"][0].image == a.session_state["runs"][0].image and len(started) == 1
    c = app(steps=2, levels=1, seed=4243)  # one setting differs: computed anew
    c.run()
    next(x for x in c.button if x.label == "▶ Run").click().run()
    assert len(started) == 2


def test_a_tab_back_after_its_run_ended_is_told_when_the_picture_was_ready():
    """A student whose tab was away (starved, or a locked phone) when their run finished finds it
    on return; its caption counts to the run's end, not to the return."""
    from ui.network import backend
    done = app(steps=2, levels=1, seed=4250)
    done.run()
    next(x for x in done.button if x.label == "▶ Run").click().run()
    key = done.session_state["runs"][0].key
    ended = backend().peek(key).ended
    assert ended is not None
    back = app(steps=2, levels=1, seed=4250)  # the same session's script, rerun on reconnect
    back.session_state["live"] = Batch("runs", current=RunRecord("x", {}, "m", key=key), kind="stylize",
                                       page="", keys=[key], pressed=ended - 5.0)
    back.run()
    no_exception(back)
    entry = back.session_state["runs"][0]
    pixels = [Image.open(io.BytesIO(e.image)).tobytes() for e in (entry, done.session_state["runs"][0])]
    assert entry.status == "done" and pixels[0] == pixels[1]
    assert entry.ready_s == pytest.approx(5.0, abs=1e-6)


def test_a_run_over_the_servers_ceiling_is_refused_with_what_to_lower(monkeypatch):
    from ui.network import backend
    monkeypatch.setattr(backend().registry, "max_run_s", 1e-3)
    at = app(steps=5, levels=1, seed=4244)
    at.run()
    next(x for x in at.button if x.label == "▶ Run").click().run()
    no_exception(at)
    assert any("over this server's limit" in e.value and "at most" in e.value for e in at.error)
    assert "runs" not in at.session_state or not at.session_state["runs"]


def _press_run(at: AppTest) -> None:
    next(x for x in at.button if x.label == "▶ Run").click().run()
    no_exception(at)


def test_a_served_run_is_replayed_from_its_snapshots(monkeypatch):
    """The teacher ran the default pair; a student's Run of it is served finished, and must still
    show G forming: its recorded snapshots and costs, replayed."""
    import ui.panel
    import ui.runs
    replays, real = [], ui.panel.Panel.replay

    def spy(self, view, seconds, position=(0, 1)):
        real(self, view, seconds, position)
        replays.append((len(view.snapshots), self.replayed))

    monkeypatch.setattr(ui.panel.Panel, "replay", spy)
    teacher, student = app(steps=2, levels=1, seed=4270), app(steps=2, levels=1, seed=4270)
    teacher.run()
    _press_run(teacher)
    assert replays == [], "the run's own student watched it live"
    student.run()  # opening the page finds the kept result (a reload would want it back) ...
    assert "Press ▶ Run to watch it form" in student.session_state["runs"][0].message
    _press_run(student)  # ... and Run shows it forming
    assert replays and replays[0][0] >= 2 and replays[0][1] == replays[0][0], replays
    entry = student.session_state["runs"][0]
    assert entry.shared and entry.status == "done"
    # The Run took the found entry's place: one picture, still called Run 1.
    assert [r.id for r in student.session_state["runs"]] == [1]


def test_run_pressed_again_during_its_own_run_is_one_panel_and_one_gallery_entry():
    """A rerun from Run while this panel's run was live: the same run goes on; the class saw a
    second panel and a second entry, captioned done but reading "Stopped at step 200"."""
    at = app(steps=2, levels=1, seed=4271)
    at.run()
    _press_run(at)
    key = at.session_state["runs"][0].key
    at.session_state["live"] = Batch("runs", current=RunRecord("x", {}, "m", key=key), kind="stylize", page="",
                                     keys=[key])
    _press_run(at)
    runs = at.session_state["runs"]
    assert len(runs) == 2, [(r.status, r.message) for r in runs]  # one entry per Run
    assert runs[0].status == "done" and "Stopped" not in runs[0].message
    assert not [b for b in at.button if b.label == "⏹ Stop"]


def test_a_refusal_offers_choices_of_the_page_that_run_in_one_click(monkeypatch):
    """Refused for time at 256 px: the buttons name a size of the size slider and a number of
    steps that this server's estimate lets through, and one click runs with it."""
    import ui.runs
    from nst_core.settings import SIZES
    from ui.network import backend
    # A deterministic estimate: 1 s per step at 128 px, growing with the pixels; a ceiling of 22 s
    # (the run's wall-time backstop, 20× the ceiling, stays far off on a slow host).
    monkeypatch.setattr(ui.runs, "_predicted", lambda job: job.config.steps * (job.config.size / 128) ** 2)
    monkeypatch.setattr(backend().registry, "max_run_s", 22.0)
    at = app(steps=8, levels=1, seed=4272, size=256)
    at.run()
    _press_run(at)
    assert any("over this server's limit" in e.value for e in at.error)
    # Beside Run, the estimate again: "Running" stood there only while the panel followed the run.
    assert not [c.value for c in at.caption if "Running" in c.value]
    assert any(c.value.startswith("⏱ About ") for c in at.caption)
    offers = {b.label: b for b in at.button if b.label.startswith("▶ Run ")}
    assert set(offers) == {"▶ Run at 192 px", "▶ Run with 5 steps"}, set(offers)
    assert all(int(label.split()[3]) in SIZES for label in offers if label.endswith("px"))
    offers["▶ Run at 192 px"].click().run()
    no_exception(at)
    assert at.session_state["size"] == 192
    runs = at.session_state["runs"]
    assert len(runs) == 1 and runs[0].status == "done" and runs[0].settings["size"] == 192


def test_bf16_where_it_is_emulated_is_said_in_the_sidebar_and_refused_with_auto_offered(monkeypatch):
    """On a CPU without bfloat16 instructions a bf16 step takes 60-210× fp32's: the sidebar says
    so, and a Run is refused up front with a one-click run in auto (fp32) arithmetic."""
    import nst_core.model
    import ui.runs
    from ui.network import backend
    monkeypatch.setattr(nst_core.model, "cpu_has_fast_bf16", lambda: False)
    # A deterministic estimate: about a minute in fp32, so under a ceiling of 100 s, but not in bf16.
    monkeypatch.setattr(ui.runs, "machine_speed", lambda description, model: {128: 10.0, 256: 20.0})
    monkeypatch.setattr(backend().registry, "max_run_s", 100.0)
    at = app(steps=20, levels=1, seed=4274, precision="bf16")
    at.run()
    assert any("emulated on this CPU" in c.value for c in at.sidebar.caption)
    assert any("Choose auto arithmetic (bf16 is emulated here)" in c.value for c in at.caption)
    _press_run(at)
    assert any("bf16 is emulated" in e.value for e in at.error), [e.value for e in at.error]
    offer = next(b for b in at.button if b.label == "▶ Run in auto arithmetic (fp32 here)")
    offer.click().run()
    no_exception(at)
    assert at.session_state["precision"] == "auto"
    runs = at.session_state["runs"]
    assert len(runs) == 1 and runs[0].status == "done" and runs[0].settings["precision"] == "auto"


def test_a_run_refused_for_memory_offers_a_size_that_fits(monkeypatch):
    from ui.network import backend
    from nst_core.settings import SIZES
    monkeypatch.setattr(backend().registry, "headroom_mb", lambda: 200.0)  # 256 px needs more
    at = app(steps=2, levels=1, seed=4273, size=256)
    at.run()
    _press_run(at)
    assert "MB" in " ".join(e.value for e in at.error)
    offers = [b.label for b in at.button if b.label.startswith("▶ Run ")]
    assert len(offers) == 1 and int(offers[0].split()[3]) in SIZES[:SIZES.index(256)], offers


def test_the_seed_is_offered_only_when_the_run_starts_from_noise():
    at = app(init="content")
    at.run()
    seed = at.number_input(key="_w_seed")
    assert seed.disabled and "noise" in seed.help
    at = app(init="noise")
    at.run()
    assert not at.number_input(key="_w_seed").disabled


def _unreachable_cluster(address):
    raise ConnectionError(f"no cluster answers at {address}")


@pytest.mark.parametrize("address, fake", [("ray://head:10001", False), ("10.255.255.1:6379", True)])
def test_a_ray_cluster_out_of_reach_leaves_the_runs_to_this_server_and_says_so(monkeypatch, address, fake):
    """Ray Client is refused by name (the real check); an address nobody answers at fails in Ray's
    own start, stood in for here so that no test waits on a network timeout."""
    monkeypatch.setenv("NST_RAY_ADDRESS", address)
    if fake:
        monkeypatch.setitem(sys.modules, "nst_core.serve.ray_backend",
                            types.SimpleNamespace(RayBackend=_unreachable_cluster))
    at = app()
    at.run()
    no_exception(at)
    warnings = " ".join(w.value for w in at.sidebar.warning)
    assert "could not be used" in warnings and "computed on this server instead" in warnings
    assert any("Runs: on this server" in c.value for c in at.sidebar.caption)
    assert any(b.label == "▶ Run" for b in at.button)


def test_a_batch_admitted_at_run_is_not_refused_halfway_by_a_slow_first_run(monkeypatch):
    """A/B runs are admitted as one batch when Run is pressed: a first run that teaches the server it
    is 50× slower than thought must not get the second one refused halfway through."""
    from nst_core.serve.estimate import Calibration

    learnt = []
    monkeypatch.setattr(Calibration, "record", lambda *a, **k: learnt.append(1))
    factor = Calibration.factor
    monkeypatch.setattr(Calibration, "factor", lambda self, *a, **k: factor(self, *a, **k) * (50 if learnt else 1))
    monkeypatch.setenv("NST_MAX_RUN_S", "20")
    at = app(steps=10, levels=1)
    at.run()
    at.switch_page("pages/cost_curves.py").run()
    next(b for b in at.button if b.label == "Run A, then B").click().run()
    no_exception(at)
    runs = at.session_state["runs"]
    assert learnt and [r.status for r in runs] == ["done", "done"], [(r.label, r.message) for r in runs]


@pytest.mark.parametrize("name", ["vgg16_hed_features_fp16.pth", "a_very_long_weights_file_from_a_colleague_v2.pt",
                                  "x.pth"])
def test_a_weights_file_is_named_in_words_that_fit_the_sidebar_box(name):
    """The box shows about 30 characters: 'Local file: vgg16_hed_features_' lost the rest."""
    from ui.network import source_label
    label = source_label(f"file:{name}")
    stem = name.rsplit(".", 1)[0]
    assert label.startswith("File: ") and len(label) <= 30
    assert label == f"File: {stem}" or (label[6:].startswith(stem[:10]) and label.endswith(stem[-8:]))
