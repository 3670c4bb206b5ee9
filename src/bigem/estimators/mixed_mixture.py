"""Mixed-type data: one mixture with a family per column (Gaussian, categorical,
Bernoulli, Poisson), the blocks independent within a component, as in latent profile
and latent class analysis (StepMix's mixed models, LatentGOLD).

The façade only: which family each column has, the product of the blocks' components
(``models.product``), and the fitted attributes. Execution, inference and persistence
are the mixture base's (``_mixture``).
"""

from __future__ import annotations

import numpy as np
import torch

from .._core.errors import DataError, ParameterError
from ..em.init import sample_rows
from ..models.bernoulli import BernoulliComponent, BernoulliParams
from ..models.categorical import PROBABILITY_FLOOR, CategoricalComponent, CategoricalParams
from ..models.covariance import structure
from ..models.gaussian import GaussianComponent
from ..models.mixture import MixtureModel, MixtureParams
from ..models.poisson import PoissonComponent, PoissonParams
from ..models.product import Part, ProductParams
from . import _params
from ._by_column import by_column
from ._discrete import DISCRETE, DISCRETE_MISSING_DOC, INIT_DOC, Y_IGNORED, _DiscreteMixture, check_probabilities
from ._mixture import MIXTURE_DOC, SUPERVISION_DOC
from .categorical_mixture import CATEGORIES_DOC, HANDLE_UNKNOWN_DOC, check_columns_sum, flat_probabilities
from .poisson_mixture import check_rates

# family -> how its columns are read (sources.schema kinds), in the order of the product's parts
FAMILIES = {"gaussian": "real", "categorical": "category", "bernoulli": "binary", "poisson": "count"}
_FAMILY_OF = {kind: family for family, kind in FAMILIES.items()}
# the default family of a column by its coarse type; integers must be stated
_DEFAULTS = {"float": "gaussian", "string": "categorical", "category": "categorical", "bool": "categorical"}


class MixedMixture(_DiscreteMixture):
    __doc__ = (
        """Mixture of mixed-type data: a family per column, the blocks independent within a component.

    Gaussian columns form one block (diagonal, or a full covariance within the block),
    categorical columns one (each with its own categories, learnt at fit as in
    :class:`CategoricalMixture`), binary columns one (:class:`BernoulliMixture`), count
    columns one (:class:`PoissonMixture`); a component's log-density is the sum of the
    blocks'. Columns are named in DataFrames and Parquet/CSV/Arrow files, or by position
    in arrays. X may be anything ``GaussianMixture`` reads (streamed files, Source
    objects, Dask collections); exact EM (or online EM), on CPU or GPU.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components K.
    families : dict, list or None, default=None
        The family of each column: 'gaussian', 'categorical', 'bernoulli' or 'poisson'.
        A dict maps column names (or positions, for arrays) to families, the others
        taking the default; a list gives one per column. The default reads the column's
        type: floats are Gaussian; strings, categoricals and booleans categorical;
        integers must be stated (codes, counts and measurements all look alike), and an
        unstated one is an error that names it; so is any other type.
    covariance_type : {'diag', 'full'}, default='diag'
        The Gaussian block's covariance: independent columns (as every other block), or
        one full matrix per component across the Gaussian columns.
    reg_covar : float, default=1e-6
        Added to every variance of the Gaussian block.
    alpha : float >= 0, default=1.0
        Pseudo-counts of the categorical (Dirichlet) and Bernoulli (Beta) blocks, as in
        their own mixtures; 0 is maximum likelihood. The Poisson block takes maximum
        likelihood whatever alpha says: pseudo-events without pseudo-rows are an improper
        prior whose MAP has no maximum (see :class:`PoissonMixture`).
"""
        + CATEGORIES_DOC
        + HANDLE_UNKNOWN_DOC
        + """    tol : float, default=1e-3
        Convergence threshold on the change of the mean log-likelihood.
    max_iter : int, default=100
        Maximum EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the one with the highest lower bound is kept.
"""
        + INIT_DOC.format(space="the blocks side by side: Gaussian columns and counts scaled by their spread, "
                                "categories one-hot, 0/1 as they are")
        + SUPERVISION_DOC.format(default="None", none=Y_IGNORED)
        + MIXTURE_DOC
        + DISCRETE_MISSING_DOC
        + """
    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    families_ : list of str
        The family of each column, as fitted.
    means_ : ndarray of shape (n_components, n_gaussian)
    covariances_ : ndarray of shape (n_components, n_gaussian) or (n_components, n_gaussian, n_gaussian)
        The Gaussian block, its columns in order (empty without Gaussian columns).
    probabilities_ : list of ndarray
        One (n_components, n_categories) array per categorical column, in order.
    categories_ : list of ndarray
        The categories of each categorical column, sorted: learnt at fit, or as declared.
    bernoulli_probabilities_ : ndarray of shape (n_components, n_binary)
        P(x = 1) of each Bernoulli column.
    lambdas_ : ndarray of shape (n_components, n_poisson)
        The rate of each Poisson column.
    classes_ : ndarray
        The class labels of a semi-supervised fit.
    converged_, n_iter_, n_passes_, lower_bound_, lower_bounds_, history_, n_features_in_, feature_names_in_
        As in :class:`GaussianMixture`.
    """
    )

    _structural = ("n_components", "covariance_type")
    _per_column = ("families", "categories")
    _constraints = dict(DISCRETE, families=_params.Passed(), covariance_type=_params.Choice(("diag", "full")),
                        reg_covar=_params.Float(0.0), categories=_params.PerColumn(),
                        handle_unknown=_params.Choice(("error", "ignore")))
    # every block's arrays, empty for a block without columns
    _fitted_arrays = {"weights_": "weights", "means_": "gaussian.means", "covariances_": "gaussian.covariances",
                      "_probabilities_": "categorical.probabilities",
                      "bernoulli_probabilities_": "bernoulli.probabilities", "lambdas_": "poisson.rates"}

    def __init__(
        self,
        n_components=1,
        *,
        families=None,
        covariance_type="diag",
        reg_covar=1e-6,
        alpha=1.0,
        categories="auto",
        handle_unknown="error",
        tol=1e-3,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
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
        self.families = families
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.alpha = alpha
        self.categories = categories
        self.handle_unknown = handle_unknown
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
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

    # ------------------------------------------------------------------ the columns
    def _kinds(self, names, types, s) -> list[str]:
        """Each column's kind from ``families`` (stated) or its type (the default)."""
        stated = _stated(s.families, names, len(types))
        kinds = []
        for j, t in enumerate(types):
            label = f"column {names[j]!r}" if names is not None else f"column {j}"
            family = stated.get(j) or _DEFAULTS.get(t)
            if family is None and t == "integer":
                key = repr(names[j]) if names is not None else str(j)
                raise DataError(
                    f"{label} holds integers, which may be codes, counts or measurements: say which with "
                    f"families={{{key}: 'categorical'}} (or 'poisson', 'bernoulli', 'gaussian')"
                )
            if family is None:
                raise DataError(f"{label} has type {t!r}, which MixedMixture does not read; convert it to numbers "
                                "or strings, or leave it out with columns=")
            kinds.append(FAMILIES[family])
        return kinds

    def _columns(self, kind: str) -> list[int]:
        return [] if self._schema_ is None else self._schema_.columns_of(kind)

    def _sizes(self) -> list[int]:
        return [len(self._schema_.categories[j]) for j in self._columns("category")]

    # the categorical tables a user reads and edits are the public list (views of the flat
    # array files hold), as in CategoricalMixture: assigning it, or changing a table in
    # place, changes the model (before, only the private flat array did)
    @property
    def _live_attributes(self) -> tuple[str, ...]:
        return tuple("probabilities_" if a == "_probabilities_" else a for a in self._fitted_arrays)

    def _from_live(self, s) -> MixtureParams:
        sizes = self._sizes() if getattr(self, "_schema_", None) is not None else []
        if sizes:
            flat = flat_probabilities(self.probabilities_, s.n_components, sizes, "probabilities_")
            self._probabilities_ = flat.numpy()
            self.probabilities_ = np.split(self._probabilities_, np.cumsum(sizes)[:-1], axis=1)
        return self._from_attributes(s)

    def _integer_columns(self) -> list[int]:
        return [j for j, family in enumerate(self.families_) if family in ("bernoulli", "poisson")]

    def _model(self, s) -> MixtureModel:
        advice = (f"increase reg_covar (now {s.reg_covar:g}) or alpha (now {s.alpha:g}), lower n_components, or "
                  "standardise the Gaussian columns")
        gaps = s.missing_values == "fiml"  # each block marginalises its own gaps
        make = {
            "real": lambda: GaussianComponent(s.covariance_type, s.reg_covar, s.dtype, advice=advice, gaps=gaps),
            "category": lambda: CategoricalComponent(self._sizes(), 1.0 + s.alpha, s.dtype, advice=advice,
                                                     floor=PROBABILITY_FLOOR, gaps=gaps),
            "binary": lambda: BernoulliComponent(s.alpha, s.dtype, advice=advice, gaps=gaps),
            "count": lambda: PoissonComponent(0.0, 0.0, s.dtype, advice=advice, gaps=gaps),  # ML: see alpha
        }
        parts = [Part(_FAMILY_OF[kind], make[kind](), tuple(self._columns(kind))) for kind in FAMILIES.values()
                 if self._columns(kind)]
        from ..models.product import ProductComponent

        if not parts:  # no column is known before a fit: one Gaussian column stands in, and fit builds the real model
            parts = [Part("gaussian", make["real"](), (0,))]
        return MixtureModel(ProductComponent(parts, s.dtype, advice=advice), s.n_components, s.dtype, advice)

    def _init_model(self, model: MixtureModel, engine, source, s, generator) -> MixtureModel:
        """The model whose k-means embedding divides Gaussian and count columns by their
        spread in a row sample (categories and 0/1 values stay as they are)."""
        component = model.component
        sample = component.embed(sample_rows(source, 20_000, generator, engine).double())
        scale = torch.ones(sample.shape[1], dtype=torch.float64)
        start = 0
        for part, width in zip(component.parts, component.widths):
            if part.name in ("gaussian", "poisson"):
                sd = sample[:, start : start + width].std(0) if sample.shape[0] > 1 else torch.ones(width, dtype=torch.float64)
                scale[start : start + width] = torch.where(sd > 0, sd, torch.ones_like(sd))
            start += width
        return MixtureModel(component.scaled(scale), model.n_components, model.dtype, model.advice)

    # ------------------------------------------------------------------ attributes
    def _publish(self, params: MixtureParams) -> None:
        K = params.n_components
        component = self._model(self._inference_settings()).component
        got = {part.name: p for part, p in zip(component.parts, params.component.parts)}
        self.weights_ = params.weights.numpy().copy()
        self.families_ = [_FAMILY_OF[k] for k in self._schema_.kinds]
        g = got.get("gaussian")
        full = self._inference_settings().covariance_type == "full"
        self.means_ = g.means.numpy().copy() if g is not None else np.zeros((K, 0))
        self.covariances_ = g.covariances.numpy().copy() if g is not None else np.zeros((K, 0, 0) if full else (K, 0))
        c = got.get("categorical")
        self._probabilities_ = c.probabilities.numpy().copy() if c is not None else np.zeros((K, 0))
        self.probabilities_ = np.split(self._probabilities_, np.cumsum(self._sizes())[:-1], axis=1) if c is not None else []
        self.categories_ = [self._schema_.categories[j].copy() for j in self._columns("category")]
        b = got.get("bernoulli")
        self.bernoulli_probabilities_ = b.probabilities.numpy().copy() if b is not None else np.zeros((K, 0))
        p = got.get("poisson")
        self.lambdas_ = p.rates.numpy().copy() if p is not None else np.zeros((K, 0))

    def _from_attributes(self, s) -> MixtureParams:
        K = s.n_components
        weights = self._checked_weights(K)
        model = self._model(s)
        parts = []
        for part in model.component.parts:
            width = len(part.columns)
            if part.name == "gaussian":
                means = _params.as_f64(self.means_, "means_")
                _params.check_shape(means, (K, width), "means_")
                cov = structure(s.covariance_type).check_covariances(_params.as_f64(self.covariances_, "covariances_"),
                                                                     K, width, "covariances_")
                _params.check_scale("component", means=means,
                                    variances=_params.variances_of(cov, s.covariance_type, K))
                parts.append(part.component.make_params(means, cov))
            elif part.name == "categorical":
                flat = check_probabilities(self._probabilities_, (K, sum(self._sizes())), "probabilities")
                check_columns_sum(flat, self._sizes(), "probabilities")
                parts.append(CategoricalParams(flat))
            elif part.name == "bernoulli":
                parts.append(BernoulliParams(check_probabilities(self.bernoulli_probabilities_, (K, width),
                                                                 "bernoulli_probabilities_")))
            else:
                rates = check_rates(self.lambdas_, (K, width), "lambdas_")
                _params.check_scale("component", rates=rates)
                parts.append(PoissonParams(rates))
        return MixtureParams(weights, ProductParams(tuple(parts)))

    def _centres(self, params: MixtureParams) -> torch.Tensor:
        """Each component's most likely row, in the columns' order: the Gaussian means, the
        most likely category, the rounded probability, the Poisson mode."""
        component = self._model(self._inference_settings()).component
        K = params.n_components
        out = torch.zeros(K, sum(len(p.columns) for p in component.parts), dtype=torch.float64)
        for part, p in zip(component.parts, params.component.parts):
            if part.name == "gaussian":
                values = p.means
            elif part.name == "categorical":
                sizes = self._sizes()
                values = torch.stack([q.argmax(1) for q in torch.split(p.probabilities, sizes, dim=1)], 1).double()
            elif part.name == "bernoulli":
                values = torch.round(p.probabilities)
            else:
                values = torch.floor(p.rates)
            out[:, list(part.columns)] = values
        return out


def _stated(families, names: list[str] | None, width: int) -> dict[int, str]:
    """The families the user stated, by column index (ParameterError for an unknown family
    or column)."""
    if families is None:
        return {}
    known = ", ".join(repr(f) for f in FAMILIES)
    keys = list(families) if isinstance(families, dict) else range(width)
    stated = by_column(families, names, width, "families", "family")
    return {j: _family(family, key, known) for (j, family), key in zip(stated.items(), keys)}


def _family(family, key, known: str) -> str:
    if family not in FAMILIES:
        raise ParameterError(f"families[{key!r}] is {family!r}; a family is one of {known}")
    return family
