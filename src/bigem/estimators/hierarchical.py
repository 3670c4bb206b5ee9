"""mclust's hierarchical start, as an object: ``bigem.hc(X)`` builds one tree that every
K (and every covariance model) starts from, as mclust's ``hcPairs`` does.

The tree is built on the rows themselves when there are at most ``max_rows`` of them
(mclust's default subset is 2000), else on a uniform sample of that many (in proportion
to sample weights, when there are some): model-based agglomeration is quadratic in the
rows, so on big data it runs on the sample and EM then runs on everything, as mclust's
``initialization = list(subset = ...)`` does. One feature gets mclust's quantile classes
instead of a tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .._core.errors import DataError, ParameterError
from ..em.init import from_labels, sample_rows
from ..models.hierarchical import HC_MODELS, HC_USES, Tree, agglomerate, quantile_classes, standardise, svd_transform
from ..sources import TensorSource
from . import _params

MAX_ROWS = 2000  # mclust.options("subset")
ROWS_LIMIT = 20_000  # the merge-cost matrix holds ROWS_LIMIT^2 doubles (3.2 GB)


@dataclass
class HCTree:
    """A model-based hierarchical clustering of (a sample of) the rows of some data.

    Attributes
    ----------
    model : {'VVV', 'EII'}
        The merge criterion.
    use : {'SVD', 'VARS', 'STD'}
        The rows' transformation before merging (mclust's ``hcUse``).
    n_rows : int
        Rows of the data the tree was built for.
    sample : ndarray of shape (n_sample, n_features) or None
        The rows merged, in the data's coordinates, when they are a sample; None when
        the tree covers every row (then it starts EM on that data only).
    tree : models.hierarchical.Tree or None
        The merges (None for one feature: quantile classes instead).
    """

    model: str
    use: str
    n_rows: int
    sample: np.ndarray | None
    tree: Tree | None
    _values: np.ndarray | None = field(default=None, repr=False)  # one feature: the values classified
    # what a model file keeps as init_params: the method, not the rows (a refit builds the tree again)
    saved_as = "hc"

    def __repr__(self) -> str:
        # short, as get_params and error messages show it: the merges are n_rows - 1 pairs
        sample = None if self.sample is None else f"<{self.sample.shape[0]} rows>"
        merges = "quantile classes" if self.tree is None else f"<{self.tree.pairs.shape[0]} merges>"
        return f"HCTree(model={self.model!r}, use={self.use!r}, n_rows={self.n_rows}, sample={sample}, tree={merges})"

    @property
    def n_merged(self) -> int:
        """How many rows the tree classifies."""
        return self.tree.n if self.tree is not None else int(self._values.shape[0])

    def labels(self, k: int) -> np.ndarray:
        """Classes 0..k-1 of the rows merged (mclust's ``hclass``; ``qclass`` for one feature)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ParameterError(f"labels(k) takes the number of classes, an int; got {k!r}")
        if not 1 <= k <= self.n_merged:
            raise ParameterError(
                f"the hierarchical start holds {self.n_merged} rows and cannot give {k} classes; raise max_rows "
                f"of bigem.hc (now {self.n_merged}) or lower n_components"
            )
        if self.tree is None:
            return quantile_classes(self._values, k)
        return self.tree.cut(k)

    def initial_parameters(self, model, engine, source, k: int, offset: torch.Tensor | None, device,
                           strict: bool = False):
        """Mixture parameters from one M-step on the k classes: over every row of ``source``
        when the tree covers them all, else over the sample (EM then runs on everything).
        ``strict``: a class that cannot give its component is an error (see :func:`from_labels`)."""
        labels = torch.from_numpy(self.labels(k))
        if self.sample is None:
            if source.n_rows != self.n_rows:
                raise DataError(
                    f"the hierarchical start was built for {self.n_rows} rows but X has {source.n_rows}; build it "
                    "from this X (bigem.hc(X)) or pass init_params='hc'"
                )
            return from_labels(model, engine, source, labels, strict)
        rows = torch.as_tensor(self.sample, dtype=torch.float64)
        if rows.shape[1] != source.n_features:
            raise DataError(f"the hierarchical start has {rows.shape[1]} features but X has {source.n_features}")
        if offset is not None:
            rows = rows - offset.double().cpu()
        dtype = getattr(model, "dtype", torch.float64)
        sample = TensorSource(rows.to(device=device, dtype=dtype), None, rows.shape[0])
        from ..engines import LocalEngine

        return from_labels(model, LocalEngine(), sample, labels, strict)


def build(source, model: str = "VVV", use: str = "SVD", max_rows: int = MAX_ROWS, generator=None,
          engine=None, offset: torch.Tensor | None = None) -> HCTree:
    """The tree of a source's rows (all of them, or a sample of ``max_rows``)."""
    check(model, use, max_rows)
    n = source.n_rows
    everything = n <= max_rows and not source.weighted
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    if everything:
        rows = source.take(torch.arange(n))
    elif not source.weighted:  # max_rows distinct rows, as mclust's sample(1:n, subset)
        rows = source.take(torch.sort(torch.randperm(n, generator=generator)[:max_rows]).values)
    else:
        rows = sample_rows(source, max_rows, generator, engine)
    values = rows.detach().to("cpu", torch.float64).numpy()
    if offset is not None:
        values = values + offset.detach().to("cpu", torch.float64).numpy()
    complete = ~np.isnan(values).any(1)
    if not complete.all():  # rows with gaps (missing_values='fiml'): the tree is built on the complete ones
        values, everything = values[complete], False
    if values.shape[0] < 2:
        raise DataError("hierarchical initialisation needs at least 2 rows without gaps in its sample; pass "
                        "init_params='kmeans' (its start handles gaps) or raise max_rows")
    sample = None if everything else values
    if values.shape[1] == 1:
        return HCTree(model, use, n, sample, None, values[:, 0].copy())
    z = {"SVD": svd_transform, "STD": standardise, "VARS": np.asarray}[use](values)
    tree_model = model if values.shape[0] > values.shape[1] else "EII"  # mclust: VVV needs n > d
    return HCTree(tree_model, use, n, sample, agglomerate(z, tree_model))


def check(model: str, use: str, max_rows: int) -> None:
    if model not in HC_MODELS:
        raise ParameterError(f"model must be one of {list(HC_MODELS)} (the hcModelName trees bigem builds; mclust's "
                             f"E, V, VII and EEE are not built), got {model!r}")
    if use not in HC_USES:
        raise ParameterError(f"use must be one of {list(HC_USES)} (mclust's hcUse), got {use!r}")
    if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)) or not 2 <= max_rows <= ROWS_LIMIT:
        raise ParameterError(
            f"max_rows must be an int in [2, {ROWS_LIMIT}] (the agglomeration keeps a max_rows x max_rows matrix "
            f"of merge costs), got {max_rows!r}"
        )


def hc(X, *, model: str = "VVV", use: str = "SVD", max_rows: int = MAX_ROWS, random_state=None,
       sample_weight=None, columns=None, dtype="float64") -> HCTree:
    """Model-based agglomerative hierarchical clustering of X (mclust's ``hc``), to start EM.

    Parameters
    ----------
    X : array-like, tensor, DataFrame, path or Source
        Anything :meth:`GaussianMixture.fit` accepts.
    model : {'VVV', 'EII'}, default='VVV'
        Merge criterion: the unconstrained Gaussian's classification likelihood
        (mclust's default), or Ward's sum of squares.
    use : {'SVD', 'VARS', 'STD'}, default='SVD'
        The rows merged: mclust's scaled SVD transform (the default of ``Mclust`` and
        ``mclustBIC``, ``mclust.options("hcUse")``; mclust's ``hc()`` itself defaults to
        'VARS'), the variables as they are, or standardised. The VVV tree of 'VARS' can
        part from mclust's (whose incrementally updated costs drift from the exact ones
        bigem minimises; on mclust's diabetes data at merge 106 of 144).
    max_rows : int, default=2000
        Build the tree on all rows when there are at most this many (and no sample
        weights), else on a sample of this many (mclust's ``subset``).
    random_state : int or None, default=None
        Seed of the sample.
    sample_weight, columns
        As in :meth:`GaussianMixture.fit`; rows are sampled in proportion to weights.
    dtype : {'float64', 'float32'}, default='float64'
        The arithmetic of the merges (mclust's is double precision).

    Returns
    -------
    HCTree
        Pass it as ``GaussianMixture(init_params=tree)`` or ``select(..., init_params=tree)``:
        one tree serves every K and covariance model.
    """
    from .gaussian_mixture import GaussianMixture

    check(model, use, max_rows)
    est = GaussianMixture(dtype=dtype)
    s = est._settings()
    generator = torch.Generator().manual_seed(_params.random_seed(random_state))
    with est._execution(X, s, sample_weight, columns) as (engine, source, _):
        return build(source, model, use, max_rows, generator, engine, source.shift)
