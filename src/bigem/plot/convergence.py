"""Convergence: mean log-likelihood per EM iteration, one line per restart."""

from __future__ import annotations

import os

import numpy as np

from .._core.errors import DataError
from ._common import check_path, new_figure, not_fitted, save


def plot_convergence(estimator, path: str | os.PathLike, title: str = "EM convergence") -> None:
    """Write a picture of ``estimator.history_``: one line per restart, the kept one bold.

    Each point is the mean log-likelihood of the parameters entering an iteration (the
    last one is ``lower_bound_``); the fitted model, after the last M-step, scores a
    little higher (``score``).

    A model loaded from a file written before histories were saved has only its best
    run (``lower_bounds_``); that one line is drawn. An HMM's line is its
    ``monitor_.history``: hmmlearn's totals over the data, not means per row.
    """
    path = check_path(path)
    runs = [np.asarray(r["log_likelihood"], dtype=np.float64) for r in getattr(estimator, "history_", [])]
    if not runs and getattr(estimator, "lower_bounds_", None):
        runs = [np.asarray(estimator.lower_bounds_, dtype=np.float64)]
    monitor = getattr(estimator, "monitor_", None)
    total = not runs and monitor is not None  # an HMM: hmmlearn's monitor holds totals over the sequences
    if total:
        runs = [np.asarray(list(monitor.history), dtype=np.float64)]
    runs = [r for r in runs if len(r)]
    if not runs:
        fitted = getattr(estimator, "__sklearn_is_fitted__", None)  # an HMM has its monitor_ from construction
        if (fitted is not None and not fitted()) or not any(
                hasattr(estimator, a) for a in ("history_", "lower_bounds_", "monitor_", "converged_")):
            raise not_fitted(estimator)
        raise DataError("the model has no iteration history to draw (it was not fitted by EM iterations)")
    best = int(np.argmax([r[-1] for r in runs]))
    fig, ax = new_figure()
    for i, r in enumerate(runs):
        its = np.arange(1, len(r) + 1)
        kept = i == best
        ax.plot(its, r, marker="o" if len(r) <= 40 else None, ms=3, lw=2.4 if kept else 1.2,
                alpha=1.0 if kept else 0.7, zorder=3 if kept else 2,
                label=f"restart {i}: {len(r)} iterations, final {r[-1]:.6g}" + (" (kept)" if kept else ""))
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("EM iteration")
    # each point is the parameters entering that iteration (lower_bound_ is the last): the
    # fitted model, after the last M-step, scores a little higher (bigem score, gm.score)
    ax.set_ylabel("log-likelihood of the data (monitor_.history), entering each iteration" if total else
                  "mean log-likelihood per row, entering each iteration")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    save(fig, path)
