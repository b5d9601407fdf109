"""Refusals up front with what to lower, the memory estimate and budget, the server's limits."""

from __future__ import annotations

import pytest

from nst_core.serve.admission import RunRefused, check_run
from nst_core.serve.limits import SERVER_LIMITS, SERVER_SETTINGS, server_limit, server_setting
from nst_core.benchmark import peak_rss_mb
from nst_core.serve.memory import fits_budget, largest_size_within, resident_mb, run_memory_mb
from nst_core.settings import SIZES
from nst_core.transfer import TransferConfig


def test_a_run_estimated_over_the_ceiling_is_refused_with_what_to_lower():
    cfg = TransferConfig(size=512, steps=1000, optimizer="lbfgs", lr=1.0)
    with pytest.raises(RunRefused) as err:
        check_run(cfg, (512, 512), estimate_s=12013, max_run_s=120)
    exc = err.value
    assert exc.max_steps == 9 and "at most 9 steps" in exc.message
    assert "12013 s" in exc.message and "120 s" in exc.message and "Adam" in exc.message
    assert exc.max_size is None, "even 64 px would not fit 100× less time"
    with pytest.raises(RunRefused) as err:
        check_run(TransferConfig(size=512, steps=100), (512, 512), estimate_s=240, max_run_s=120)
    assert err.value.max_size == 256 and "256 px" in err.value.message  # 352 would fit, but 256 can be chosen
    assert "352" not in err.value.message
    with pytest.raises(RunRefused) as err:
        check_run(TransferConfig(size=512, steps=101), (512, 512), estimate_s=155, max_run_s=120)
    assert err.value.max_steps == 75 and err.value.max_size == 384  # a round number of steps; a size on the slider


def test_a_bf16_run_refused_where_bf16_is_emulated_is_told_to_change_the_arithmetic_first():
    cfg = TransferConfig(size=256, steps=300, precision="bf16")
    with pytest.raises(RunRefused) as err:
        check_run(cfg, (256, 256), estimate_s=1200, max_run_s=120, precision="bf16", emulated=True)
    assert "Lower its work: auto or fp32 arithmetic instead of bf16" in err.value.message
    assert "bf16 is emulated" in err.value.reason  # what a page with buttons shows
    with pytest.raises(RunRefused) as err:
        check_run(cfg, (256, 256), estimate_s=1200, max_run_s=120, precision="bf16")
    assert "bf16" not in err.value.message  # where bf16 is the fast arithmetic, it is not the cause


def test_a_run_that_could_never_fit_in_memory_is_offered_a_smaller_size():
    cfg = TransferConfig(size=512, steps=10)
    need = check_run(cfg, (512, 512), estimate_s=10, max_run_s=120, headroom_mb=10_000)
    assert need == pytest.approx(run_memory_mb(cfg, (512, 512)))
    with pytest.raises(RunRefused) as err:
        check_run(cfg, (512, 512), estimate_s=10, max_run_s=120, headroom_mb=300)
    size = err.value.max_size
    assert size in SIZES and size < 512 and f"{size} px" in err.value.message
    assert run_memory_mb(TransferConfig(size=size, steps=10), (512, 512)) <= 300
    bigger = SIZES[SIZES.index(size) + 1]
    assert run_memory_mb(TransferConfig(size=bigger, steps=10), (512, 512)) > 300
    with pytest.raises(RunRefused) as err:
        check_run(cfg, (512, 512), estimate_s=10, max_run_s=120, headroom_mb=50)
    assert err.value.max_size is None and "Nothing fits now" in err.value.message


def test_run_memory_grows_with_pixels_and_halves_its_slope_in_bf16():
    small, big = TransferConfig(size=128), TransferConfig(size=256)
    assert run_memory_mb(big, (256, 256)) > 3 * run_memory_mb(small, (256, 256)) - 100
    fp32, bf16 = run_memory_mb(big, (256, 256), "fp32"), run_memory_mb(big, (256, 256), "bf16")
    assert bf16 < fp32 and bf16 - run_memory_mb(small, (256, 256), "bf16") < fp32 - run_memory_mb(small, (256, 256))
    assert largest_size_within(big, (256, 256), 1.0) is None
    assert largest_size_within(big, (256, 256), bf16, "bf16") == 256
    assert largest_size_within(big, (256, 256), bf16, "fp32") < 256


def test_budget_reads_this_process_and_counts_reserved_work():
    rss = resident_mb()
    assert rss is not None and rss > 10
    assert peak_rss_mb() >= int(rss), "the peak (whole MB) is never below the resident size"
    assert fits_budget(100, 0, budget_mb=1000, rss_mb=lambda: 500)
    assert not fits_budget(100, 450, budget_mb=1000, rss_mb=lambda: 500)
    assert fits_budget(10**9, rss_mb=lambda: None), "where the resident size is unknown nothing is refused"


def test_server_limits_fall_back_to_their_defaults(monkeypatch):
    monkeypatch.setenv("NST_MAX_RUNS", "3")
    assert server_limit("NST_MAX_RUNS") == 3
    for bad in ("lots", "-1", "0"):
        monkeypatch.setenv("NST_MAX_RUN_S", bad)
        assert server_limit("NST_MAX_RUN_S") == 120
    monkeypatch.delenv("NST_MEMORY_MB", raising=False)
    assert server_limit("NST_MEMORY_MB") == 2200


def test_server_settings_are_read_in_one_place_and_only_known_ones(monkeypatch):
    monkeypatch.setenv("NST_RAY_ADDRESS", " 10.0.0.5:6379 \n")
    assert server_setting("NST_RAY_ADDRESS") == "10.0.0.5:6379"
    monkeypatch.delenv("NST_WEIGHTS_DIR", raising=False)
    assert server_setting("NST_WEIGHTS_DIR") == ""
    with pytest.raises(KeyError):
        server_setting("NST_NOT_A_SETTING")
    assert not set(SERVER_LIMITS) & set(SERVER_SETTINGS)


def test_the_allocator_is_trimmed_after_runs_at_most_every_few_seconds():
    from nst_core.serve import memory
    now = [1e6]
    assert memory.trim_after_run(clock=lambda: now[0])
    assert not memory.trim_after_run(clock=lambda: now[0]), "a class finishing one run trims once"
    now[0] += 6.0
    assert memory.trim_after_run(clock=lambda: now[0])
    assert memory.trim_after_run(force=True, clock=lambda: now[0])
