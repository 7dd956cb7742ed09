"""The latent explorer: sliders set code coordinates, the figure shows that code decoded."""

import base64

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from minissl import widgets  # noqa: E402
from minissl.methods import VAE  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def tiny_vae():
    torch.manual_seed(0)
    return VAE(in_channels=1, image_size=8, latent_dim=3, width=8, likelihood="gaussian")


def image_of(fig):
    return np.asarray(fig.axes[-1].images[0].get_array())  # the decoded-image panel


def expected(vae, z):
    vae.eval()
    with torch.no_grad():
        out = vae.decode(torch.tensor([z]))[0, 0].numpy()
    vae.train()
    return out


def test_sliders_set_the_code_and_the_image_is_its_decoding():
    vae = tiny_vae()
    ex = widgets.latent_explorer(vae, static=True, show=False)
    assert ex.values == {"z0": 0.0, "z1": 0.0, "z2": 0.0}  # the prior mean by default
    np.testing.assert_allclose(image_of(ex.render()), expected(vae, [0.0, 0.0, 0.0]), atol=1e-6)
    moved = image_of(ex.render(z1=2.5))
    np.testing.assert_allclose(moved, expected(vae, [0.0, 2.5, 0.0]), atol=1e-6)
    assert np.abs(moved - image_of(ex.render())).max() > 1e-3
    assert vae.training  # decoding in eval mode left the model as it was
    ex.set(z2=-1.0)  # set moves the explorer's state; render follows it
    np.testing.assert_allclose(image_of(ex.render()), expected(vae, [0.0, 0.0, -1.0]), atol=1e-6)


def test_base_code_and_chosen_dims():
    vae = tiny_vae()
    base = torch.tensor([[0.5, -4.0, 1.0]])  # (1, Z), as encoder(x[None]) gives
    ex = widgets.latent_explorer(vae, dims=[1], base=base, span=3.0, static=True, show=False)
    assert list(ex.values) == ["z1"] and ex.values["z1"] == -4.0
    assert ex.specs["z1"].lo == -4.0 and ex.specs["z1"].hi == 3.0  # widened to hold the base
    np.testing.assert_allclose(image_of(ex.render(z1=1.0)), expected(vae, [0.5, 1.0, 1.0]),
                               atol=1e-6)  # the coordinates without a slider keep the base


def test_map_panel_marks_the_current_code():
    vae = tiny_vae()
    pts, labels = torch.randn(30, 3), torch.arange(30) % 3
    ex = widgets.latent_explorer(vae, dims=[2, 0], points=pts, labels=labels, static=True,
                                 show=False)
    fig = ex.render(z2=1.5, z0=-0.5)
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    assert ax.get_xlabel() == "z2" and ax.get_ylabel() == "z0"
    star = ax.collections[-1].get_offsets()  # drawn last, over the points
    np.testing.assert_allclose(np.asarray(star), [[1.5, -0.5]])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]


def test_a_plain_callable_decoder_and_the_errors():
    def decode(z):  # the image is the sigmoid of the first coordinate everywhere
        return torch.sigmoid(z[:, :1, None, None]).expand(-1, 3, 5, 5)

    ex = widgets.latent_explorer(decode, latent_dim=2, static=True, show=False)
    np.testing.assert_allclose(image_of(ex.render(z0=0.0)), 0.5)  # RGB image of 0.5s
    with pytest.raises(ValueError, match="latent_dim"):
        widgets.latent_explorer(decode, show=False)
    with pytest.raises(ValueError, match=r"dims must be distinct coordinates in \[0, 2\)"):
        widgets.latent_explorer(decode, latent_dim=2, dims=[0, 2], show=False)
    with pytest.raises(ValueError, match=r"shape \(2,\); got \(3,\)"):
        widgets.latent_explorer(decode, latent_dim=2, base=[0.0, 1.0, 2.0], show=False)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        widgets.latent_explorer(decode, latent_dim=2, points=torch.zeros(4, 3), show=False)
    with pytest.raises(ValueError, match="two slider dims"):
        widgets.latent_explorer(decode, latent_dim=2, dims=[0], points=torch.zeros(4, 2),
                                show=False)
    with pytest.raises(TypeError, match="decode"):
        widgets.latent_explorer(42, latent_dim=2, show=False)


def test_static_figure_is_shown_and_the_live_sliders_redraw(monkeypatch, capsys):
    vae = tiny_vae()
    monkeypatch.setenv(widgets.ENV_VAR, "1")
    ex = widgets.latent_explorer(vae, static=False)  # the environment variable wins
    assert ex.static and ex.widget is None
    assert "Figure" in capsys.readouterr().out  # the default state was displayed
    assert not plt.get_fignums()
    monkeypatch.delenv(widgets.ENV_VAR)
    ex = widgets.latent_explorer(vae, show=False)
    if ex.widget is not None:  # ipywidgets is installed: a slider per coordinate redraws
        assert type(ex.controls["z0"]).__name__ == "FloatSlider"
        before = ex._image.value
        ex.set(z0=2.0)
        assert ex.values["z0"] == 2.0 and ex._image.value != before


def test_a_live_explorer_is_one_output_with_its_picture(monkeypatch):
    pytest.importorskip("ipywidgets")
    from IPython import display as ipd

    shown = []
    monkeypatch.setattr(ipd, "display", lambda obj, raw=False: shown.append((obj, raw)))
    monkeypatch.delenv(widgets.ENV_VAR, raising=False)
    ex = widgets.latent_explorer(tiny_vae(), static=False)
    assert ex.widget is not None and len(shown) == 1, shown
    bundle, raw = shown[0]
    assert raw and {"application/vnd.jupyter.widget-view+json", "image/png",
                    "text/plain"} <= set(bundle)
    png = base64.b64decode(bundle["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    assert not plt.get_fignums()
