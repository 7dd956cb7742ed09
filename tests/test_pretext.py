"""Pretext tasks: the pseudo-labels are right, and each method trains."""

import pytest
import torch
from torch import nn

from minissl.methods.pretext import (
    NEIGHBOUR_OFFSETS,
    Inpainting,
    Jigsaw,
    RelativePosition,
    RotationPrediction,
    jigsaw_batch,
    jigsaw_permutations,
    mask_patches,
    relative_position_batch,
    rotate_batch,
    unshuffle_tiles,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def tiny_encoder(dim=16):
    # Small enough to keep every test well under a second, deep enough to learn a little.
    enc = nn.Sequential(
        nn.Conv2d(3, dim, 3, padding=1), nn.ReLU(), nn.Conv2d(dim, dim, 3, stride=2, padding=1),
        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )
    enc.feature_dim = dim  # what a method reads to size its head
    return enc


# ----------------------------------------------------------------------------- pseudo-labels

def test_rotating_back_by_the_label_recovers_the_image():
    x = torch.rand(3, 3, 8, 8, generator=gen())
    x_rot, y = rotate_batch(x)
    assert x_rot.shape == (12, 3, 8, 8) and y.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    for img, k, src in zip(x_rot, y, x.repeat(4, 1, 1, 1)):
        assert torch.equal(torch.rot90(img, -int(k), dims=(1, 2)), src)
    # The four copies really differ (a random image has no rotational symmetry).
    assert not torch.equal(x_rot[0], x_rot[3])


def test_rotate_batch_rejects_non_square_images():
    with pytest.raises(ValueError, match="square"):
        rotate_batch(torch.rand(1, 3, 8, 6))


def test_permutations_are_fixed_distinct_and_far_apart():
    P = jigsaw_permutations(3, 20, seed=0)
    assert P.shape == (20, 9) and P[0].tolist() == list(range(9))
    assert torch.equal(P, jigsaw_permutations(3, 20, seed=0))  # a fixed set
    assert len({tuple(p) for p in P.tolist()}) == 20
    dist = (P[:, None, :] != P[None, :, :]).sum(-1) + 9 * torch.eye(20, dtype=torch.long)
    # Greedy max-min selection: far more spread out than random permutations (mean ~8,
    # but the minimum over 190 random pairs is usually 3-5).
    assert int(dist.min()) >= 7
    with pytest.raises(ValueError, match="n_permutations"):
        jigsaw_permutations(2, 25)


@pytest.mark.parametrize("grid,size", [(2, 8), (3, 32)])
def test_unpermuting_the_tiles_by_the_label_recovers_the_image(grid, size):
    x = torch.rand(5, 3, size, size, generator=gen())
    P = jigsaw_permutations(grid, 6)
    xs, y = jigsaw_batch(x, grid, P, gen(1))
    assert xs.shape == x.shape and ((0 <= y) & (y < 6)).all()
    assert torch.equal(unshuffle_tiles(xs, y, P), x)
    t = size // grid
    assert torch.equal(xs[..., grid * t:, :], x[..., grid * t:, :])  # leftover pixels untouched
    # Position i holds tile P[label, i], checked directly on the tiles.
    tiles, y2 = jigsaw_batch(x, grid, P, gen(1), return_tiles=True)
    assert torch.equal(y, y2) and tiles.shape == (5, grid * grid, 3, t, t)
    b, i = 2, 1
    src = int(P[y[b], i])
    r, c = divmod(src, grid)
    assert torch.equal(tiles[b, i], x[b, :, r * t:(r + 1) * t, c * t:(c + 1) * t])


def test_jigsaw_border_blanks_tile_edges_only():
    x = torch.rand(2, 3, 8, 8, generator=gen())
    xs, _ = jigsaw_batch(x, 2, jigsaw_permutations(2, 4), gen(), border=1, fill=0.5)
    edge = torch.ones(8, 8, dtype=torch.bool)
    for lo in (1, 5):
        edge[lo:lo + 2, 1:3] = edge[lo:lo + 2, 5:7] = False
    assert (xs[..., edge] == 0.5).all()
    assert not (xs[..., ~edge] == 0.5).any()


def test_masks_cover_the_stated_fraction():
    x = torch.rand(4, 3, 16, 16, generator=gen())
    for ratio in (0.25, 0.5, 0.75):
        xm, m = mask_patches(x, patch=4, ratio=ratio, generator=gen())
        assert m.shape == (4, 1, 16, 16)
        assert torch.allclose(m.mean(dim=(1, 2, 3)), torch.full((4,), ratio))  # every image
        assert torch.equal(xm * (1 - m), x * (1 - m))  # visible pixels untouched
        assert (xm[m.expand_as(xm) == 1] == 0.5).all()
    _, m = mask_patches(x, central=True)
    assert m.mean() == 0.25 and m[0, 0, 8, 8] == 1 and m[0, 0, 0, 0] == 0
    # Different images get different masks; the same generator seed gives the same ones.
    _, m1 = mask_patches(x, 4, 0.5, generator=gen(3))
    _, m2 = mask_patches(x, 4, 0.5, generator=gen(3))
    assert torch.equal(m1, m2) and not torch.equal(m1[0], m1[1])


def test_inpainting_loss_ignores_visible_pixels():
    x = torch.rand(2, 3, 8, 8, generator=gen())
    _, m = mask_patches(x, patch=4, ratio=0.5, generator=gen())
    pred = torch.rand(2, 3, 8, 8, generator=gen(1))
    loss = Inpainting.masked_mse(pred, x, m)
    wild = pred + 5.0 * (1 - m)  # change only the visible pixels
    assert torch.allclose(Inpainting.masked_mse(wild, x, m), loss)
    ref = ((pred - x) ** 2)[m.expand_as(x) == 1].mean()
    assert torch.allclose(loss, ref)


def test_relative_position_patches_come_from_the_right_offset():
    x = torch.rand(6, 3, 32, 32, generator=gen())
    (c, n), y = relative_position_batch(x, grid=3, gap=2, jitter=0, generator=gen(2))
    cell, p, margin = 10, 8, 1  # 32 // 3 = 10; patches 10 - 2; grid centred: (32 - 30) // 2
    assert c.shape == n.shape == (6, 3, p, p)
    for b in range(6):
        r0 = c0 = margin + cell + 1  # the centre cell's patch, shrunk by gap // 2
        assert torch.equal(c[b], x[b, :, r0:r0 + p, c0:c0 + p])
        dr, dc = NEIGHBOUR_OFFSETS[int(y[b])]
        r, cc = r0 + dr * cell, c0 + dc * cell
        assert torch.equal(n[b], x[b, :, r:r + p, cc:cc + p])
    assert len(set(y.tolist())) > 1


def test_relative_position_jitter_stays_within_bounds():
    x = torch.arange(32.0)[None, None, :, None].expand(4, 3, 32, 32)  # pixel value = its row
    (c, n), y = relative_position_batch(x, jitter=1, generator=gen(5))
    top_c = c[:, 0, 0, 0]
    top_n = n[:, 0, 0, 0]
    dr = torch.tensor([NEIGHBOUR_OFFSETS[int(k)][0] for k in y])
    assert ((top_c - 12).abs() <= 1).all()
    assert ((top_n - (12 + 10 * dr)).abs() <= 1).all()
    with pytest.raises(ValueError, match="jitter"):
        relative_position_batch(x, gap=2, jitter=2)


# ----------------------------------------------------------------------------- methods

def methods(size=16):
    def rot():
        e = tiny_encoder()
        return RotationPrediction(e, hidden_dim=32), e

    def jig():
        e = tiny_encoder()
        return Jigsaw(e, grid=2, n_permutations=6, hidden_dim=32), e

    def jig_siamese():
        e = tiny_encoder()
        return Jigsaw(e, grid=2, n_permutations=6, hidden_dim=32, siamese=True), e

    def inp():
        e = tiny_encoder()
        return Inpainting(e, image_size=size, patch=4, ratio=0.5, width=8), e

    def rel():
        e = tiny_encoder()
        return RelativePosition(e, gap=2, jitter=0, hidden_dim=32), e

    return {"rotation": rot, "jigsaw": jig, "jigsaw_siamese": jig_siamese,
            "inpainting": inp, "relative_position": rel}


@pytest.mark.parametrize("name", list(methods()))
def test_forward_backward_reaches_the_encoder(name):
    torch.manual_seed(0)
    model, enc = methods()[name]()
    out = model.training_step((torch.rand(4, 3, 16, 16, generator=gen()), torch.zeros(4)))
    assert out["loss"].dim() == 0 and torch.isfinite(out["loss"])
    if "acc" in out:
        assert 0.0 <= float(out["acc"]) <= 1.0
    out["loss"].backward()
    grads = [p.grad for p in enc.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    assert model.encoder is enc


@pytest.mark.parametrize("name", list(methods()))
def test_loss_goes_down_on_a_fixed_batch(name):
    torch.manual_seed(0)
    size = 16 if name == "relative_position" else 8  # 3x3 cells of patches need room
    model, _ = methods(size)[name]()
    x = torch.rand(4, 3, size, size, generator=gen())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        model.generator = gen(0)  # the same pseudo-labels every step: a fixed problem
        loss = model.training_step((x, None))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.9 * losses[0], losses


def test_generators_make_pseudo_labels_reproducible():
    x = torch.rand(4, 3, 32, 32, generator=gen())
    a = relative_position_batch(x, generator=gen(7))
    b = relative_position_batch(x, generator=gen(7))
    assert torch.equal(a[1], b[1]) and torch.equal(a[0][1], b[0][1])
    j1, j2 = jigsaw_batch(x, 2, generator=gen(7)), jigsaw_batch(x, 2, generator=gen(7))
    assert torch.equal(j1[0], j2[0])
