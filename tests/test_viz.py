"""Tests of minissl.viz and minissl.widgets: every plot returns a Figure with the right parts."""

import matplotlib

matplotlib.use("Agg")

import sys  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from minissl import viz, widgets  # noqa: E402
from minissl.viz.curves import _ema  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --------------------------------------------------------------------------- images


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("kind", ["torch", "numpy"])
def test_image_grid_channels_and_inputs(channels, kind):
    x = torch.rand(5, channels, 6, 6) * 1.5 - 0.2  # out of range on purpose: must be clipped
    x = x.numpy() if kind == "numpy" else x
    fig = viz.image_grid(x, nrow=3, titles=[f"c{i}" for i in range(5)], title="grid")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    img = ax.images[0].get_array()
    assert img.ndim == (2 if channels == 1 else 3)  # grayscale is drawn through a colour map
    if channels == 1:
        assert ax.images[0].get_cmap().name == "gray"
    assert 0.0 <= img.min() and img.max() <= 1.0
    assert [t.get_text() for t in ax.texts] == [f"c{i}" for i in range(5)]
    assert ax.get_title() == "grid"


def test_image_grid_into_given_axes_and_bad_shape():
    fig, axes = plt.subplots(1, 2)
    assert viz.image_grid(torch.rand(3, 8, 8), ax=axes[1]) is fig  # a single (C, H, W) image
    assert len(axes[1].images) == 1
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        viz.image_grid(torch.rand(2, 4, 8, 8))
    with pytest.raises(ValueError, match="titles"):
        viz.image_grid(torch.rand(2, 1, 8, 8), titles=["only one"])


def test_show_views_rows_and_sizes():
    x = torch.rand(4, 3, 8, 8)
    small = torch.rand(4, 3, 6, 6)  # crops of another size still fit the grid
    fig = viz.show_views(x, [x.flip(-1), small], names=["x", "flip", "crop"])
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["x", "flip", "crop"]
    h, w = fig.axes[0].images[0].get_array().shape[:2]
    assert (h, w) == (3 * 9 + 1, 4 * 9 + 1)
    with pytest.raises(ValueError, match="views"):
        viz.show_views(x, [x[:2]])


# --------------------------------------------------------------------------- history


class _FakeHistory:
    """What minissl.train.fit returns, as far as plot_history relies on it."""

    def __init__(self, records, steps=None):
        self.records = records
        if steps is not None:
            self.steps = steps

    def keys(self):
        return list(self.records)

    def __getitem__(self, key):
        return self.records[key]


def test_plot_history_dict_one_panel_per_metric():
    fig = viz.plot_history({"loss": [3.0, 2.0, 1.0], "acc": [0.1, 0.5, 0.7]})
    assert [a.get_title() for a in fig.axes] == ["loss", "acc"]
    x = fig.axes[0].lines[0].get_xdata()
    assert list(x) == [0, 1, 2]
    assert all(a.get_xlabel() and a.get_ylabel() for a in fig.axes)


def test_plot_history_object_with_and_without_steps():
    with_steps = _FakeHistory({"loss": [3.0, 2.0, 1.0]}, steps=[10, 20, 30])
    fig = viz.plot_history(with_steps)
    assert list(fig.axes[0].lines[0].get_xdata()) == [10, 20, 30]
    without = _FakeHistory({"loss": [3.0, 2.0, 1.0]})
    fig = viz.plot_history(without)
    assert list(fig.axes[0].lines[0].get_xdata()) == [0, 1, 2]


def test_plot_history_real_history_sparse_metric():
    train = pytest.importorskip("minissl.train")
    h = train.History()
    for step in range(4):
        h.log(step, {"loss": 1.0 / (step + 1)})
    h.log(3, {"knn": 0.5})  # logged once: plotted at its own step
    fig = viz.plot_history(h)
    knn_ax = [a for a in fig.axes if a.get_title() == "knn"][0]
    assert list(knn_ax.lines[0].get_xdata()) == [3]


def test_plot_history_keys_share_an_axis_and_smoothing():
    h = {"loss": list(np.linspace(2, 1, 30)), "val": list(np.linspace(2.2, 1.3, 30)),
         "lr": [1] * 30}
    fig = viz.plot_history(h, keys=["loss", "val"], smooth=0.8)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.lines) == 4  # raw (faint) + smoothed, per key
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["loss", "val"]
    with pytest.raises(KeyError, match="logged quantities"):
        viz.plot_history(h, keys=["nope"])


def test_ema_is_bias_corrected():
    out = _ema(np.array([5.0, 5.0, 5.0]), 0.9)
    assert np.allclose(out, 5.0)


# --------------------------------------------------------------------------- embeddings


def test_plot_embedding_pca_legend_and_names():
    f = torch.randn(40, 6)
    y = torch.arange(40) % 4
    fig = viz.plot_embedding_2d(f, y, class_names=["a", "b", "c", "d"], title="emb")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c", "d"]
    assert len(ax.collections) == 4
    assert ax.get_title() == "emb" and "PC 1" in ax.get_xlabel()


def test_plot_embedding_2d_features_drawn_directly_numpy():
    f = np.random.RandomState(0).randn(10, 2)
    fig = viz.plot_embedding_2d(f)
    ax = fig.axes[0]
    assert ax.get_legend() is None
    assert np.allclose(ax.collections[0].get_offsets(), f)


def test_plot_embedding_tsne_small_n(monkeypatch):
    manifold = pytest.importorskip("sklearn.manifold")
    seen = {}

    class FastTSNE:  # the real t-SNE takes seconds; here we check what plot_embedding_2d asks
        def __init__(self, **kw):
            seen.update(kw)

        def fit_transform(self, x):
            return x[:, :2]

    monkeypatch.setattr(manifold, "TSNE", FastTSNE)
    f = torch.randn(12, 5)
    fig = viz.plot_embedding_2d(f, np.array(["x", "y"] * 6), method="tsne", seed=3)
    assert len(fig.axes[0].get_legend().get_texts()) == 2
    assert seen["perplexity"] < 12 and seen["random_state"] == 3  # sklearn needs perplexity < N
    with pytest.raises(ValueError, match="pca"):
        viz.plot_embedding_2d(f, method="umap")


# --------------------------------------------------------------------------- bars and curves


def test_plot_bars_values_and_chance():
    fig = viz.plot_bars({"a": 0.2, "b": 0.9, "c": 0.5}, chance=0.1, sort=True, title="t")
    ax = fig.axes[0]
    assert len(ax.patches) == 3
    assert [t.get_text() for t in ax.get_xticklabels()] == ["b", "c", "a"]
    texts = [t.get_text() for t in ax.texts]
    assert texts[:3] == ["0.900", "0.500", "0.200"] and "chance" in texts[3]
    assert any(line.get_linestyle() == "--" for line in ax.lines)
    assert ax.get_ylabel() == "accuracy" and ax.get_title() == "t"


def test_plot_bars_error_bars_from_runs():
    fig = viz.plot_bars({"a": [0.5, 0.7], "b": torch.tensor([0.8, 0.8, 0.8])})
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert np.allclose(heights, [0.6, 0.8])
    assert any(type(c).__name__ == "ErrorbarContainer" for c in ax.containers)


def test_plot_curves_runs_band_and_logx():
    fig = viz.plot_curves([1, 10, 100], {"ssl": [[0.4, 0.6, 0.8], [0.5, 0.6, 0.9]],
                                         "sup": np.array([0.2, 0.5, 0.9])},
                          "labels", "accuracy", logx=True, title="curves")
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and len(ax.collections) == 1  # one band: only "ssl" has runs
    assert ax.get_xscale() == "log"
    assert np.allclose(ax.lines[0].get_ydata(), [0.45, 0.6, 0.85])
    with pytest.raises(ValueError, match="points"):
        viz.plot_curves([1, 2], {"bad": [1, 2, 3]}, "x", "y")


# --------------------------------------------------------------------------- heatmaps


def test_similarity_matrix_colourbar_and_diverging_map():
    z = torch.nn.functional.normalize(torch.randn(5, 3), dim=1)
    fig = viz.plot_similarity_matrix(z @ z.T, labels=list("abcde"), title="sim")
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    assert ax.images[0].get_cmap().name == "RdBu_r"
    assert [t.get_text() for t in ax.get_yticklabels()] == list("abcde")
    fig = viz.plot_similarity_matrix(np.eye(3))
    assert fig.axes[0].images[0].get_cmap().name == "viridis"
    with pytest.raises(ValueError, match=r"\(N, N\)"):
        viz.plot_similarity_matrix(np.ones((2, 3)))


def test_similarity_matrix_colourbar_has_no_offset_text():
    # All cosines within 1e-5 of 1, as for an untrained network: the colour bar must show
    # plain decimals, not an offset ("+9.9999e-1") with tiny differences under it.
    sim = 1 - 1e-5 * torch.rand(6, 6, generator=torch.Generator().manual_seed(0))
    fig = viz.plot_similarity_matrix(sim)
    fig.canvas.draw()
    bar = fig.axes[1].yaxis
    assert bar.get_offset_text().get_text() == ""
    labels = [t.get_text() for t in bar.get_ticklabels() if t.get_text()]
    assert labels and all("e" not in t.lower() for t in labels)
    assert all(0.99 < float(t.replace("\u2212", "-")) <= 1.0 for t in labels)
    plt.close(fig)


def test_confusion_matrix_normalised_cells():
    cm = torch.tensor([[3, 1], [0, 0]])  # an empty row must not produce NaN
    fig = viz.plot_confusion_matrix(cm, class_names=["cat", "dog"], normalize=True)
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["0.00", "0.00", "0.25", "0.75"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog"]
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    assert len(fig.axes) == 2


# --------------------------------------------------------------------------- diagrams

DIAGRAMS = {
    "contrastive_diagram": ["SimCLR", "MoCo", "NT-Xent", "projection", "shared weights",
                            "momentum", "queue", "EMA", "InfoNCE"],
    "self_distillation_diagram": ["BYOL", "SimSiam", "online", "target", "predictor",
                                  "stop-gradient", "EMA", "shared weights"],
    "swav_diagram": ["SwAV", "encoder", "prototype scores", "Sinkhorn", "predict $q_2$",
                     "predict $q_1$", "swapped"],
    "language_model_diagram": ["BERT", "GPT", "[MASK]", "bidirectional", "causal", "cat",
                               "mat", "attention mask"],
    "autoencoder_diagram": ["Denoising", "corrupt", "Variational", "mean", "sample", "ELBO",
                            "Masked", "visible patches", "masked"],
    "gan_diagram": ["GAN", "generator", "discriminator", "real", "fake", "BigGAN",
                    "class-conditional BN", "projection", "StyleGAN", "mapping",
                    "modulated convolutions"],
    "cpc_diagram": ["g_{\\mathrm{enc}}", "g_{\\mathrm{ar}}", "context $c_t$", "$z_{t+1}$",
                    "InfoNCE", "signal"],
}


@pytest.mark.parametrize("name", sorted(DIAGRAMS))
def test_diagram_draws_its_labels(name):
    fig = getattr(viz, name)()
    assert isinstance(fig, Figure)
    texts = " | ".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))
    missing = [word for word in DIAGRAMS[name] if word not in texts]
    assert not missing, f"{name} lacks {missing}; it draws: {texts}"
    assert all(not ax.axison for ax in fig.axes)  # a diagram, not a plot
    plt.close(fig)
    assert not plt.fignum_exists(fig.number)


# --------------------------------------------------------------------------- tables


def test_results_table_text_and_html():
    t = viz.results_table([{"method": "A<b>", "acc": 0.81234, "runs": [0.5, 0.7]},
                           {"method": "B", "acc": 0.9, "epochs": 10}])
    text = str(t)
    lines = text.splitlines()
    assert lines[0].split("|")[1].strip() == "method"
    assert len({len(line) for line in lines}) == 1  # aligned columns
    assert "0.812" in text and "0.600 ± 0.141" in text
    html = t._repr_html_()
    assert html.startswith("<table>") and "A&lt;b&gt;" in html and html.count("<tr>") == 3
    assert repr(t) == text


def test_results_table_from_dicts():
    t = viz.results_table({"SimCLR": 0.8, "BYOL": [0.8, 0.9]}, floatfmt=".2f")
    assert t.columns == ["name", "value"] and "0.85 ± 0.07" in str(t)
    t = viz.results_table({"SimCLR": {"knn": 0.8}, "BYOL": {"knn": 0.9, "linear": 0.95}})
    assert t.columns == ["name", "knn", "linear"] and len(t) == 2


# --------------------------------------------------------------------------- widgets


def _toy(a=1.0, n=2):
    return viz.plot_bars({f"x{i}": a for i in range(n)})


def test_slider_explorer_toy_render_and_set():
    ex = widgets.slider_explorer(_toy, a=(0.0, 2.0, 0.5, 1.0), n=(1, 5, 1, 2), show=False)
    assert len(ex.render().axes[0].patches) == 2
    assert len(ex.render(n=4).axes[0].patches) == 4
    assert ex.values == {"a": 1.0, "n": 2}  # render(...) does not move the sliders
    with pytest.raises(ValueError, match="valid"):
        ex.render(b=3)
    if ex.widget is not None:  # live: the slider is an IntSlider and moving it redraws
        before = ex._image.value
        assert type(ex.controls["n"]).__name__ == "IntSlider"
        ex.set(n=5)
        assert ex.values["n"] == 5 and ex._image.value != before
    with pytest.raises(ValueError, match="min < max"):
        widgets.slider_explorer(_toy, a=(1.0, 0.0), show=False)


def test_static_mode_env_var_and_missing_ipywidgets(monkeypatch, capsys):
    monkeypatch.setenv(widgets.ENV_VAR, "1")
    ex = widgets.slider_explorer(_toy, a=(0.0, 2.0), static=False)  # the env var wins
    assert ex.static and ex.widget is None
    assert "Figure" in capsys.readouterr().out  # the static figure was displayed
    monkeypatch.delenv(widgets.ENV_VAR)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails as if not installed
    ex = widgets.slider_explorer(_toy, a=(0.0, 2.0))
    assert ex.static and "ipywidgets" in ex.note
    assert "ipywidgets is not installed" in capsys.readouterr().out
    assert not plt.get_fignums()  # shown figures were handed back from pyplot


def test_augmentation_explorer_render_follows_sliders():
    x = torch.rand(2, 3, 12, 12)
    ex = widgets.augmentation_explorer(x, n_views=2, static=True, show=False)
    assert set(ex.values) == set(widgets.AUGMENTATION_SLIDERS)
    base = ex.render().axes[0].images[0].get_array()
    again = ex.render().axes[0].images[0].get_array()
    solar = ex.render(solarize_threshold=0.3).axes[0].images[0].get_array()
    other = ex.render(seed=5).axes[0].images[0].get_array()
    assert np.array_equal(base, again)  # same seed, same views
    assert not np.array_equal(base, solar)
    assert not np.array_equal(base, other)
    fig = ex.render(crop_min_scale=1.0, flip_p=0.0, brightness=0.0, contrast=0.0,
                    saturation=0.0, hue=0.0, grayscale_p=0.0)
    grid = fig.axes[0].images[0].get_array()
    assert np.allclose(grid[1:13, 1:13], grid[14:26, 1:13], atol=1e-5)  # no-op pipeline


def test_augmentation_explorer_gray_dataset_and_resample():
    class DS:
        images = torch.rand(3, 1, 10, 10)

    ex = widgets.augmentation_explorer(DS(), size=8, n_views=1, show=False)
    assert ex.render().axes[0].images[0].get_array().ndim == 2  # still grayscale
    if ex.widget is not None:
        before = ex._image.value
        ex.resample()
        assert ex.seed == 1 and ex._image.value != before
