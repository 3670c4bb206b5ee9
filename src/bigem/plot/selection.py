"""Model selection: BIC (or AIC, ICL) against K, one line per covariance type, the choice marked."""

from __future__ import annotations

import os

from .._core.errors import ParameterError
from ._common import check_path, new_figure, save

VARIATIONAL = "BayesianGaussianMixture"  # the model of select(..., variational=True)'s rows


def plot_selection(result, path: str | os.PathLike, criterion: str | None = None, title: str | None = None) -> None:
    """Write the criterion of every candidate of a :class:`bigem.SelectionResult` (lower is
    better), one line per covariance type; degenerate candidates are crossed out, the
    chosen one is ringed, and a variational row (``select(..., variational=True)``) is a
    dashed line at the number of components it uses."""
    from ..estimators.selection import CRITERIA

    path = check_path(path)
    criterion = criterion or result.criterion
    if criterion not in CRITERIA:
        raise ParameterError(f"criterion must be one of {list(CRITERIA)}; got {criterion!r}")
    fig, ax = new_figure()
    types = list(dict.fromkeys(r["covariance_type"] for r in result.table))
    degenerate_shown = False
    for i, ct in enumerate(types):
        rows = sorted((r for r in result.table if r["covariance_type"] == ct and r["model"] != VARIATIONAL),
                      key=lambda r: r["n_components"])
        ks, vals = [r["n_components"] for r in rows], [r[criterion] for r in rows]
        ax.plot(ks, vals, marker="o", color=f"C{i}", linestyle="-" if i < 10 else "--", label=ct)  # 14: mclust's
        bad = [(r["n_components"], r[criterion]) for r in rows if r["degenerate"]]
        if bad:
            ax.scatter(*zip(*bad), marker="x", s=90, color="black", zorder=4,
                       label=None if degenerate_shown else "degenerate (excluded)" if result.dropped else "degenerate")
            degenerate_shown = True
    for r in result.table:  # a variational fit's answer: the components it uses, a line at that K
        if r["model"] == VARIATIONAL:
            ax.axvline(r["n_components"], ls="--", lw=1.5, color=f"C{types.index(r['covariance_type'])}",
                       label=f"variational ({r['covariance_type']}) uses {r['n_components']}")
    best = result.table[result.best_index_]
    ax.scatter([best["n_components"]], [best[criterion]], s=320, facecolors="none", edgecolors="red", lw=2.5, zorder=5,
               label=f"chosen by {result.criterion.upper()}: K={best['n_components']}"
               + (f", {best['covariance_type']}" if best["covariance_type"] else ""))
    ax.set_xlabel("number of components K")
    ax.set_ylabel(f"{criterion.upper()} (lower is better)")
    ax.set_xticks(sorted({r["n_components"] for r in result.table}))
    ax.set_title(title or f"Model selection: {criterion.upper()} against K")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="best")
    save(fig, path)
