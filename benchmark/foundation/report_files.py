"""The suite's one way of writing report files: Markdown tables and figures.

Every table of a leaderboard, tuning or study summary is formatted by :func:`markdown_table`, and every figure is
drawn on matplotlib's non-interactive backend (:func:`pyplot`) and written by :func:`save_figure`: atomically (via
:func:`unlearnbench.foundation.cache.atomic_path`, so a crash never leaves a half-written PNG) and closed
afterwards (a long run draws many figures).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from unlearnbench.foundation.cache import atomic_path


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table: the header row, a ``|---|`` rule, one line per row (cells as ``str``).

    No trailing newline; with no rows, only the header and the rule.
    """
    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(str, cells)) + " |" for cells in rows]
    return "\n".join(lines)


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (figures are only ever written to files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, **savefig_options: Any) -> Path:
    """Write the matplotlib figure ``fig`` to ``path`` atomically (the format follows the suffix unless
    ``savefig_options`` name one), then close it; returns the path.

    A figure made by :mod:`matplotlib.pyplot` is closed there (pyplot keeps every open figure alive); a bare
    :class:`matplotlib.figure.Figure` is not registered anywhere and needs no closing.
    """
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, **savefig_options)
    finally:
        plt = sys.modules.get("matplotlib.pyplot")  # loaded iff the figure can be one of pyplot's
        if plt is not None:
            plt.close(fig)
    return path
