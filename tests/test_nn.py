"""Tests for minissl.nn: shapes, gradients, the causal mask, ViT patch handling, errors."""

import pytest
import torch

from minissl.nn import (
    ConvNet,
    MLPHead,
    ResNet18,
    TinyViT,
    TransformerBlock,
    TransformerEncoder,
    backbone,
)


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("shape", [(2, 1, 8, 8), (2, 3, 32, 32), (2, 3, 17, 13), (2, 3, 96, 96)])
def test_convnet_shapes(shape):
    torch.manual_seed(0)
    net = ConvNet(in_channels=shape[1], width=4)
    out = net(torch.rand(shape))
    assert out.shape == (2, net.feature_dim) == (2, 32)
    assert torch.isfinite(out).all()


def test_convnet_depth_and_width():
    assert ConvNet(width=32).feature_dim == 256
    assert ConvNet(width=8, depth=2).feature_dim == 16
    assert ConvNet(in_channels=1, width=8, depth=6)(torch.rand(2, 1, 8, 8)).shape == (2, 256)
    with pytest.raises(ValueError, match="depth"):
        ConvNet(depth=0)


@pytest.mark.parametrize("shape", [(2, 1, 8, 8), (2, 3, 32, 32), (2, 3, 12, 12)])
def test_resnet18_shapes(shape):
    net = ResNet18(in_channels=shape[1], width=4)
    assert net(torch.rand(shape)).shape == (2, net.feature_dim) == (2, 32)


def test_resnet18_param_count():
    # torchvision's resnet18 has 11.69M parameters of which 0.51M are the fc layer and
    # 9.4K the 7x7 stem; the CIFAR stem (3x3) gives 11.17M without fc.
    assert ResNet18(width=64).feature_dim == 512
    assert 11.0e6 < n_params(ResNet18(width=64)) < 11.3e6


def test_convnet_is_small():
    assert 0.3e6 < n_params(ConvNet(width=32)) < 0.5e6


@pytest.mark.parametrize("name", ["convnet", "resnet18", "vit_tiny"])
def test_gradients_reach_every_parameter(name):
    kw = {"width": 4} if name != "vit_tiny" else {"image_size": 8, "dim": 16, "depth": 1}
    net = backbone(name, in_channels=1, **kw)
    for m in net.modules():
        if hasattr(m, "bn2"):  # undo ResNet's zero-init residual BN, which blocks conv2's grad
            torch.nn.init.ones_(m.bn2.weight)
    net(torch.rand(3, 1, 8, 8)).square().mean().backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


def test_backbone_by_name_and_unknown_name():
    assert isinstance(backbone("ConvNet", 1, width=4), ConvNet)
    assert isinstance(backbone("resnet18", 3, width=4), ResNet18)
    vit = backbone("vit_tiny", 3, image_size=16, dim=32, depth=1)
    assert isinstance(vit, TinyViT) and vit.feature_dim == 32
    with pytest.raises(ValueError, match=r"unknown backbone 'vgg'.*convnet.*resnet18.*vit_tiny"):
        backbone("vgg")


def test_wrong_channels_and_dims_raise_clear_errors():
    net = ConvNet(in_channels=3, width=4)
    with pytest.raises(ValueError, match=r"built for 3 input channels.*\(2, 1, 8, 8\)"):
        net(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"must have shape \(B, C, H, W\); got \(1, 8, 8\)"):
        net(torch.rand(1, 8, 8))
    with pytest.raises(ValueError, match="built for 1 input channels"):
        ResNet18(in_channels=1, width=4)(torch.rand(2, 3, 8, 8))
    vit = TinyViT(image_size=8, patch_size=4, in_channels=1, dim=16, depth=1, heads=2)
    with pytest.raises(ValueError, match=r"built for 8x8 images.*\(2, 1, 16, 16\)"):
        vit(torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="divisible"):
        TinyViT(image_size=10, patch_size=4)


def test_mlp_head():
    head = MLPHead(8, 16, 4, num_layers=3, last_batch_norm=True)
    out = head(torch.rand(5, 8))
    assert out.shape == (5, 4)
    # the output BN has no affine parameters: every output column is standardised
    assert torch.allclose(out.mean(0), torch.zeros(4), atol=1e-5)
    assert isinstance(MLPHead(8, 16, 4, num_layers=1).net[0], torch.nn.Linear)
    assert len(MLPHead(8, 16, 4, batch_norm=False).net) == 3  # Linear, ReLU, Linear
    with pytest.raises(ValueError, match=r"\(B, 8\); got \(5, 7\)"):
        head(torch.rand(5, 7))


def test_causal_block_leaks_nothing_from_the_future():
    torch.manual_seed(0)
    enc = TransformerEncoder(dim=16, depth=2, heads=2, causal=True).eval()
    x = torch.randn(2, 7, 16)
    y = enc(x)
    for t in range(6):
        x2 = x.clone()
        x2[:, t + 1:] = torch.randn(2, 6 - t, 16)
        y2 = enc(x2)
        assert torch.allclose(y[:, : t + 1], y2[:, : t + 1], atol=1e-5)
        assert not torch.allclose(y[:, t + 1:], y2[:, t + 1:])


def test_non_causal_block_sees_the_future():
    torch.manual_seed(0)
    block = TransformerBlock(dim=8, heads=2, causal=False).eval()
    x = torch.randn(1, 4, 8)
    x2 = x.clone()
    x2[:, -1] = torch.randn(8)  # (adding a constant would be undone by LayerNorm)
    assert not torch.allclose(block(x)[:, 0], block(x2)[:, 0])


@pytest.mark.parametrize("causal", [False, True])
def test_key_padding_mask_hides_padded_tokens(causal):
    torch.manual_seed(0)
    enc = TransformerEncoder(dim=8, depth=2, heads=2, causal=causal).eval()
    x = torch.randn(2, 5, 8)
    pad = torch.tensor([[False, False, False, True, True]] * 2)
    x2 = x.clone()
    x2[:, 3:] = torch.randn(2, 2, 8)  # new content at the padded positions
    y, y2 = enc(x, key_padding_mask=pad), enc(x2, key_padding_mask=pad)
    assert torch.allclose(y[:, :3], y2[:, :3], atol=1e-5)
    # equal to running the unpadded prefix alone
    assert torch.allclose(y[:, :3], enc(x[:, :3]), atol=1e-5)
    # left padding under a causal mask leaves a padded query with no visible key: no NaN
    left = torch.tensor([[True, False, False, False, False]] * 2)
    assert torch.isfinite(enc(x, key_padding_mask=left)).all()
    with pytest.raises(ValueError, match="key_padding_mask"):
        enc(x, key_padding_mask=pad[:, :4])


def test_transformer_shape_errors():
    with pytest.raises(ValueError, match="divisible"):
        TransformerBlock(dim=10, heads=3)
    with pytest.raises(ValueError, match=r"\(B, T, 8\); got \(2, 5, 6\)"):
        TransformerEncoder(dim=8, depth=1, heads=2)(torch.rand(2, 5, 6))


@pytest.mark.parametrize("pos_embed", ["learned", "sincos"])
def test_vit_shapes_and_patchify_round_trip(pos_embed):
    vit = TinyViT(image_size=16, patch_size=4, in_channels=3, dim=32, depth=1, heads=4,
                  pos_embed=pos_embed)
    x = torch.rand(2, 3, 16, 16)
    p = vit.patchify(x)
    assert p.shape == (2, 16, 48)
    assert torch.equal(vit.unpatchify(p), x)
    # patch 1 is the top row's second patch, flattened as (row, col, channel)
    assert torch.equal(p[0, 1], x[0, :, 0:4, 4:8].permute(1, 2, 0).reshape(-1))
    assert vit(x).shape == (2, 32)
    assert vit.forward_tokens(x).shape == (2, 17, 32)
    # patch tokens and images give the same encoding (linear map == strided conv)
    assert torch.allclose(vit.forward_tokens(p), vit.forward_tokens(x), atol=1e-5)
    assert n_params(vit) > 0
    assert ("pos_embed" in dict(vit.named_parameters())) == (pos_embed == "learned")


def test_vit_keep_idx_equals_encoding_only_the_kept_patches():
    torch.manual_seed(0)
    vit = TinyViT(image_size=8, patch_size=2, in_channels=1, dim=16, depth=2, heads=2).eval()
    x = torch.rand(2, 1, 8, 8)
    keep = torch.stack([torch.randperm(16)[:5] for _ in range(2)])  # (B, K)
    out = vit.forward_tokens(x, keep_idx=keep)
    assert out.shape == (2, 6, 16)
    # reference: embed the kept patches by hand, each with its own position
    p = vit.patchify(x)
    w = vit.patch_embed.weight.permute(0, 2, 3, 1).reshape(16, -1)
    ref_tokens = torch.stack([
        p[b, keep[b]] @ w.T + vit.patch_embed.bias + vit.pos_embed[0, keep[b]] for b in range(2)
    ])
    cls = vit.cls_token.expand(2, -1, -1)
    ref = vit.encoder(torch.cat([cls, ref_tokens], 1))
    assert torch.allclose(out, ref, atol=1e-5)
    # the hidden patches have no influence
    hidden = torch.ones(2, 16, dtype=torch.bool)
    hidden[torch.arange(2)[:, None], keep] = False
    p2 = p.clone()
    p2[hidden] = torch.rand(int(hidden.sum()), p.shape[-1])
    assert torch.allclose(vit.forward_tokens(p2, keep_idx=keep), out, atol=1e-5)


def test_vit_default_size():
    vit = TinyViT()  # 32x32 RGB, 4x4 patches, dim 128, depth 4
    assert vit.num_patches == 64 and vit.feature_dim == 128
    assert 0.4e6 < n_params(vit) < 0.7e6
