"""minissl: self-supervised learning, from scratch, small enough to read.

The package behind the minissl book. Submodules are imported on use::

    import minissl.data, minissl.train
    profile = minissl.profiles.current()

Public modules: ``profiles``, ``data``, ``augment``, ``nn``, ``losses``, ``methods``,
``train``, ``evaluate``, ``recipes``, ``bench``, ``viz``, ``widgets``.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "profiles", "utils", "data", "augment", "nn", "losses", "methods",
    "train", "evaluate", "recipes", "bench", "viz", "widgets",
)


def __getattr__(name: str):
    # Lazy submodules keep `import minissl` fast and let `minissl.data` work without
    # an explicit `import minissl.data`.
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'minissl' has no attribute {name!r}")


__all__ = ["__version__", *_SUBMODULES]
