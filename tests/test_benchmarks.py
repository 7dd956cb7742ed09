"""Smoke runs of benchmarks/bench_steps.py: it runs and prints its table; no speed is asserted."""

import importlib.util
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_steps.py"


@pytest.fixture(scope="module")
def bench_steps():
    spec = importlib.util.spec_from_file_location("bench_steps", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check(results, methods, sides, parts):
    assert list(results) == methods
    speed_up = ["speed-up"] if len(sides) == 2 else []
    for rates in results.values():
        assert set(rates) == {(s, p) for s in sides + speed_up for p in parts}
        assert all(math.isfinite(r) and r > 0 for r in rates.values())


def test_minissl_side_runs_quick_and_prints_a_table(bench_steps, capsys):
    results = bench_steps.main(["--quick", "--sides", "minissl", "--threads", "0"])
    _check(results, ["simclr", "byol"], ["minissl"], bench_steps.PARTS)
    out = capsys.readouterr().out
    assert "minissl img/s" in out and "lightly" not in out
    for method in ("simclr", "byol"):
        for part in bench_steps.PARTS:
            assert f"{method:<8}{part}" in out


def test_lightly_side_runs_quick_against_ours(bench_steps, capsys):
    pytest.importorskip("lightly")
    results = bench_steps.main(["--quick", "--methods", "simclr,byol", "--threads", "0"])
    _check(results, ["simclr", "byol"], ["minissl", "lightly"], bench_steps.PARTS)
    assert "speed-up" in capsys.readouterr().out


def test_unknown_names_are_refused_with_the_valid_ones(bench_steps, capsys):
    with pytest.raises(SystemExit):
        bench_steps.main(["--quick", "--methods", "swav"])
    assert "['simclr', 'byol']" in capsys.readouterr().err


def test_bf16_runs_under_autocast_on_both_sides(bench_steps, capsys, monkeypatch):
    # The minissl side's end-to-end step goes through fit with precision="bf16", and its
    # model step through the same autocast context as lightly's: a bf16 matmul must happen.
    import torch

    seen = []
    real = torch.autocast

    def spy(*args, **kwargs):
        ctx = real(*args, **kwargs)
        seen.append(kwargs.get("dtype") if kwargs.get("enabled", True) else None)
        return ctx

    monkeypatch.setattr(torch, "autocast", spy)
    results = bench_steps.main(["--quick", "--sides", "minissl", "--methods", "simclr",
                                "--precision", "bf16", "--threads", "0"])
    _check(results, ["simclr"], ["minissl"], bench_steps.PARTS)
    assert torch.bfloat16 in seen
    assert "bf16 autocast" in capsys.readouterr().out


def test_convnet_workload_at_two_thread_counts_ends_with_the_speed_up(bench_steps, capsys):
    pytest.importorskip("lightly")
    results = bench_steps.main(["--backbone", "convnet", "--quick", "--methods", "simclr",
                                "--threads", "1,2"])
    assert list(results) == ["simclr, 1 thread", "simclr, 2 threads"]
    _check(results, list(results), ["minissl", "lightly"], bench_steps.PARTS)
    out = capsys.readouterr().out
    assert "the quick profile's ConvNet" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("end-to-end speed-up: ") and last.endswith("x")
    float(last.split(": ")[1][:-1])
