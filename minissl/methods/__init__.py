"""Self-supervised (and baseline) methods, one file per method.

Each method is an ``nn.Module`` with ``training_step(batch) -> {"loss": ...}`` and an
``encoder`` attribute; :func:`minissl.train.fit` trains any of them. Names are imported on
first use, so ``from minissl.methods import RotationPrediction`` loads only that file.
"""

from __future__ import annotations

import importlib

from minissl.utils import did_you_mean

# public name -> module (under minissl.methods) that defines it
_REGISTRY = {
    "RotationPrediction": "pretext",
    "Jigsaw": "pretext",
    "Inpainting": "pretext",
    "RelativePosition": "pretext",
    "Supervised": "supervised",
    "PseudoLabel": "supervised",
    "BYOL": "byol",
    "SimSiam": "simsiam",
    "SimCLR": "simclr",
    "MoCo": "moco",
    "SwAV": "swav",
    "DeepCluster": "deepcluster",
    "DenoisingAE": "dae",
    "VAE": "vae",
    "MAE": "mae",
    "BERT": "bert",
    "GPT": "gpt",
    "CPC": "cpc",
    "TimeContrastive": "tcl",
    "GAN": "gan",
}


def __getattr__(name: str):
    if name in _REGISTRY:
        return getattr(importlib.import_module(f"{__name__}.{_REGISTRY[name]}"), name)
    raise AttributeError(f"minissl.methods has no method {name!r}.{did_you_mean(name, _REGISTRY)} "
                         f"Available: {sorted(_REGISTRY)}")


def available() -> list[str]:
    """The names of every method in the package."""
    return sorted(_REGISTRY)


__all__ = [*sorted(_REGISTRY), "available"]
