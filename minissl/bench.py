"""One benchmark of every image method: the same data, backbone and budget, one table.

:func:`run` pretrains each method of :mod:`minissl.recipes` (the pretext tasks, SimCLR, MoCo,
BYOL, SimSiam, DeepCluster, SwAV, the denoising autoencoder, the VAE and MAE) for the same
number of epochs at the same batch size, from the same initial backbone weights for a given
seed, and scores each frozen backbone twice: a kNN classifier that uses every training label
and a linear probe trained on 10 labels per class (:func:`minissl.evaluate.evaluate_encoder`).
An untrained backbone ("random init") is the row every method has to beat.

Every finished (method, seed) result is written at once to ``out_dir/runs/`` as a JSON file,
so a stopped benchmark started again with the same settings skips what is done. The summary
is written as ``results.csv``, ``results.md`` and ``results.png`` (mean and spread over seeds).
From the command line: ``python -m minissl bench --help``.

Example:
    >>> import tempfile
    >>> from minissl import profiles
    >>> _ = profiles.use("quick")
    >>> out = tempfile.mkdtemp()
    >>> tiny = dict(n_train=64, n_test=32, image_size=16, width=4, epochs=1, batch_size=32,
    ...             labels_per_class=2, out_dir=out, progress=False)
    >>> res = run(["rotationprediction"], **tiny)
    >>> [row["method"] for row in res.rows], res.trained
    (['random init', 'RotationPrediction'], [('random', 0), ('rotationprediction', 0)])
    >>> run(["rotationprediction"], **tiny).trained  # done already: nothing is trained again
    []
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from minissl import profiles, recipes

BASELINE = "random init"
# The families in the book's chapter order (pretext tasks, contrastive, self-distillation,
# clustering, autoencoding), each with its colour in the plot.
FAMILY_COLOURS = {
    "baseline": "#9e9e9e", "pretext task": "#4c72b0", "contrastive": "#dd8452",
    "self-distillation": "#55a868", "clustering": "#c44e52", "autoencoding": "#8172b3",
}


def _family_rank(name: str) -> int:
    family = recipes.RECIPES[name].family
    return list(FAMILY_COLOURS).index(family) if family in FAMILY_COLOURS else len(FAMILY_COLOURS)


# Table order: every recipe, by family in the order above, then in the order of RECIPES.
ORDER = tuple(sorted(recipes.RECIPES, key=_family_rank))
K_NEIGHBOURS = 20


@dataclass
class BenchResult:
    """What :func:`run` made: one summary row per method, and where the files are.

    Attributes:
        rows: the random baseline first, then one dict per method with ``method``,
            ``family``, ``backbone``, ``seeds``, ``knn_mean``, ``knn_std``, ``linear_mean``,
            ``linear_std``, ``train_seconds`` (mean over seeds), ``knn`` and ``linear`` (the
            per-seed scores).
        settings: the data, backbone and budget every method got.
        csv, markdown, plot: paths of ``results.csv``, ``results.md`` and ``results.png``.
        trained: ``(method, seed)`` pairs trained by this call.
        reused: ``(method, seed)`` pairs read back from an earlier, finished run.
    """

    rows: list[dict[str, Any]]
    settings: dict[str, Any]
    csv: Path
    markdown: Path
    plot: Path
    trained: list[tuple[str, int]] = field(default_factory=list)
    reused: list[tuple[str, int]] = field(default_factory=list)

    def table(self):
        """The summary as a ``minissl.report.Table`` (HTML in Jupyter, markdown as text)."""
        from minissl.report import results_table

        return results_table(_display_rows(self.rows))

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()

    def __str__(self) -> str:
        return self.markdown.read_text()


def method_names(methods: Sequence[str] | str | None = None) -> list[str]:
    """Recipe names (see :func:`minissl.recipes.available`) of the methods to benchmark.

    Args:
        methods: names in any case, ``_``/``-`` ignored, as a list or one comma-separated
            string; ``None`` or ``"all"``: every image method, in ``ORDER``.

    Raises:
        ValueError: an unknown name; the message lists the valid ones.

    Example:
        >>> method_names("SimCLR, rotation_prediction")
        ['simclr', 'rotationprediction']
        >>> len(method_names())
        13
    """
    if methods is None or methods == "all" or list(methods) == ["all"]:
        return list(ORDER)
    if isinstance(methods, str):
        methods = [methods]
    methods = [m for text in methods for m in text.split(",") if m.strip()]
    names: list[str] = []
    for m in methods:
        recipe = recipes.get(m.strip())  # raises, listing the valid names
        key = next(k for k, r in recipes.RECIPES.items() if r is recipe)
        if key not in names:
            names.append(key)
    if not names:
        raise ValueError(f"no methods given; choose from {list(ORDER)} or 'all'")
    return names


def _load_data(P: profiles.Profile, dataset: str | None, n_train: int | None,
               n_test: int | None, image_size: int | None, data_root: str | None,
               download: bool):
    from minissl import data

    name = dataset or P.image_dataset
    if name not in data.available():
        raise ValueError(f"unknown data set {name!r}; choose one of {list(data.available())}")
    own = name == P.image_dataset  # the profile's sizes belong to the profile's data set
    n_train = n_train if n_train is not None else (P.n_train if own else None)
    n_test = n_test if n_test is not None else (P.n_test if own else None)
    image_size = image_size or (P.image_size if own else None)  # and so is its image size
    kw: dict[str, Any] = {"size": image_size} if image_size else {}
    download = download or P.download
    train = data.load(name, "train", n=n_train, root=data_root, download=download,
                      seed=P.seed, **kw)
    test = data.load(name, "test", n=n_test, root=data_root, download=download, seed=P.seed,
                     **kw)
    return train, test


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _write_json(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)  # atomic: a stopped run never leaves half a result


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # missing or damaged: the run is simply made again


def run(
    methods: Sequence[str] | str | None = None,
    dataset: str | None = None,
    backbone: str | None = None,
    epochs: int | None = None,
    seeds: Sequence[int] = (0,),
    out_dir: str | os.PathLike = "bench-results",
    progress: bool = True,
    resume: bool = True,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    image_size: int | None = None,
    width: int | None = None,
    batch_size: int | None = None,
    labels_per_class: int | None = None,
    label_draws: int = 1,
    profile: profiles.Profile | None = None,
    data_root: str | None = None,
    download: bool = False,
) -> BenchResult:
    """Pretrain every method at an equal budget, score each backbone, write the table and plot.

    Args:
        methods: recipe names (see :func:`method_names`); default every image method.
        dataset: a name of :func:`minissl.data.available` (default: the profile's).
        backbone: ``convnet``, ``resnet18`` or ``vit_tiny`` (default: the profile's). MAE
            always trains the tiny ViT, which it needs for its patches.
        epochs: pretraining epochs of every method (default: the profile's ``ssl_epochs``).
        seeds: one run of every method per seed; several give a mean and a spread.
        out_dir: folder of the results; ``out_dir/runs/`` keeps one JSON per (method, seed).
        progress: a progress bar per training run, and a line per finished run.
        resume: reuse results in ``out_dir/runs/`` made with the same settings.
        n_train, n_test: images per split (default: the profile's for its data set, else
            the whole split).
        image_size: resize the images to this side (default: the profile's for its data set,
            else the data set's own).
        width: backbone width (default: the profile's).
        batch_size: pretraining batch size of every method (default: each recipe's,
            :func:`minissl.recipes.batch_size_of`: the profile's, or a share of it).
        labels_per_class: labelled images per class of the linear probe (default: 10, the
            profile's).
        label_draws: draws of the labelled images per run; the probe's score is their mean.
        profile: budgets; default :func:`minissl.profiles.current`.
        data_root, download: where the downloadable data sets are, and whether to fetch one.

    Returns:
        A :class:`BenchResult` with the rows and the paths of ``results.csv``,
        ``results.md`` and ``results.png``.
    """
    from minissl.evaluate import evaluate_encoder

    P = profile or profiles.current()
    names = method_names(methods)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty; give at least one seed, e.g. seeds=(0,)")
    arch = (backbone or P.backbone).lower()
    from minissl.nn import BACKBONES

    if arch not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {list(BACKBONES)}")
    train, test = _load_data(P, dataset, n_train, n_test, image_size, data_root, download)
    settings = {
        "dataset": train.name, "n_train": len(train), "n_test": len(test),
        "image_size": int(train.images.shape[-1]), "backbone": arch,
        "width": width or P.width, "epochs": P.ssl_epochs if epochs is None else epochs,
        "batch_size": batch_size or P.batch_size,
        # recipes that take another batch size than the profile's (recipes.batch_size_of)
        "batch_sizes": {} if batch_size else recipes.own_batch_sizes(names, P),
        "labels_per_class": labels_per_class or P.labels_per_class, "knn_k": K_NEIGHBOURS,
        "label_draws": int(label_draws),
    }
    counts = torch.bincount(train.labels[train.labels >= 0], minlength=train.num_classes)
    if int(counts.min()) < settings["labels_per_class"]:  # fail before any training, not after
        raise ValueError(
            f"the linear probe needs {settings['labels_per_class']} labelled images per class "
            f"but the {len(train)} training images have only {int(counts.min())} of some "
            "class; use more images (n_train) or fewer labels (labels_per_class)")
    out = Path(out_dir)
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    trained: list[tuple[str, int]] = []
    reused: list[tuple[str, int]] = []
    records: dict[str, list[dict[str, Any]]] = {}

    for name in ["random", *names]:
        records[name] = []
        for seed in seeds:
            path = runs_dir / f"{name}-seed{seed}.json"
            old = _read_json(path) if resume else None
            if old is not None and old.get("settings") == settings:
                records[name].append(old)
                reused.append((name, seed))
                continue
            if old is not None and progress:
                print(f"{path.name}: made with other settings; training again")
            if name == "random":  # the untrained backbone every method starts from
                start = time.perf_counter()
                torch.manual_seed(seed)
                encoder = recipes.make_encoder(train, backbone=arch, width=settings["width"],
                                               profile=P)
                seconds = time.perf_counter() - start
                record: dict[str, Any] = {"method": BASELINE, "family": "baseline",
                                          "steps": 0, "final_loss": None}
                record.update(evaluate_encoder(encoder, train, test, k=K_NEIGHBOURS, seed=seed,
                                               labels_per_class=settings["labels_per_class"],
                                               draws=settings["label_draws"]))
            else:
                recipe = recipes.get(name)
                method, history, scores = recipes.pretrain_and_score(
                    name, train, test, seed=seed, labels_per_class=settings["labels_per_class"],
                    k=K_NEIGHBOURS, draws=settings["label_draws"], profile=P,
                    epochs=settings["epochs"], backbone=arch, width=settings["width"],
                    batch_size=batch_size or recipes.batch_size_of(name, P),
                    fit_overrides={"progress": progress, "desc": f"{recipe.method} (seed {seed})"})
                seconds = scores.pop("seconds")
                encoder = recipes.backbone_of(method, name)
                record = {"method": recipe.method, "family": recipe.family,
                          "steps": history.steps[-1] if history.steps else 0,
                          "final_loss": history.last("loss") if len(history) else None,
                          **scores}
            record.update({
                "name": name, "seed": seed, "train_seconds": seconds,
                "backbone": "vit_tiny" if name != "random" and recipes.get(name).vit_only
                else arch,
                "parameters": sum(p.numel() for p in encoder.parameters()),
                "settings": settings,
            })
            _write_json(path, record)
            records[name].append(record)
            trained.append((name, seed))
            if progress:
                print(f"{record['method']} (seed {seed}): kNN {record['knn']:.3f}, linear probe "
                      f"{record['linear']:.3f}, {seconds:.1f} s", flush=True)

    rows = [_summary(recs) for recs in records.values()]
    files = {"csv": out / "results.csv", "markdown": out / "results.md",
             "plot": out / "results.png"}
    _write_csv(files["csv"], rows)
    _write_markdown(files["markdown"], rows, settings, seeds)
    fig = plot(rows, title=_title(settings, seeds))
    fig.savefig(files["plot"], dpi=110, bbox_inches="tight")
    return BenchResult(rows, settings, trained=trained, reused=reused, **files)


def _summary(recs: list[dict[str, Any]]) -> dict[str, Any]:
    knn = [r["knn"] for r in recs]
    linear = [r["linear"] for r in recs]
    (km, ks), (lm, ls) = _mean_std(knn), _mean_std(linear)
    return {
        "method": recs[0]["method"], "family": recs[0]["family"],
        "backbone": recs[0]["backbone"], "seeds": len(recs),
        "knn_mean": km, "knn_std": ks, "linear_mean": lm, "linear_std": ls,
        "train_seconds": sum(r["train_seconds"] for r in recs) / len(recs),
        "knn": knn, "linear": linear,
    }


def _display_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Lists of per-seed scores show as mean ± std in minissl.report tables.
    return [{"method": r["method"], "family": r["family"], "backbone": r["backbone"],
             "kNN": r["knn"], "linear (few labels)": r["linear"],
             "train s": r["train_seconds"]} for r in rows]


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = ["method", "family", "backbone", "seeds", "knn_mean", "knn_std", "linear_mean",
               "linear_std", "train_seconds", "knn_runs", "linear_runs"]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for r in rows:
            writer.writerow([r["method"], r["family"], r["backbone"], r["seeds"],
                             f"{r['knn_mean']:.4f}", f"{r['knn_std']:.4f}",
                             f"{r['linear_mean']:.4f}", f"{r['linear_std']:.4f}",
                             f"{r['train_seconds']:.1f}",
                             " ".join(f"{v:.4f}" for v in r["knn"]),
                             " ".join(f"{v:.4f}" for v in r["linear"])])


def _title(settings: dict[str, Any], seeds: Sequence[int]) -> str:
    s = settings
    own = "".join(f" ({m}: {b})" for m, b in s.get("batch_sizes", {}).items())
    return (f"{s['dataset']} ({s['n_train']} train / {s['n_test']} test images, "
            f"{s['image_size']}px), {s['backbone']}, {s['epochs']} epoch"
            f"{'s' * (s['epochs'] != 1)} of batch {s['batch_size']}{own}, {len(seeds)} "
            f"seed{'s' * (len(seeds) != 1)}")


def _write_markdown(path: Path, rows: list[dict[str, Any]], settings: dict[str, Any],
                    seeds: Sequence[int]) -> None:
    from minissl.report import results_table

    table = str(results_table(_display_rows(rows)))
    lines = [
        f"Every method: {_title(settings, seeds)}.",
        f"kNN: k={settings['knn_k']} on all training labels; linear: a probe trained on "
        f"{settings['labels_per_class']} labels per class. Accuracies on the test images"
        + (" (mean ± std over seeds)." if len(seeds) > 1 else "."),
        "",
        table,
        "",
    ]
    path.write_text("\n".join(lines))


def plot(rows: list[dict[str, Any]], title: str | None = None):
    """kNN and linear-probe accuracy of every method: bars of the mean, a dot per seed.

    Args:
        rows: ``BenchResult.rows`` (the random baseline is drawn as a dashed line too).
        title: the figure's title.

    Returns:
        A matplotlib ``Figure`` with two panels (kNN, linear probe).

    Example:
        >>> rows = [{"method": "random init", "family": "baseline", "knn": [0.3],
        ...          "linear": [0.2]},
        ...         {"method": "SimCLR", "family": "contrastive", "knn": [0.8, 0.7],
        ...          "linear": [0.6, 0.5]}]
        >>> [ax.get_title() for ax in plot(rows).axes]
        ['kNN (all labels)', 'linear probe (few labels)']
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    names = [r["method"] for r in rows]
    fig = Figure(figsize=(11, 0.42 * len(rows) + 1.6))
    axes = fig.subplots(1, 2, sharey=True)
    y = list(range(len(rows)))
    for ax, key, label in ((axes[0], "knn", "kNN (all labels)"),
                           (axes[1], "linear", "linear probe (few labels)")):
        stats = [_mean_std(r[key]) for r in rows]
        colours = [FAMILY_COLOURS.get(r["family"], "#333333") for r in rows]
        ax.barh(y, [m for m, _ in stats], xerr=[s for _, s in stats], color=colours,
                alpha=0.85, capsize=3)
        for i, r in enumerate(rows):
            ax.plot(r[key], [i] * len(r[key]), "k.", ms=4)
            right = max(stats[i][0] + stats[i][1], *r[key])  # past the error bar and dots
            ax.text(right + 0.015, i, f"{stats[i][0]:.3f}", va="center", fontsize=8)
        base = [r for r in rows if r["method"] == BASELINE]
        if base:
            ax.axvline(_mean_std(base[0][key])[0], color="#555555", ls="--", lw=1)
        ax.set(title=label, xlabel="test accuracy", xlim=(0, 1.12),
               xticks=[0, 0.2, 0.4, 0.6, 0.8, 1])
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, names)
    axes[0].invert_yaxis()
    families = list(dict.fromkeys(r["family"] for r in rows))
    fig.legend(handles=[Patch(color=FAMILY_COLOURS.get(f, "#333333"), label=f)
                        for f in families], loc="lower center", ncol=len(families),
               frameon=False, bbox_to_anchor=(0.5, -0.02))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig
