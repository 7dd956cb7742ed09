"""Variational autoencoder (Kingma & Welling, 2014): a latent-variable model trained by the ELBO."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from minissl.losses.autoencoding import LIKELIHOODS, vae_elbo
from minissl.methods.dae import ConvDecoder
from minissl.methods.inputs import image_batch
from minissl.nn import ConvNet
from minissl.utils import draw


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``z = mu + exp(0.5 * logvar) * eps`` with ``eps ~ N(0, I)``.

    Kingma & Welling, "Auto-Encoding Variational Bayes", 2013, arXiv:1312.6114, Sec. 2.4:
    writing the sample as a function of the parameters and of parameter-free noise lets
    gradients flow into ``mu`` and ``logvar``.

    Args:
        mu: means (B, Z).
        logvar: log-variances (B, Z).
        generator: makes ``eps`` reproducible.

    Example:
        >>> reparameterize(torch.ones(2, 3), torch.full((2, 3), -100.0)).tolist()[0]
        [1.0, 1.0, 1.0]
    """
    eps = draw(torch.randn, mu.shape, generator, mu.device, dtype=mu.dtype)  # (B, Z)
    return mu + torch.exp(0.5 * logvar) * eps  # (B, Z)


class GaussianEncoder(nn.Module):
    """Images -> the mean and log-variance of q(z | x); calling it returns the mean only.

    A :class:`~minissl.nn.ConvNet` and one linear layer giving ``(mu, logvar)``. Calling the
    module gives ``mu`` (B, latent_dim), the features a probe evaluates.

    Example:
        >>> enc = GaussianEncoder(1, width=4, depth=2, latent_dim=2)
        >>> enc(torch.rand(3, 1, 8, 8)).shape, enc.feature_dim
        (torch.Size([3, 2]), 2)
    """

    def __init__(self, in_channels: int, width: int, depth: int, latent_dim: int):
        super().__init__()
        self.body = ConvNet(in_channels, width, depth)
        self.head = nn.Linear(self.body.feature_dim, 2 * latent_dim)
        self.feature_dim = latent_dim

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.body(x)).chunk(2, dim=1)  # (B, Z) each
        return mu, logvar

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.moments(x)[0]  # (B, Z)


class VAE(nn.Module):
    """Variational autoencoder with a convolutional Gaussian encoder and decoder.

    Kingma & Welling, "Auto-Encoding Variational Bayes", 2013, arXiv:1312.6114. The encoder
    gives q(z | x) = N(mu, diag(exp(logvar))), a sample z is drawn by the
    reparameterisation trick, the decoder gives p(x | z) (Bernoulli logits or the mean of a
    fixed-variance Gaussian) and the loss is the negative ELBO of
    :func:`minissl.losses.vae_elbo`: reconstruction + ``beta`` * KL to the N(0, I) prior.

    Args:
        in_channels: C of the images.
        image_size: side of the (square) images.
        latent_dim: Z (2 gives a latent space one can plot).
        width: width of the encoder's first stage and of the decoder's maps.
        depth: stride-2 stages of the encoder.
        likelihood: ``"bernoulli"`` (BCE on logits) or ``"gaussian"`` (MSE, fixed variance).
        beta: weight of the KL term (1 is the ELBO; 0 a plain autoencoder).
        sigma: standard deviation of the Gaussian likelihood.

    Example:
        >>> vae = VAE(in_channels=1, image_size=8, latent_dim=2, width=4)
        >>> sorted(vae.training_step((torch.rand(4, 1, 8, 8), None)))
        ['kl', 'loss', 'recon']
        >>> vae.sample(5).shape
        torch.Size([5, 1, 8, 8])
    """
    inputs = "images"  # what training_step is given (minissl.methods.inputs)

    @classmethod
    def for_setting(cls, encoder: nn.Module, setting, **kwargs) -> VAE:
        """Around a given backbone (see :mod:`minissl.methods.setting`): ``encoder`` becomes
        the body of the encoder, followed by a linear map to the code's moments."""
        channels, size = setting.channels, setting.image_size
        method = cls(in_channels=channels, image_size=size, width=setting.width, **kwargs)
        method.encoder.body = encoder
        method.encoder.head = nn.Linear(encoder.feature_dim, 2 * method.latent_dim)
        method.decoder = ConvDecoder(method.latent_dim, channels, size, setting.width)
        return method

    def __init__(self, in_channels: int = 3, image_size: int = 32, latent_dim: int = 16,
                 width: int = 32, depth: int = 3, likelihood: str = "bernoulli",
                 beta: float = 1.0, sigma: float = 0.1):
        super().__init__()
        self.image_size = image_size  # the one side it takes (its decoder's output)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {likelihood!r}; use one of {list(LIKELIHOODS)}")
        self.latent_dim, self.likelihood = latent_dim, likelihood
        self.beta, self.sigma = beta, sigma
        self.encoder = GaussianEncoder(in_channels, width, depth, latent_dim)
        self.decoder = ConvDecoder(latent_dim, in_channels, image_size, width)
        self.generator = None  # set a torch.Generator to make eps reproducible

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of p(x | z), images (B, C, H, W) in [0, 1], for codes z (B, Z)."""
        return torch.sigmoid(self.decoder(z))

    def training_step(self, batch) -> dict:
        x = image_batch(batch, self, self.image_size)  # (B, C, H, W); labels are ignored
        mu, logvar = self.encoder.moments(x)  # (B, Z) each
        z = reparameterize(mu, logvar, self.generator)  # (B, Z)
        logits = self.decoder(z)  # (B, C, H, W)
        # Bernoulli: BCE wants logits; Gaussian: the MSE is to the mean, kept in [0, 1].
        out = logits if self.likelihood == "bernoulli" else torch.sigmoid(logits)
        return vae_elbo(out, x, mu, logvar, self.beta, self.likelihood, self.sigma)

    @contextlib.contextmanager
    def _evaluating(self):
        # Batch norm must use its running statistics for one image or a few samples.
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was_training)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` codes drawn from the prior N(0, I): images (n, C, H, W)."""
        device = next(self.parameters()).device
        z = draw(torch.randn, (n, self.latent_dim), generator, device)  # (n, Z)
        with self._evaluating():
            return self.decode(z)

    def interpolate(self, x1: torch.Tensor, x2: torch.Tensor, steps: int = 8) -> torch.Tensor:
        """Decode ``steps`` points on the line between the means of two images' codes.

        Args:
            x1, x2: images (C, H, W).
            steps: points on the line, ends included.

        Returns:
            (steps, C, H, W), from (the reconstruction of) ``x1`` to ``x2``.
        """
        with self._evaluating():
            device = next(self.parameters()).device  # images may still be on the CPU
            mu = self.encoder(torch.stack([x1, x2]).to(device))  # (2, Z)
            t = torch.linspace(0, 1, steps, device=mu.device)[:, None]  # (steps, 1)
            return self.decode((1 - t) * mu[0] + t * mu[1])  # (steps, C, H, W)

    def traverse(self, x: torch.Tensor, dim: int, values) -> torch.Tensor:
        """Decode the code of ``x`` with latent ``dim`` set to each of ``values`` in turn.

        Args:
            x: one image (C, H, W).
            dim: the latent coordinate to move (0 <= dim < latent_dim).
            values: sequence or 1-D tensor of the values it takes.

        Returns:
            (len(values), C, H, W).
        """
        if not 0 <= dim < self.latent_dim:
            raise ValueError(f"dim must be in [0, {self.latent_dim}); got {dim}")
        with self._evaluating():
            mu = self.encoder(x[None].to(next(self.parameters()).device))  # (1, Z)
            v = torch.as_tensor(values, dtype=mu.dtype, device=mu.device)  # (V,)
            z = mu.repeat(len(v), 1)  # (V, Z)
            z[:, dim] = v
            return self.decode(z)  # (V, C, H, W)
