"""Latent class analysis: a mixture of independent categorical columns, each with its
own categories (survey answers, product attributes).

The façade only: its hyper-parameters, its component and its fitted attributes.
Execution, inference and persistence are the mixture base's (``_mixture``); the
category-to-code mapping is the columns' schema (``sources.schema``), learnt at fit.
"""

from __future__ import annotations

import numpy as np
import torch

from .._core.errors import ParameterError
from ..models.categorical import PROBABILITY_FLOOR, CategoricalComponent, CategoricalParams
from ..models.mixture import MixtureModel, MixtureParams
from . import _params
from ._discrete import DISCRETE, DISCRETE_MISSING_DOC, INIT_DOC, Y_IGNORED, _DiscreteMixture, check_probabilities
from ._mixture import MIXTURE_DOC, SUPERVISION_DOC

CATEGORIES_DOC = """    categories : 'auto', list or dict, default='auto'
        The categories of each categorical column. 'auto' learns them from the data
        at fit, as scikit-learn's OneHotEncoder does. Otherwise, one list of categories
        per column (a list with one entry per column, or a dict {column name or
        position: categories}; 'auto' or None for a column whose categories are
        learnt). A declared list is the column's whole vocabulary: a category that
        no row of the fit holds is still a category (with alpha > 0 it keeps a
        probability), and ``partial_fit`` batches may bring it later. The data must
        hold no value outside it. ``categories_`` lists them sorted, and
        ``probabilities_init`` follows that order. 'auto' learns a column's
        categories from its values, as OneHotEncoder does: a pandas categorical's
        levels that no row holds are left out (declare
        ``list(X[col].cat.categories)`` to keep them).
"""

HANDLE_UNKNOWN_DOC = """    handle_unknown : {'error', 'ignore'}, default='error'
        A category that ``predict``, ``score``, ... meet but ``fit`` did not see: an
        error naming its column, row and value, or (``'ignore'``, scikit-learn's
        OneHotEncoder convention) an entry that carries no information: that column
        then contributes nothing to the row's log-density, and ``impute`` completes it
        as it completes a gap.
"""


class CategoricalMixture(_DiscreteMixture):
    __doc__ = (
        """Latent class analysis: a mixture of independent categorical distributions, one per column.

    Each column has its own set of categories; within a component the columns are
    independent (local independence). Columns may hold integer codes, strings,
    booleans, pandas categoricals or Arrow dictionary columns: the categories of each
    column are learnt at fit (sorted; ``categories_``), stored in the model file, and
    applied at predict time. X may be anything ``GaussianMixture`` reads (arrays, tensors,
    DataFrames, Parquet/CSV/Arrow files streamed with strings read through Arrow, Source
    objects, Dask collections); fitting is exact EM (or online EM), on CPU or GPU.

    Parameters
    ----------
    n_components : int, default=1
        Number of latent classes K.
    alpha : float >= 0, default=1.0
        Pseudo-counts of each category per column and component: p = (alpha + counts) /
        (M alpha + mass), the MAP under a Dirichlet(alpha + 1) prior, so that no category
        gets probability 0. 1 is Laplace smoothing (scikit-learn's CategoricalNB); 0 is
        maximum likelihood (StepMix, poLCA, pomegranate).
    tol : float, default=1e-3
        Convergence threshold on the change of the mean log-likelihood.
    max_iter : int, default=100
        Maximum EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the one with the highest lower bound is kept.
"""
        + CATEGORIES_DOC
        + HANDLE_UNKNOWN_DOC
        + INIT_DOC.format(space="categories one-hot, so a squared distance counts the columns that differ, "
                                "k-modes-like")
        + """    probabilities_init : list of array-like, default=None
        Initial probabilities: one (n_components, n_categories_j) array per column, its
        categories in sorted order (as ``categories_`` will list them).
"""
        + SUPERVISION_DOC.format(default="None", none=Y_IGNORED)
        + MIXTURE_DOC
        + DISCRETE_MISSING_DOC
        + """
    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    probabilities_ : list of ndarray
        One (n_components, n_categories_j) array per column: P(column j = category m)
        in each component, the categories in the order of ``categories_[j]``.
    categories_ : list of ndarray
        The categories of each column, sorted: learnt at fit, or as declared.
    classes_ : ndarray
        The class labels of a semi-supervised fit.
    converged_, n_iter_, n_passes_, lower_bound_, lower_bounds_, history_, n_features_in_, feature_names_in_
        As in :class:`GaussianMixture`.
    """
    )

    _kind = "category"
    _init_attribute = "probabilities_init"
    _per_column = ("categories",)
    _constraints = dict(DISCRETE, categories=_params.PerColumn(), handle_unknown=_params.Choice(("error", "ignore")),
                        probabilities_init=_params.ArrayLike())
    _fitted_arrays = {"weights_": "weights", "_probabilities_": "probabilities"}

    def __init__(
        self,
        n_components=1,
        *,
        alpha=1.0,
        categories="auto",
        handle_unknown="error",
        tol=1e-3,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        probabilities_init=None,
        unlabeled_weight=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        device="cpu",
        dtype="float32",
        chunk_size=None,
        memory_budget="auto",
        cache_budget="1GB",
        algorithm="em",
        batch_size=10_000,
        learning_decay=0.7,
        learning_offset=10.0,
        engine="auto",
        client=None,
        accelerate=None,
        stopping="gain",
        missing_values="error",
    ):
        self.n_components = n_components
        self.alpha = alpha
        self.categories = categories
        self.handle_unknown = handle_unknown
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.probabilities_init = probabilities_init
        self.unlabeled_weight = unlabeled_weight
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.device = device
        self.dtype = dtype
        self.chunk_size = chunk_size
        self.memory_budget = memory_budget
        self.cache_budget = cache_budget
        self.algorithm = algorithm
        self.batch_size = batch_size
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.engine = engine
        self.client = client
        self.accelerate = accelerate
        self.stopping = stopping
        self.missing_values = missing_values

    # ------------------------------------------------------------------ the family
    def _sizes(self) -> list[int]:
        schema = self._schema_
        return [] if schema is None else [len(c) for c in schema.categories]

    def _model(self, s) -> MixtureModel:
        advice = f"increase alpha (now {s.alpha:g}), lower n_components, or try another init_params"
        component = CategoricalComponent(self._sizes() or [1], 1.0 + s.alpha, s.dtype, advice=advice,
                                         floor=PROBABILITY_FLOOR, gaps=s.missing_values == "fiml")
        return MixtureModel(component, s.n_components, s.dtype)

    def _component_init(self, model, s, n_features):
        if self.probabilities_init is None:
            return None
        return CategoricalParams(flat_probabilities(self.probabilities_init, s.n_components, self._sizes(),
                                                    "probabilities_init"))

    def _publish(self, params: MixtureParams) -> None:
        self.weights_ = params.weights.numpy().copy()
        flat = params.component.probabilities.numpy().copy()
        self._probabilities_ = flat
        self.probabilities_ = np.split(flat, np.cumsum(self._sizes())[:-1], axis=1)
        self.categories_ = [c.copy() for c in self._schema_.categories]

    def _from_attributes(self, s) -> MixtureParams:
        K = s.n_components
        weights = self._checked_weights(K)
        flat = np.asarray(self._probabilities_, dtype=np.float64)
        sizes = self._sizes()
        probabilities = check_probabilities(flat, (K, sum(sizes)), "probabilities")
        check_columns_sum(probabilities, sizes, "probabilities")
        return MixtureParams(weights, CategoricalParams(probabilities))

    # the model a user reads and edits is the public list of tables (views of one flat array
    # that files hold): assigning a new list, or tables of another number of components,
    # changes the model as changing one in place does
    @property
    def _live_attributes(self) -> tuple[str, ...]:
        return ("weights_", "probabilities_")

    def _from_live(self, s) -> MixtureParams:
        K = s.n_components
        flat = flat_probabilities(self.probabilities_, K, self._sizes(), "probabilities_")
        self._probabilities_ = flat.numpy()
        self.probabilities_ = np.split(self._probabilities_, np.cumsum(self._sizes())[:-1], axis=1)
        return MixtureParams(self._checked_weights(K), CategoricalParams(flat))

    def _centres(self, params: MixtureParams) -> torch.Tensor:
        """Each component's most likely row: the code of its most likely category per column."""
        parts = torch.split(params.component.probabilities, self._sizes(), dim=1)
        return torch.stack([p.argmax(1) for p in parts], 1).to(torch.float64)


def flat_probabilities(value, K: int, sizes: list[int], name: str) -> torch.Tensor:
    """Per-column probability arrays (a list of (K, M_j)) as one (K, sum M_j) tensor, each
    column's rows summing to 1 (ParameterError naming the column otherwise)."""
    blocks = [value] if isinstance(value, np.ndarray) and value.ndim == 2 and len(sizes) == 1 else list(value)
    if len(blocks) != len(sizes):
        raise ParameterError(f"{name} must hold one (n_components, n_categories) array per column ({len(sizes)}); "
                             f"got {len(blocks)}")
    parts = [check_probabilities(b, (K, m), f"{name}[{j}]") for j, (b, m) in enumerate(zip(blocks, sizes))]
    flat = torch.cat(parts, 1)
    check_columns_sum(flat, sizes, name)
    return flat


def check_columns_sum(flat: torch.Tensor, sizes: list[int], name: str) -> None:
    """Every column's probabilities sum to 1 in every component."""
    for j, part in enumerate(torch.split(flat, sizes, dim=1)):
        sums = part.sum(1)
        if not bool(torch.allclose(sums, torch.ones_like(sums), rtol=0, atol=1e-6)):
            k = int(torch.argmax((sums - 1).abs()))
            raise ParameterError(f"{name}: column {j} of component {k} sums to {float(sums[k]):.10g}, not 1; "
                                 "normalise each column's probabilities")
