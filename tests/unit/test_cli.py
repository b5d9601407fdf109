"""The command line, end to end on small images with random weights."""

import csv
import re
import subprocess
import sys

import pytest
from PIL import Image

from nst_core.__main__ import main
from nst_core.transfer import TransferConfig
from tests.conftest import BAD_IMAGES, ROOT, gradient_image, stripes_image


@pytest.fixture
def pair(tmp_path):
    c, s = tmp_path / "c.png", tmp_path / "s.png"
    gradient_image(64, 48).save(c)
    stripes_image().save(s)
    return c, s


def test_stylize_end_to_end(pair, tmp_path, capsys):
    c, s = pair
    out, log = tmp_path / "out" / "g.png", tmp_path / "costs.csv"
    code = main(["stylize", str(c), str(s), "-o", str(out), "--size", "40", "--steps", "4", "--weights", "random",
                 "--style-layers", "conv1_1,conv2_1", "--style-weights", "0.5,0.5", "--content-layer", "conv2_2",
                 "--log", str(log), "--save-every", "2", "--tv", "0.01"])
    assert code == 0
    assert Image.open(out).size == (40, 30)
    rows = list(csv.DictReader(open(log)))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 4]
    assert {"total", "content", "style", "tv", "style_conv1_1", "style_conv2_1"} <= set(rows[0])
    assert (tmp_path / "out" / "g_step0002.png").exists()
    err = capsys.readouterr().err
    assert "random untrained" in err and "done" in err


def test_two_styles_blend(pair, tmp_path):
    c, s = pair
    out = tmp_path / "g.png"
    assert main(["stylize", str(c), str(s), str(c), "--style-blend", "0.7,0.3", "-o", str(out), "--size", "32",
                 "--steps", "2", "--weights", "random", "--preserve-color"]) == 0


@pytest.mark.parametrize("kind, layers", [("content", "conv3_2"), ("style", "conv1_1,conv2_1")])
def test_reconstruct(pair, tmp_path, kind, layers):
    out = tmp_path / f"{kind}.png"
    assert main(["reconstruct", kind, str(pair[0]), "--layers", layers, "-o", str(out), "--size", "32",
                 "--steps", "3", "--weights", "random"]) == 0
    assert out.exists()


@pytest.mark.parametrize("args, message", [
    (["--content-layer", "conv9_9"], "Unknown layer 'conv9_9'"),
    (["--weights", "/no/such/weights.pth"], "Weights file not found"),
    (["--arch", "vgg16", "--style-layers", "conv5_4"], "Unknown layer 'conv5_4' for vgg16"),
])
def test_bad_arguments_exit_2_with_one_line(pair, tmp_path, capsys, args, message):
    c, s = pair
    code = main(["stylize", str(c), str(s), "-o", str(tmp_path / "x.png"), "--steps", "1", "--size", "32",
                 "--weights", "random", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and err.startswith("error:") and "Traceback" not in err


def test_bad_image_exits_2(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    proc = subprocess.run([sys.executable, "-m", "nst_core", "stylize", str(bad), str(bad), "-o",
                           str(tmp_path / "x.png"), "--weights", "random"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error:") and "not an image" in lines[-1] and "Traceback" not in proc.stderr


def test_offline_imagenet_exits_2_and_names_alternatives(pair, tmp_path, monkeypatch, capsys):
    import torch
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    monkeypatch.setattr(torch.hub, "download_url_to_file",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("network unreachable")))
    code = main(["stylize", str(pair[0]), str(pair[1]), "-o", str(tmp_path / "x.png"), "--weights", "imagenet"])
    err = capsys.readouterr().err
    assert code == 2 and "--weights random" in err and "NST_WEIGHTS" in err


def test_benchmark_prints_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["benchmark", "--arch", "vgg16", "--sizes", "32", "--steps", "2", "--sections", "overhead,gpu",
                 "--json", str(out)]) == 0
    import json
    result = json.loads(out.read_text())
    row = result["overhead"][0]
    assert row["size"] == 32 and row["run_step_s"] > 0 and row["bare_fwd_bwd_s"] > 0
    assert row["overhead_ratio"] == pytest.approx(row["run_step_s"] / row["bare_fwd_bwd_s"], rel=0.01)
    assert row["overhead_ratio"] > 0.5, "a run() step contains a whole pass: it was measured on a step that made none"
    assert "overhead" in capsys.readouterr().out


def test_cli_defaults_are_the_apps_default_preset_and_flags_override_it():
    from nst_core.__main__ import _config, build_parser
    from nst_core.transfer import PRESETS, preset_config

    def config(*extra):
        return _config(build_parser().parse_args(["stylize", "c.png", "s.png", "-o", "g.png", *extra]))

    assert config() == preset_config(snapshot_every=10)
    paper = config("--preset", "paper", "--steps", "7")
    assert paper.optimizer == PRESETS["Paper (Gatys 2016)"]["optimizer"] and paper.steps == 7
    switched = config("--optimizer", "lbfgs")
    assert switched.optimizer == "lbfgs" and switched.lr == 1.0


def test_time_to_reach_interpolates_between_points():
    from nst_core.benchmark import time_to_reach
    assert time_to_reach([(0, 5.0), (10, 3.0), (20, 1.0)], 2.0) == pytest.approx(15.0)
    assert time_to_reach([(4, 1.0)], 2.0) == 4
    assert time_to_reach([(0, 5.0), (10, 3.0)], 2.0) is None


def test_benchmark_quality_section_on_a_tiny_network(vgg16_random):
    from nst_core.benchmark import quality
    rows = {r["contender"]: r for r in quality(vgg16_random, 32, 6, presets=("Quick",))}
    base = rows.pop("baseline")
    assert base["fraction_of_baseline"] == 1.0 and base["seconds"] > 0
    for r in rows.values():
        assert r["seconds"] > 0
        if r["reached_baseline_s"] is not None:
            assert r["fraction_of_baseline"] == pytest.approx(r["reached_baseline_s"] / base["seconds"], rel=0.02, abs=0.002)
        else:  # never reached, so it did not end there either
            assert r["final_cost"] > base["final_cost"]
        if r["baseline_s_to_this_cost"] is not None:
            assert r["speedup_at_equal_cost"] == pytest.approx(r["baseline_s_to_this_cost"] / r["seconds"], rel=0.05)
        else:  # the baseline never got down to this preset's cost
            assert r["final_cost"] < base["final_cost"]


def test_a_nudged_photo_moves_every_pixel_by_at_most_one_level():
    import numpy as np
    from nst_core.benchmark import ASSET_CONTENT, nudged
    from nst_core.images import load_image
    photo = load_image(ASSET_CONTENT)
    a, b = (np.asarray(x, dtype=np.int16) for x in (photo, nudged(photo)))
    assert a.shape == b.shape and np.abs(a - b).max() == 1
    assert 0.5 < (a != b).mean() < 0.8  # two in three values move, save where 0 or 255 clamps them


def test_benchmark_precision_section_compares_each_photo_and_the_path_noise(vgg16_random):
    from nst_core.benchmark import ASSET_CONTENT, precision
    (row,) = precision(vgg16_random, [32], steps=1, run_steps=2,
                       contents=[ASSET_CONTENT, ASSET_CONTENT.parent / "rocket.jpg"])
    assert row["speedup"] == pytest.approx(row["fp32_step_s"] / row["bf16_step_s"], rel=0.02)
    assert [q["content"] for q in row["pairs"]] == ["chelsea_cat", "rocket"]
    for q in row["pairs"]:
        assert q["bf16_difference"] == pytest.approx(q["bf16"] / q["fp32"] - 1, abs=1e-4)
        assert q["nudged_difference"] == pytest.approx(q["fp32_nudged"] / q["fp32"] - 1, abs=1e-4)
    diffs = [q["bf16_difference"] for q in row["pairs"]]
    assert row["bf16_mean_difference"] == pytest.approx(sum(diffs) / 2, abs=1e-4)
    assert row["bf16_mean_abs_difference"] == pytest.approx(sum(map(abs, diffs)) / 2, abs=1e-4)


def test_benchmark_estimates_section_calibrates_from_the_runs_before(vgg16_random, monkeypatch):
    import nst_core.benchmark as bench
    monkeypatch.setattr(bench, "series", lambda name: [("one", TransferConfig(size=32, steps=2, levels=1))])
    rows = bench.estimates(vgg16_random, (32, 48), ("Quick",), experiments=("content",))
    assert [r["run"] for r in rows] == ["Quick 32 px", "Quick 48 px", "experiment 'content'"]
    first, later = rows[0], rows[1:]
    # A fresh server announces the speed-only estimate; afterwards the finished runs scale it.
    assert first["announced_s"] == first["speed_only_s"]
    assert all(r["actual_s"] > 0 for r in rows)
    assert any(r["announced_s"] != r["speed_only_s"] for r in later)
    for r in rows:  # the error says which way the announcement missed
        assert (r["error"] > 0) == (r["announced_s"] > r["actual_s"]) or r["announced_s"] == r["actual_s"]


@pytest.mark.parametrize("name", list(BAD_IMAGES))
def test_every_bad_image_exits_2_with_one_readable_line(pair, tmp_path, capsys, name):
    data, match = BAD_IMAGES[name]
    bad = tmp_path / f"{name}.png"
    bad.write_bytes(data)
    code = main(["stylize", str(bad), str(pair[1]), "-o", str(tmp_path / "x.png"), "--weights", "random",
                 "--arch", "vgg16", "--size", "32", "--steps", "1"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:")
    assert re.search(match, lines[0]), lines[0]


def test_benchmark_concurrency_runs_as_many_at_once_as_the_server(vgg16_random, monkeypatch):
    from nst_core import benchmark
    from nst_core.transfer import preset_config
    monkeypatch.setenv("NST_MAX_RUNS", "2")
    monkeypatch.setattr(benchmark, "preset_config", lambda **kw: preset_config(steps=4, **kw))
    c = benchmark.concurrency(vgg16_random, 48)
    assert c["runs"] == 2 and c["errors"] == []
    assert c["sequential_s"] > 0 and c["concurrent_s"] > 0
    assert c["cpu_s_per_run_sequential"] > 0 and c["cpu_s_per_run_concurrent"] > 0
