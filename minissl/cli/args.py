"""The checks of command-line values: numbers in range, data set and method names, --method-arg.

Which methods `train` can build is read from the methods themselves (their ``inputs`` and
``for_setting``) and from the recipes; no method is known here by name.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from minissl.utils import did_you_mean


def at_least(low: float, cast: type = int, *, above: bool = False) -> Callable[[str], float]:
    """An argparse type: ``cast(text)``, a finite number at least ``low`` (above it with ``above``).

    Example:
        >>> at_least(1)("3"), at_least(0, float, above=True)("0.5")
        (3, 0.5)
        >>> at_least(0)("-1")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: expected a whole number >= 0, got '-1'
    """
    wanted = f"{'a whole number' if cast is int else 'a number'} {'>' if above else '>='} {low}"

    def check(text: str) -> float:
        try:
            value = cast(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and (value > low if above else value >= low)):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return check


def check_dataset(name: str) -> str:
    from minissl import data

    if name not in data.available():
        raise SystemExit(f"unknown data set {name!r}; choose one of {list(data.available())} "
                         "(see `python -m minissl info`)")
    return name


def image_methods() -> dict[str, bool]:
    """The methods `train` builds, each with whether a recipe builds it (else its for_setting).

    Every recipe's method, and every method that trains on images and builds itself from a
    :class:`minissl.methods.setting.Setting` alone.
    """
    from minissl import methods, recipes

    out = {recipes.get(n).method: True for n in recipes.available()}
    for name in set(methods.available()) - set(out):
        cls = getattr(methods, name)
        if cls.inputs == "images" and getattr(cls, "for_setting", None) is not None:
            out[name] = False
    return dict(sorted(out.items()))


def method_class(name: str):
    """The method class called ``name`` (any case; '_' and '-' ignored), if `train` builds it."""
    from minissl import methods

    key = name.replace("_", "").replace("-", "").lower()
    by_key = {n.lower(): n for n in methods.available()}
    if key not in by_key:
        raise SystemExit(f"unknown method {name!r}; choose one of {list(image_methods())} "
                         f"(any case; '_' and '-' are ignored)."
                         f"{did_you_mean(key, methods.available(), str.lower)}")
    cls = getattr(methods, by_key[key])
    if cls.inputs != "images":
        raise SystemExit(f"{cls.__name__} trains on {cls.inputs}, not images; use it from "
                         f"Python. `train` pretrains image methods: {list(image_methods())}")
    return cls


def parse_pair(text: str) -> tuple:
    """``KEY=VALUE`` of --method-arg; VALUE becomes an int, a float, True, False, None or text."""
    key, sep, value = (part.strip() for part in text.partition("="))
    if not sep or not key:
        raise SystemExit(f"--method-arg expects KEY=VALUE (e.g. temperature=0.2), got {text!r}")
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    return key, {"true": True, "false": False, "none": None}.get(value.lower(), value)


# Constructor arguments `train` fills in itself; they cannot be given as text.
BUILT_ARGS = ("encoder", "data", "augment", "in_channels", "image_size", "channels")


def method_args(cls, pairs: list[str]) -> dict:
    """``--method-arg KEY=VALUE`` pairs, checked against ``cls``'s constructor arguments."""
    import inspect

    params = {k: v for k, v in list(inspect.signature(cls.__init__).parameters.items())[1:]
              if k not in BUILT_ARGS and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)}
    listed = ", ".join(f"{k}={v.default!r}" if v.default is not v.empty else k
                       for k, v in params.items()) or "none"
    out = {}
    for text in pairs:
        key, value = parse_pair(text)
        if key not in params:
            raise SystemExit(f"--method-arg {text}: {cls.__name__} has no argument {key!r}."
                             f"{did_you_mean(key, params)} Its arguments (with defaults): {listed}")
        default = params[key].default
        want = type(default) if default is not params[key].empty and default is not None \
            else None
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if want is not None and not isinstance(value, want) or (
                want is int and isinstance(value, bool)):
            kind = {bool: "true or false", int: "a whole number", float: "a number",
                    str: "a word"}.get(want, want.__name__)
            raise SystemExit(f"--method-arg {text}: {cls.__name__}'s {key} takes {kind} "
                             f"(default {default!r}); got {value!r}")
        out[key] = value
    return out
