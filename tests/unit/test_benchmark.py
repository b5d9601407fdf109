"""The benchmark command's sections, on a tiny random network (figures printed, never timed here)."""

import functools
import json

import pytest

from nst_core.__main__ import main
from nst_core.transfer import TransferConfig


def test_benchmark_prints_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["benchmark", "--arch", "vgg16", "--sizes", "32", "--steps", "2", "--sections", "overhead",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    row = result["overhead"][0]
    assert row["size"] == 32 and row["run_step_s"] > 0 and row["bare_fwd_bwd_s"] > 0
    assert row["overhead_ratio"] == pytest.approx(row["run_step_s"] / row["bare_fwd_bwd_s"], rel=0.01)
    assert row["overhead_ratio"] > 0.5, "a run() step contains a whole pass: it was measured on a step that made none"
    assert "overhead" in capsys.readouterr().out


def test_time_to_reach_interpolates_between_points():
    from nst_core.benchmark import time_to_reach
    assert time_to_reach([(0, 5.0), (10, 3.0), (20, 1.0)], 2.0) == pytest.approx(15.0)
    assert time_to_reach([(4, 1.0)], 2.0) == 4
    assert time_to_reach([(0, 5.0), (10, 3.0)], 2.0) is None


def test_benchmark_quality_section_on_a_tiny_network(vgg16_random, monkeypatch):
    import nst_core.benchmark as bench
    monkeypatch.setattr(bench, "preset_config", functools.partial(bench.preset_config, steps=15))  # not 70 a level
    rows = {r["contender"]: r for r in bench.quality(vgg16_random, 32, 6, presets=("Quick",))}
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
    # The speed at the runs' own sizes: the server's sides (128 and 256 px) took half the test's time.
    monkeypatch.setattr(bench, "measure_speed", functools.partial(bench.measure_speed, sides=(32, 48)))
    # Quick's 70 steps at each of two levels took most of the rest; the estimate scales with steps.
    monkeypatch.setattr(bench, "preset_config", functools.partial(bench.preset_config, steps=15))
    rows = bench.estimates(vgg16_random, (32, 48), ("Quick",), experiments=("content",))
    assert [r["run"] for r in rows] == ["Quick 32 px", "Quick 48 px", "experiment 'content'"]
    first, later = rows[0], rows[1:]
    # A fresh server announces the speed-only estimate; afterwards the finished runs scale it.
    assert first["announced_s"] == first["speed_only_s"]
    assert all(r["actual_s"] > 0 for r in rows)
    assert any(r["announced_s"] != r["speed_only_s"] for r in later)
    for r in rows:  # the error says which way the announcement missed
        assert (r["error"] > 0) == (r["announced_s"] > r["actual_s"]) or r["announced_s"] == r["actual_s"]


def test_benchmark_concurrency_runs_as_many_at_once_as_the_server(vgg16_random, monkeypatch):
    from nst_core import benchmark
    from nst_core.transfer import preset_config
    monkeypatch.setenv("NST_MAX_RUNS", "2")
    monkeypatch.setattr(benchmark, "preset_config", lambda **kw: preset_config(steps=4, **kw))
    c = benchmark.concurrency(vgg16_random, 48)
    assert c["runs"] == 2 and c["errors"] == []
    assert c["sequential_s"] > 0 and c["concurrent_s"] > 0
    assert c["cpu_s_per_run_sequential"] > 0 and c["cpu_s_per_run_concurrent"] > 0
