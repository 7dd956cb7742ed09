"""The benchmark: every image method at one budget, a table, a plot, and runs that resume."""

import csv
import json

import pytest

from minissl import bench, profiles, recipes

# A tiny budget: 64 shapes of 16x16, a width-4 ConvNet, one epoch of two steps.
TINY = dict(dataset="shapes", n_train=64, n_test=32, image_size=16, width=4, batch_size=32,
            epochs=1, labels_per_class=2, progress=False)


@pytest.fixture(autouse=True)
def quick():
    profiles.use("quick")


@pytest.fixture(scope="module")
def everything(tmp_path_factory):
    profiles.use("quick")
    out = tmp_path_factory.mktemp("bench")
    return out, bench.run(out_dir=out, **TINY)


def test_every_image_method_appears_once_after_the_random_baseline(everything):
    _, res = everything
    methods = [row["method"] for row in res.rows]
    assert methods[0] == bench.BASELINE
    assert methods[1:] == [recipes.get(name).method for name in bench.ORDER]
    assert sorted(bench.ORDER) == recipes.available()  # no recipe left out of the table
    for row in res.rows:
        assert row["seeds"] == 1 and len(row["knn"]) == len(row["linear"]) == 1
        assert 0 <= row["knn_mean"] <= 1 and 0 <= row["linear_mean"] <= 1
        assert row["knn_std"] == row["linear_std"] == 0.0
        expected = "vit_tiny" if row["method"] == "MAE" else "convnet"  # MAE needs patches
        assert row["backbone"] == expected, row
    assert res.settings["epochs"] == 1 and res.settings["n_train"] == 64


def test_table_files_hold_every_method(everything):
    out, res = everything
    assert (res.csv, res.markdown, res.plot) == (out / "results.csv", out / "results.md",
                                                 out / "results.png")
    with open(res.csv) as f:
        table = list(csv.DictReader(f))
    assert len(table) == 1 + len(bench.ORDER)  # shape: the baseline plus one row per method
    assert list(table[0]) == ["method", "family", "backbone", "seeds", "knn_mean", "knn_std",
                              "linear_mean", "linear_std", "train_seconds", "knn_runs",
                              "linear_runs"]
    assert [r["method"] for r in table] == [r["method"] for r in res.rows]
    md = res.markdown.read_text()
    assert all(f"| {r['method']} " in md for r in res.rows)
    assert "64 train / 32 test images" in md and "2 labels per class" in md
    assert res.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and res.plot.stat().st_size > 10_000
    assert "kNN" in res.table().columns


def test_a_rerun_resumes_and_trains_only_what_is_missing(everything):
    out, first = everything
    runs = sorted((out / "runs").glob("*.json"))
    assert len(runs) == 1 + len(bench.ORDER) and len(first.trained) == len(runs)
    stamps = {p: p.stat().st_mtime_ns for p in runs}
    again = bench.run(out_dir=out, **TINY)
    assert again.trained == [] and len(again.reused) == len(runs)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # nothing rewritten
    assert [r["knn"] for r in again.rows] == [r["knn"] for r in first.rows]
    # A run stopped before SimCLR finished: only SimCLR is trained again.
    (out / "runs" / "simclr-seed0.json").unlink()
    resumed = bench.run(out_dir=out, **TINY)
    assert resumed.trained == [("simclr", 0)]


def test_other_settings_or_no_resume_train_again(tmp_path):
    one = ["rotation_prediction"]
    bench.run(one, out_dir=tmp_path, **TINY)
    longer = bench.run(one, out_dir=tmp_path, **{**TINY, "epochs": 2})
    assert set(longer.trained) == {("random", 0), ("rotationprediction", 0)}
    record = json.loads((tmp_path / "runs" / "rotationprediction-seed0.json").read_text())
    assert record["settings"]["epochs"] == 2 and record["steps"] == 4
    fresh = bench.run(one, out_dir=tmp_path, resume=False, **{**TINY, "epochs": 2})
    assert len(fresh.trained) == 2


def test_label_draws_average_the_probe_and_count_as_a_setting(tmp_path):
    one = ["rotation_prediction"]
    single = bench.run(one, out_dir=tmp_path / "a", **TINY)
    three = bench.run(one, out_dir=tmp_path / "b", label_draws=3, **TINY)
    for name in ("random", "rotationprediction"):
        rec1 = json.loads((tmp_path / "a" / "runs" / f"{name}-seed0.json").read_text())
        rec3 = json.loads((tmp_path / "b" / "runs" / f"{name}-seed0.json").read_text())
        assert rec3["settings"]["label_draws"] == 3 and len(rec3["linear_per_draw"]) == 3
        assert rec3["linear"] == pytest.approx(sum(rec3["linear_per_draw"]) / 3)
        assert rec3["linear_per_draw"][0] == rec1["linear"]  # draw 0 is the single draw
    assert [r["method"] for r in three.rows] == [r["method"] for r in single.rows]
    again = bench.run(one, out_dir=tmp_path / "a", label_draws=3, **TINY)
    assert len(again.trained) == 2  # made with one draw: not reused for three


def test_several_seeds_give_a_mean_and_a_spread(tmp_path):
    res = bench.run("relative_position, denoising-ae", seeds=(0, 1), out_dir=tmp_path, **TINY)
    assert [r["method"] for r in res.rows] == [bench.BASELINE, "RelativePosition", "DenoisingAE"]
    for row in res.rows:
        assert row["seeds"] == 2 and len(row["knn"]) == 2
        mean = sum(row["linear"]) / 2
        assert row["linear_mean"] == pytest.approx(mean)
        assert row["linear_std"] == pytest.approx(abs(row["linear"][0] - mean) * 2 ** 0.5)
    assert "±" in res.markdown.read_text()
    assert len(list((tmp_path / "runs").glob("*.json"))) == 6


def test_wrong_names_and_budgets_fail_before_training(tmp_path):
    with pytest.raises(ValueError, match=r"'simclrr'.*Did you mean 'simclr'.*Recipes exist for"):
        bench.run(["simclrr"], out_dir=tmp_path, **TINY)
    with pytest.raises(ValueError, match=r"unknown data set 'shape'; choose one of \["):
        bench.run(["simclr"], out_dir=tmp_path, **{**TINY, "dataset": "shape"})
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        bench.run(["simclr"], backbone="vgg", out_dir=tmp_path, **TINY)
    with pytest.raises(ValueError, match="needs 10 labelled images per class"):
        bench.run(["simclr"], out_dir=tmp_path, **{**TINY, "labels_per_class": 10})
    assert not list((tmp_path / "runs").glob("*.json"))  # nothing was trained


def test_method_names_accept_lists_commas_and_all():
    assert bench.method_names(["SimCLR,byol", "MAE"]) == ["simclr", "byol", "mae"]
    assert bench.method_names("all") == list(bench.ORDER) == bench.method_names(None)
    assert bench.method_names(["simclr", "SimCLR"]) == ["simclr"]
