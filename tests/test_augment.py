"""Tests for minissl.augment: shapes, ranges, randomness, reproducibility and exact semantics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from minissl import augment as A


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(b: int = 6, c: int = 3, h: int = 16, w: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, c, h, w, generator=gen(seed))


# One instance of every random op with p = 1 (always applied) and strong parameters.
ALWAYS = {
    "crop": lambda: A.RandomResizedCrop(16),
    "flip": lambda: A.RandomHorizontalFlip(p=1.0),
    "jitter": lambda: A.ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0),
    "gray": lambda: A.RandomGrayscale(p=1.0),
    "blur": lambda: A.GaussianBlur(5, p=1.0),
    "solarize": lambda: A.Solarize(0.5, p=1.0),
    "simclr": lambda: A.SimCLRAugment(16),
    "simclr_blur": lambda: A.SimCLRAugment(16, blur=True),
    "mocov2": lambda: A.MoCoV2Augment(16, blur=True),
}


@pytest.mark.parametrize("name", sorted(ALWAYS))
def test_shape_dtype_range_kept(name):
    x = images()
    y = ALWAYS[name]()(x, generator=gen(1))
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    assert y.min() >= 0 and y.max() <= 1
    assert torch.equal(x, images())  # the input itself is never modified


@pytest.mark.parametrize("name", sorted(set(ALWAYS) - {"flip", "gray", "solarize"}))
def test_per_sample_randomness(name):
    x = images(b=1).expand(4, -1, -1, -1).contiguous()  # four copies of one image
    y = ALWAYS[name]()(x, generator=gen(2))
    assert not torch.allclose(y[0], y[1]) and not torch.allclose(y[2], y[3])


@pytest.mark.parametrize("name", sorted(ALWAYS))
def test_reproducible_with_generator(name):
    x = images()
    a = ALWAYS[name]()(x, generator=gen(5))
    b = ALWAYS[name]()(x, generator=gen(5))
    assert torch.equal(a, b)
    # ...and a generator given to the constructor(s) works the same way as forward's.
    op, g = ALWAYS[name](), gen(5)
    for m in op.modules():
        if hasattr(m, "generator"):
            m.generator = g
    assert torch.equal(op(x), a)


@pytest.mark.parametrize(
    "op",
    [
        A.RandomHorizontalFlip(p=0.0),
        A.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.0),
        A.RandomGrayscale(p=0.0),
        A.GaussianBlur(5, p=0.0),
        A.Solarize(0.5, p=0.0),
    ],
    ids=lambda op: type(op).__name__,
)
def test_p_zero_is_identity(op):
    x = images()
    assert torch.equal(op(x), x)


def test_partial_p_leaves_unchosen_samples_exact():
    x = images(b=32)
    y = A.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.5)(x, generator=gen(3))
    same = (y == x).flatten(1).all(dim=1)
    assert 0 < same.sum() < 32  # some untouched bit-for-bit, some jittered


def test_flip_is_exact_flip():
    x = images()
    assert torch.equal(A.RandomHorizontalFlip(p=1.0)(x), x.flip(-1))
    y = A.RandomHorizontalFlip(p=0.5)(x, generator=gen(4))
    for xi, yi in zip(x, y):  # each sample is either itself or its mirror image
        assert torch.equal(yi, xi) or torch.equal(yi, xi.flip(-1))


def test_grayscale_equal_channels_and_luma():
    x = images()
    y = A.RandomGrayscale(p=1.0)(x)
    assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 1], y[:, 2])
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    assert torch.allclose(y[:, 0], luma, atol=1e-6)


def test_solarize_threshold():
    x = torch.tensor([0.0, 0.3, 0.49, 0.5, 0.7, 1.0]).view(1, 1, 1, 6)
    y = A.Solarize(0.5, p=1.0)(x).flatten()
    expect = torch.tensor([0.0, 0.3, 0.49, 0.5, 0.3, 0.0])  # >= threshold -> 1 - v
    assert torch.allclose(y, expect)


def test_full_crop_is_resize():
    x = images(h=16, w=16)
    crop = A.RandomResizedCrop(16, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert torch.allclose(crop(x, generator=gen(0)), x, atol=1e-6)
    for size in (8, 24):
        y = A.RandomResizedCrop(size, scale=(1.0, 1.0), ratio=(1.0, 1.0))(x)
        ref = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        assert torch.allclose(y, ref, atol=1e-5)


def test_crop_output_size_and_fallback_box():
    crop = A.RandomResizedCrop((8, 12), scale=(0.5, 1.0))
    assert crop(images(h=16, w=32), generator=gen(0)).shape == (6, 3, 8, 12)
    # A ratio no box can meet on a square image falls back to the centred, clamped box.
    boxes = A.RandomResizedCrop(8, scale=(1.0, 1.0), ratio=(2.0, 2.0)).boxes(3, 16, 16, gen(0))
    assert torch.allclose(boxes, torch.tensor([[0.0, 4.0, 16.0, 8.0]] * 3))


def test_blur_preserves_constant_and_mean():
    x = torch.full((3, 3, 12, 12), 0.37)
    y = A.GaussianBlur(7, p=1.0)(x, generator=gen(0))
    assert torch.allclose(y, x, atol=1e-6)
    z = images()
    # Reflect padding keeps the mean only approximately; a blur must not move it much.
    assert torch.allclose(A.GaussianBlur(None, p=1.0)(z).mean(), z.mean(), atol=1e-2)


def test_blur_matches_fixed_sigma_reference():
    x = images(b=2)
    y = A.GaussianBlur(5, sigma=(1.5, 1.5), p=1.0)(x)
    t = torch.arange(5.0) - 2
    k = torch.exp(-0.5 * (t / 1.5) ** 2)
    k = (k / k.sum()).outer(k / k.sum()).expand(3, 1, 5, 5)
    ref = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k, groups=3)
    assert torch.allclose(y, ref, atol=1e-6)


def test_hue_zero_and_full_turn_are_identity():
    x = images(b=8)
    x[0, :, :4] = 0.5  # grey pixels
    x[1, 0] = x[1, 1]  # ties between channels
    assert torch.allclose(A.adjust_hue(x, torch.zeros(8)), x, atol=1e-6)
    assert torch.allclose(A.adjust_hue(x, torch.ones(8)), x, atol=1e-5)
    assert torch.allclose(A.adjust_hue(x, torch.full((8,), -1.0)), x, atol=1e-5)
    jitter = A.ColorJitter(hue=(0.0, 0.0), brightness=(1.0, 1.0), p=1.0)
    assert torch.equal(jitter(x), x)


def test_hue_matches_hsv_definition():
    # A third of a turn maps red -> green -> blue -> red; S and V are kept.
    prim = torch.eye(3).view(3, 3, 1, 1)
    out = A.adjust_hue(prim, torch.full((3,), 1 / 3))
    assert torch.allclose(out.flatten(1), prim.roll(1, dims=1).flatten(1), atol=1e-6)
    x = images(b=4)
    y = A.adjust_hue(x, torch.tensor([0.1, -0.2, 0.3, 0.45]))
    assert torch.allclose(y.amax(1), x.amax(1), atol=1e-6)
    assert torch.allclose(y.amin(1), x.amin(1), atol=1e-6)


def test_jitter_steps_match_formulas():
    x = images(b=4)
    bright = A.ColorJitter(brightness=(1.5, 1.5), p=1.0)(x)
    assert torch.allclose(bright, (x * 1.5).clamp(0, 1))
    gray = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    sat = A.ColorJitter(saturation=(0.0, 0.0), p=1.0)(x)
    assert torch.allclose(sat, gray.expand_as(x), atol=1e-6)
    con = A.ColorJitter(contrast=(0.0, 0.0), p=1.0)(x)
    assert torch.allclose(con, gray.mean(dim=(1, 2, 3), keepdim=True).expand_as(x), atol=1e-6)


def test_jitter_fixed_order_equals_sequential_steps():
    x = images(b=8)
    kw = dict(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, p=1.0)
    y = A.ColorJitter(**kw, random_order=False)(x, generator=gen(7))
    g = gen(7)
    torch.rand(8, generator=g)  # the p draw
    f = [torch.rand(8, generator=g) * (hi - lo) + lo
         for lo, hi in ((0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.1, 0.1))]
    z = (x * f[0].view(-1, 1, 1, 1)).clamp(0, 1)
    m = (0.299 * z[:, 0] + 0.587 * z[:, 1] + 0.114 * z[:, 2]).mean(dim=(1, 2)).view(-1, 1, 1, 1)
    z = (m + f[1].view(-1, 1, 1, 1) * (z - m)).clamp(0, 1)
    gz = (0.299 * z[:, 0] + 0.587 * z[:, 1] + 0.114 * z[:, 2]).unsqueeze(1)
    z = (gz + f[2].view(-1, 1, 1, 1) * (z - gz)).clamp(0, 1)
    z = A.adjust_hue(z, f[3])
    assert torch.allclose(y, z, atol=1e-5)


def test_one_channel_images():
    x = images(c=1)
    for name, make in ALWAYS.items():
        y = make()(x, generator=gen(0))
        assert y.shape == x.shape, name
        assert 0 <= y.min() and y.max() <= 1, name
    assert torch.equal(A.RandomGrayscale(p=1.0)(x), x)
    assert not torch.equal(A.ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0)(x, generator=gen(0)), x)


def test_multicrop_numbers_and_sizes():
    views = A.MultiCrop(16, 8, n_global=2, n_local=4)(images(h=20, w=20), generator=gen(0))
    assert len(views) == 6
    assert [tuple(v.shape) for v in views] == [(6, 3, 16, 16)] * 2 + [(6, 3, 8, 8)] * 4
    assert not torch.equal(views[0], views[1])


def test_two_views_and_byol():
    x = images()
    v1, v2 = A.TwoViews(A.SimCLRAugment(16))(x, generator=gen(0))
    assert v1.shape == v2.shape == x.shape and not torch.equal(v1, v2)
    byol = A.BYOLAugment(16, blur=True)
    v1, v2 = byol(x, generator=gen(0))
    assert v1.shape == v2.shape == x.shape
    blurs = [m.p for m in byol.aug1 if isinstance(m, A.GaussianBlur)]
    blurs += [m.p for m in byol.aug2 if isinstance(m, A.GaussianBlur)]
    solar = [m.p for m in byol.aug2 if isinstance(m, A.Solarize)]
    assert blurs == [1.0, 0.1] and solar == [0.2]
    assert not any(isinstance(m, A.Solarize) for m in byol.aug1)


def test_simclr_blur_only_for_large_images():
    def has_blur(aug):
        return any(isinstance(m, A.GaussianBlur) for m in aug)

    assert not has_blur(A.SimCLRAugment(32)) and has_blur(A.SimCLRAugment(96))
    assert has_blur(A.SimCLRAugment(32, blur=True))
    assert not has_blur(A.SimCLRAugment(96, blur=False))
    jitter = next(m for m in A.SimCLRAugment(32, s=0.5) if isinstance(m, A.ColorJitter))
    assert jitter.brightness == pytest.approx((0.6, 1.4))
    assert jitter.hue == pytest.approx((-0.1, 0.1))
    assert jitter.p == 0.8


def test_global_seed_reproducibility():
    x = images()
    torch.manual_seed(11)
    a = A.SimCLRAugment(16)(x)
    torch.manual_seed(11)
    assert torch.equal(A.SimCLRAugment(16)(x), a)


def test_no_autograd_graph():
    x = images().requires_grad_()
    y = A.SimCLRAugment(16)(x)
    assert not y.requires_grad


def test_bad_shape_message():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\); got \(3, 16, 16\)"):
        A.SimCLRAugment(16)(torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match=r"1 \(grey\) or 3 \(RGB\) channels"):
        A.ColorJitter(0.4, p=1.0)(torch.rand(2, 4, 8, 8))
    with pytest.raises(TypeError, match="floating point"):
        A.RandomHorizontalFlip()(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))


def test_bad_arguments():
    with pytest.raises(ValueError, match="p must be"):
        A.RandomGrayscale(p=1.5)
    with pytest.raises(ValueError, match="hue"):
        A.ColorJitter(hue=0.7)
    with pytest.raises(ValueError, match="odd"):
        A.GaussianBlur(4)


@pytest.mark.gpu  # tools/gpu_check.py runs it (pytest -m gpu)
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", sorted(ALWAYS))
def test_cuda_device_kept_and_matches_cpu_parameters(name):
    x = images()
    y = ALWAYS[name]()(x.cuda(), generator=gen(3))  # a CPU generator drives CUDA images
    assert y.device == x.cuda().device and y.dtype == x.dtype
    assert torch.allclose(y.cpu(), ALWAYS[name]()(x, generator=gen(3)), atol=1e-4)
