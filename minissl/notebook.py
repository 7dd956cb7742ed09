"""Putting numbers a chapter computes into its prose: one ``glue`` that works everywhere.

The book's text never quotes a number typed in from another run. A chapter computes the
number, hands it to :func:`glue` under a name, and the text refers to the name with MyST's
``{glue:text}`name:.3f``` role, so the rendered page shows what the reader's own run gave.
When the book is built, :func:`glue` is myst-nb's; where myst-nb is missing (Colab, a plain
Jupyter install) it keeps the value in :data:`GLUED` and, if asked to, shows it.

Example:
    >>> glue("example_accuracy", 0.8125)
    >>> GLUED["example_accuracy"]
    0.8125
"""

from __future__ import annotations

from typing import Any

#: Every value glued in this session, by name (what the prose's glue roles refer to).
GLUED: dict[str, Any] = {}


def glue(name: str, value: Any, display: bool = False) -> None:
    """Store ``value`` under ``name`` for the prose; show it too when ``display`` is true.

    Args:
        name: the name the text's ``{glue:text}`` role uses; letters, digits and ``_``.
        value: a number (or anything with a readable ``repr``).
        display: also show the value as this cell's output.
    """
    if not name.replace("_", "").isalnum():
        raise ValueError(f"glue name {name!r} must be letters, digits and '_' only")
    GLUED[name] = value
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            print(f"{name} = {value!r}")
        return
    try:
        myst_glue(name, value, display=display)
    except Exception:  # no IPython kernel (a plain script): the value is kept all the same  # noqa: BLE001
        if display:
            print(f"{name} = {value!r}")
