"""Results tables: HTML in Jupyter, aligned markdown as text, runs shown as mean ± std."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from minissl.utils import to_numpy


class Table:
    """A small results table: HTML in Jupyter, aligned markdown text everywhere else.

    Build it with :func:`results_table`. ``columns`` holds the header, ``rows`` the raw cells.
    """

    def __init__(self, columns: list[str], rows: list[list[Any]], floatfmt: str = ".3f"):
        self.columns = columns
        self.rows = rows
        self.floatfmt = floatfmt

    def _cell(self, v: Any) -> str:
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = v.item()
        if v is None:
            return ""
        if isinstance(v, (bool, np.bool_)):
            return str(bool(v))
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        if isinstance(v, (float, np.floating)):
            return "" if math.isnan(v) else format(float(v), self.floatfmt)
        if isinstance(v, (list, tuple, np.ndarray, torch.Tensor)) and len(v) > 0:
            # Several runs of one number: report mean ± std, as the book does everywhere.
            a = to_numpy(v).astype(np.float64).reshape(-1)
            mean = format(a.mean(), self.floatfmt)
            return mean if len(a) == 1 else f"{mean} ± {format(a.std(ddof=1), self.floatfmt)}"
        return str(v)

    @staticmethod
    def _numeric(v: Any) -> bool:
        return isinstance(v, (int, float, np.number, list, tuple, np.ndarray, torch.Tensor)) \
            and not isinstance(v, bool)

    def _text_cells(self) -> list[list[str]]:
        return [[self._cell(v) for v in row] for row in self.rows]

    def _right(self) -> list[bool]:
        # A column is right-aligned when every filled cell in it is a number.
        return [all(self._numeric(r[j]) for r in self.rows if r[j] is not None) and
                any(r[j] is not None for r in self.rows) for j in range(len(self.columns))]

    def to_markdown(self) -> str:
        """The table as aligned GitHub-flavoured markdown."""
        cells = self._text_cells()
        right = self._right()
        widths = [max([len(c)] + [len(r[j]) for r in cells]) for j, c in enumerate(self.columns)]

        def line(items: list[str]) -> str:
            return "| " + " | ".join(s.rjust(w) if r else s.ljust(w)
                                     for s, w, r in zip(items, widths, right)) + " |"

        rule = "|" + "|".join("-" * (w + 1) + ":" if r else ":" + "-" * (w + 1)
                              for w, r in zip(widths, right)) + "|"
        return "\n".join([line(self.columns), rule] + [line(r) for r in cells])

    def _repr_html_(self) -> str:
        right = self._right()
        align = ["right" if r else "left" for r in right]
        head = "".join(f'<th style="text-align:{a}">{html.escape(c)}</th>'
                       for c, a in zip(self.columns, align))
        body = "".join(
            "<tr>" + "".join(f'<td style="text-align:{a}">{html.escape(s)}</td>'
                             for s, a in zip(r, align)) + "</tr>"
            for r in self._text_cells())
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        return self.to_markdown()

    __str__ = __repr__

    def __len__(self) -> int:
        return len(self.rows)


def results_table(
    rows: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    floatfmt: str = ".3f",
) -> Table:
    """A results table that shows as HTML in Jupyter and as aligned text when printed.

    Args:
        rows: a list of dicts (one per row; columns in order of first appearance), or a dict
            of dicts (row name -> row), or a dict name -> value. A list of numbers in a cell
            is shown as mean ± std of runs.
        floatfmt: format spec of floats.

    Example:
        >>> rows = [{"method": "SimCLR", "knn": 0.8123}, {"method": "BYOL", "knn": 0.84}]
        >>> print(results_table(rows))
        | method |   knn |
        |:-------|------:|
        | SimCLR | 0.812 |
        | BYOL   | 0.840 |
    """
    if isinstance(rows, Mapping):
        vals = list(rows.values())
        if vals and all(isinstance(v, Mapping) for v in vals):
            rows = [{"name": k, **v} for k, v in rows.items()]
        else:  # name -> value, or name -> runs (shown as mean ± std, like plot_bars)
            rows = [{"name": k, "value": v} for k, v in rows.items()]
    columns: list[str] = []
    for r in rows:
        columns += [str(k) for k in r if str(k) not in columns]
    table = [[{str(k): v for k, v in r.items()}.get(c) for c in columns] for r in rows]
    return Table(columns, table, floatfmt)
