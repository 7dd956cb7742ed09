"""Masked autoencoder (He et al., 2022): hide most patches, predict their pixels from the rest."""

from __future__ import annotations

import torch
from torch import nn

from minissl.losses.autoencoding import masked_patch_mse
from minissl.methods.inputs import image_batch
from minissl.nn import TinyViT, TransformerEncoder, sincos_pos_embed
from minissl.utils import draw


def random_masking(B: int, L: int, ratio: float, generator: torch.Generator | None = None,
                   device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose, independently per sample, which ``round(ratio * L)`` of L patches to hide.

    He et al., "Masked Autoencoders Are Scalable Vision Learners", 2021, arXiv:2111.06377,
    Sec. 3: random sampling without replacement, uniform over patches (sort uniform noise).

    Args:
        B: batch size.
        L: patches per image.
        ratio: fraction hidden (at least one patch stays visible).
        generator: makes the choice reproducible.
        device: where to put the results.

    Returns:
        ``(keep_idx, mask)``: (B, K) long indices of the visible patches in increasing order,
        and (B, L) float, 1 where hidden.

    Example:
        >>> keep, mask = random_masking(2, 8, 0.75)
        >>> keep.shape, mask.sum(1).tolist()
        (torch.Size([2, 2]), [6.0, 6.0])
    """
    keep = max(1, L - round(ratio * L))
    noise = draw(torch.rand, (B, L), generator, device)  # (B, L)
    keep_idx = noise.argsort(dim=1)[:, :keep].sort(dim=1).values  # (B, K)
    mask = torch.ones(B, L, device=device).scatter(1, keep_idx, 0.0)  # (B, L)
    return keep_idx, mask


class MAEEncoder(nn.Module):
    """The MAE's ViT as a probe sees it: every patch, no mask, mean of the patch tokens.

    Averaging the patch tokens, rather than reading the CLS token that the MAE loss never
    touches directly, works about as well in the MAE paper (Appendix A.1) and needs no care.

    Example:
        >>> vit = TinyViT(image_size=8, patch_size=4, in_channels=1, dim=16, depth=1, heads=2)
        >>> MAEEncoder(vit)(torch.rand(2, 1, 8, 8)).shape
        torch.Size([2, 16])
    """

    def __init__(self, vit: TinyViT):
        super().__init__()
        self.vit, self.feature_dim = vit, vit.feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit.forward_tokens(x)[:, 1:].mean(dim=1)  # (B, D)


class MAE(nn.Module):
    """Masked autoencoder on a :class:`~minissl.nn.TinyViT`.

    He et al., "Masked Autoencoders Are Scalable Vision Learners", 2021, arXiv:2111.06377.
    A random 75% of the patches are dropped; the encoder sees only the visible ones (no mask
    tokens, so it is cheap); a light decoder gets the encoded visible tokens back in place,
    a shared learned mask token at every hidden position and its own position embeddings,
    and predicts every patch's pixels; the loss counts the hidden patches only.

    Args:
        image_size, patch_size, in_channels: the images and their patches.
        dim, depth, heads: the ViT encoder.
        decoder_dim, decoder_depth, decoder_heads: the (narrower, shallower) decoder.
        mask_ratio: fraction of the patches hidden (0.75 in the paper).
        norm_pix_loss: predict per-patch normalised pixels (the paper's better default).

    Example:
        >>> mae = MAE(image_size=8, patch_size=2, in_channels=1, dim=16, depth=1, heads=2,
        ...           decoder_dim=8, decoder_heads=2)
        >>> mae.training_step((torch.rand(4, 1, 8, 8), None))["loss"].shape
        torch.Size([])
        >>> mae.encoder(torch.rand(4, 1, 8, 8)).shape
        torch.Size([4, 16])
    """
    inputs = "images"  # what training_step is given (minissl.methods.inputs)

    @classmethod
    def for_setting(cls, encoder: TinyViT, setting, **kwargs) -> MAE:
        """Around a given ViT (see :mod:`minissl.methods.setting`): a one-block ViT of the
        same shape is built, then ``encoder`` takes its place (the decoder is MAE's own)."""
        method = cls(image_size=encoder.image_size, patch_size=encoder.patch_size,
                     in_channels=setting.channels, dim=encoder.dim, depth=1, heads=1, **kwargs)
        method.encoder = MAEEncoder(encoder)
        return method

    def __init__(self, image_size: int = 32, patch_size: int = 4, in_channels: int = 3,
                 dim: int = 128, depth: int = 4, heads: int = 4, decoder_dim: int = 64,
                 decoder_depth: int = 1, decoder_heads: int = 4, mask_ratio: float = 0.75,
                 norm_pix_loss: bool = True):
        super().__init__()
        vit = TinyViT(image_size, patch_size, in_channels, dim, depth, heads, pos_embed="sincos")
        self.encoder = MAEEncoder(vit)
        self.mask_ratio, self.norm_pix_loss = mask_ratio, norm_pix_loss
        self.decoder_embed = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        nn.init.normal_(self.mask_token, std=0.02)
        # Fixed sin-cos positions for the decoder too, as in the paper's code.
        self.register_buffer("decoder_pos", sincos_pos_embed(vit.grid_size, decoder_dim)[None])
        self.decoder = TransformerEncoder(decoder_dim, decoder_depth, decoder_heads)
        self.decoder_pred = nn.Linear(decoder_dim, vit.patch_dim)
        self.generator = None  # set a torch.Generator to make the masks reproducible

    @property
    def vit(self) -> TinyViT:
        return self.encoder.vit

    def forward(self, x: torch.Tensor, keep_idx: torch.Tensor) -> torch.Tensor:
        """Predict every patch (B, L, P*P*C) from the patches ``keep_idx`` (B, K) of ``x``."""
        B, L = x.shape[0], self.vit.num_patches
        latent = self.vit.forward_tokens(x, keep_idx)  # (B, 1 + K, D): visible patches only
        h = self.decoder_embed(latent)  # (B, 1 + K, Dd)
        # Put each visible token back at its position; every other position is a mask token.
        idx = keep_idx[..., None].expand(-1, -1, h.shape[-1])  # (B, K, Dd)
        # Under autocast h may be bf16/fp16 while the mask token is fp32; scatter needs one.
        mask = self.mask_token.to(h.dtype).expand(B, L, -1)
        tokens = mask.scatter(1, idx, h[:, 1:])  # (B, L, Dd)
        tokens = torch.cat([h[:, :1], tokens + self.decoder_pos], dim=1)  # (B, 1 + L, Dd)
        return self.decoder_pred(self.decoder(tokens)[:, 1:])  # (B, L, P*P*C)

    def training_step(self, batch) -> dict:
        x = image_batch(batch, self, self.vit.image_size)  # (B, C, H, W); labels ignored
        keep_idx, mask = random_masking(x.shape[0], self.vit.num_patches, self.mask_ratio,
                                        self.generator, x.device)  # (B, K), (B, L)
        pred = self(x, keep_idx)  # (B, L, P*P*C)
        target = self.vit.patchify(x)  # (B, L, P*P*C)
        return {"loss": masked_patch_mse(pred, target, mask, self.norm_pix_loss)}

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """Mask ``x``, predict it back, and return images to show side by side.

        Returns:
            ``(masked, reconstruction, mask)``: the input with hidden patches zeroed, the
            prediction with the visible patches pasted back (both (B, C, H, W) in [0, 1]),
            and the mask as an image (B, 1, H, W), 1 where hidden.
        """
        vit = self.vit
        keep_idx, mask = random_masking(x.shape[0], vit.num_patches, self.mask_ratio,
                                        generator, x.device)
        target = vit.patchify(x)  # (B, L, P*P*C)
        pred = self(x, keep_idx)
        if self.norm_pix_loss:  # undo the normalisation with each true patch's statistics
            std = (target.var(dim=-1, keepdim=True) + 1e-6).sqrt()
            pred = pred * std + target.mean(dim=-1, keepdim=True)
        m = mask[..., None]  # (B, L, 1)
        masked = vit.unpatchify(target * (1 - m))
        recon = vit.unpatchify(pred * m + target * (1 - m)).clamp(0, 1)
        mask_img = vit.unpatchify(m.expand_as(target))[:, :1]
        return masked, recon, mask_img
