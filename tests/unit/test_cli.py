"""The command line, end to end on small images with random weights."""

import csv
import re
import subprocess
import sys

import pytest
from PIL import Image

from nst_core.__main__ import main
from tests.support import BAD_IMAGES, ROOT, gradient_image, stripes_image


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
