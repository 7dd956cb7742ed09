"""minissl: self-supervised learning, from scratch, small enough to read.

The package behind the minissl book. Submodules are imported on use::

    import minissl.data, minissl.train
    profile = minissl.profiles.current()

Every public module is reachable as an attribute after a plain ``import minissl``
(``minissl.deploy``, ``minissl.cluster``, ``minissl.cli``, ...); ``minissl.__all__`` lists
them. A module is imported the first time it is used, so ``import minissl`` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil

__version__ = "0.1.0"

# Every module and package of minissl whose name does not start with "_"; read from the
# folder, so a new module is public without being listed here.
_SUBMODULES = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__)
                           if not m.name.startswith("_")))


def __getattr__(name: str):
    # Lazy submodules keep `import minissl` fast and let `minissl.data` work without
    # an explicit `import minissl.data`.
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name.startswith("_"):  # private names (inspect's __wrapped__, IPython's probes)
        raise AttributeError(f"module 'minissl' has no attribute {name!r}")
    from minissl.utils import did_you_mean  # only now: it imports torch

    raise AttributeError(f"module 'minissl' has no attribute {name!r}."
                         f"{did_you_mean(name, _SUBMODULES)} (modules: {', '.join(_SUBMODULES)})")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBMODULES})


__all__ = ["__version__", *_SUBMODULES]
