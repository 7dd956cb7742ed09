"""What a chapter needs beyond the package: computed numbers in its prose, and its claims.

The book's text never quotes a number typed in from another run. A chapter computes the
number, hands it to :func:`glue` under a name, and the text refers to the name with MyST's
``{glue:text}`name:.3f``` role, so the rendered page shows what the reader's own run gave.
When the book is built, :func:`glue` is myst-nb's; where myst-nb is missing (Colab, a plain
Jupyter install) it keeps the value in :data:`GLUED` and, if asked to, shows it.

A chapter states results it measured in the quick profile, on the book's default data, and
checks each with :func:`claim`: there it is an ``assert``. In another profile (the full one's
CIFAR-10, or budgets cut down for a smoke test) the threshold was never measured, so
:func:`claim` reports the outcome instead of failing the chapter.

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


def claim(condition: bool, message: object = "", *, profile: str = "quick") -> None:
    """Check a result whose threshold was measured in ``profile``; assert it there.

    In the profile the threshold was measured in (the quick profile's default data and
    budgets), a false ``condition`` raises ``AssertionError`` with ``message``, exactly like
    ``assert``. In any other profile it prints one line saying whether the result held, since
    a threshold measured on other data and budgets says nothing there.

    Args:
        condition: the claim, e.g. ``probe["SimCLR"] >= probe["random"] + 0.10``.
        message: shown when it fails (the values it was decided on).
        profile: the profile the threshold was measured in.

    It returns nothing, so that a cell ending in a claim shows no output of its own.

    Example:
        >>> claim(0.7 > 0.5, "SimCLR beats random")
        >>> claim(0.3 > 0.5, "SimCLR beats random")
        Traceback (most recent call last):
        ...
        AssertionError: SimCLR beats random
    """
    from minissl import profiles

    held = bool(condition)
    if profiles.current().name == profile:
        if not held:
            raise AssertionError(message)
    else:
        state = "holds" if held else "does not hold"
        print(f"claim measured in the {profile} profile {state} here: {message}")
