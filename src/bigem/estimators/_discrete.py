"""What the mixtures of discrete and mixed-type data share on top of ``_BaseMixture``:
their columns' schema (binary, counts, categories), a pseudo-count ``alpha``, and
initialisation in each family's k-means embedding (0/1 rows as they are, counts as
they are, categories one-hot, the blocks of mixed data side by side).

A façade adds its parameters, its docstring, its component and its fitted attributes.
"""

from __future__ import annotations

import numpy as np
import torch

from .._core.errors import ParameterError
from ..em.init import from_centres, from_random_responsibilities, kmeans_centres, seed_sample, seeds
from ..models.kmeans import EmbeddedKMeans, KMeansModel
from ..models.mixture import MixtureModel, MixtureParams
from . import _params
from ._mixture import EXECUTION, IMPUTE_DOC, MISSING, SUPERVISION, _BaseMixture, _missing

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")

# The parameters every discrete mixture takes, beside EXECUTION and SUPERVISION.
DISCRETE = dict(
    n_components=_params.Int(1),
    alpha=_params.Float(0.0),
    init_params=_params.Choice(INIT_METHODS),
    weights_init=_params.ArrayLike(),
    **SUPERVISION,
    **EXECUTION,
    **MISSING,
)

Y_IGNORED = ", as scikit-learn's clusterers ignore it (a Pipeline passes one)"  # SUPERVISION_DOC's ending

INIT_DOC = """    init_params : {{'kmeans', 'k-means++', 'random', 'random_from_data'}}, default='kmeans'
        Initialisation, in the family's k-means space ({space}): 'kmeans': k-means++
        seeds on a sample, then Lloyd iterations over all rows, then one assignment pass;
        'k-means++' / 'random_from_data': seeds (k-means++ or uniform rows) and the
        assignment pass; 'random': StepMix's start, the components from random
        responsibilities (from an int ``random_state``, StepMix's own table while it holds
        at most 2**24 numbers) and uniform weights; sample weights enter from the first
        E-step, as in StepMix. With y (semi-supervised), the
        labelled rows initialise instead (Nigam et al.), unless initial parameters are given.
    weights_init : array-like of shape (n_components,), default=None
        Initial weights (non-negative, summing to 1); uniform when only the components'
        initial parameters are given.
"""


# missing_values, for the families whose columns are independent given the component
DISCRETE_MISSING_DOC = """    missing_values : {'error', 'fiml'}, default='error'
        'error': NaN (and nulls in files and DataFrames) are refused, as scikit-learn
        refuses them. 'fiml': they are missing values, fitted by the exact EM for values
        missing at random (full-information maximum likelihood): within a component the
        columns are independent, so a row's likelihood is the product over the values it
        observed, and each column's parameters are estimated from the rows that observed
        it (StepMix's ``*_nan`` models, poLCA's and LatentGOLD's treatment). predict,
        score, ... then accept rows with gaps too; a row with every value missing gets the
        weights as its posterior (the fit warns once with their count); a column missing
        in every row is an error.
"""


class _DiscreteMixture(_BaseMixture):
    """A mixture whose columns are read by a schema, initialised in its component's embedding."""

    _has_schema = True
    _kind = "real"  # how every column is read (a mixed-type mixture decides per column)

    def _kinds(self, names, types, s) -> list[str]:
        return [self._kind] * len(types)

    def __sklearn_tags__(self):
        """What X may hold, as scikit-learn's input tags say it: count columns are
        non-negative whole numbers and categories whole numbers or strings ('categorical':
        its checks then draw rounded, non-negative X); 0/1 columns are non-negative (no tag
        says 0/1 only)."""
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = self._kind in ("count", "binary")
        if self._kind in ("count", "category"):
            tags.input_tags.categorical = True
            tags.input_tags.string = self._kind == "category"
        return tags

    def _component_init(self, model: MixtureModel, s, n_features: int):
        """The component parameters the user gave (``*_init``), checked, or None."""
        return None

    _init_attribute: str | None = None  # the constructor parameter of the component's initial parameters

    def _user_initialised(self, s) -> bool:
        given = None if self._init_attribute is None else getattr(self, self._init_attribute)
        return self.weights_init is not None or given is not None

    def _init_model(self, model: MixtureModel, engine, source, s, generator) -> MixtureModel:
        """The model whose component embeds rows for k-means (a mixed-type mixture scales
        its blocks first); its parameters are the fitted model's."""
        return model

    def _initialise(self, model: MixtureModel, engine, source, s, generator: torch.Generator, offset) -> MixtureParams:
        K = s.n_components
        weights = None if self.weights_init is None else _params.check_weights_init(self.weights_init, K)
        given = self._component_init(model, s, source.n_features)
        if given is not None:
            uniform = torch.full((K,), 1.0 / K, dtype=torch.float64)
            return MixtureParams(uniform if weights is None else weights, given)
        base = self._start(model, engine, source, s, generator)
        return base if weights is None else MixtureParams(weights, base.component)

    def _start(self, model: MixtureModel, engine, source, s, generator: torch.Generator) -> MixtureParams:
        K = s.n_components
        if s.init_params == "random":  # StepMix's start: its uniform table, and uniform weights
            start = from_random_responsibilities(model, engine, source, generator)
            return MixtureParams(torch.full((K,), 1.0 / K, dtype=torch.float64), start.component)
        init = self._init_model(model, engine, source, s, generator)
        embed = init.component.embed
        sample = seed_sample(source, K, generator, engine, embed=embed)
        if s.init_params == "kmeans":  # with gaps, k-POD over every row: distances over the observed coordinates
            kmeans = EmbeddedKMeans(KMeansModel(K, s.dtype, gaps=_missing(s) == "fiml"), embed)
            centres = kmeans_centres(kmeans, KMeansModel(K, torch.float64), engine, source, sample, K, generator)
        else:
            centres = seeds(s.init_params, sample, K, generator)
        return from_centres(init, engine, source, centres)

    def impute(self, X, *, method="mean", random_state=None, columns=None, out=None, id_column=None):
        return self._impute(X, method=method, random_state=random_state, columns=columns, out=out,
                            id_column=id_column)

    impute.__doc__ = IMPUTE_DOC.format(
        method="""            'mean': each gap's conditional expectation given the row's observed values
            under the fitted mixture, with p(k | x_obs) the row's posterior: for a 0/1
            column P(x = 1 | x_obs) = sum_k p(k | x_obs) p_k, for a count column
            sum_k p(k | x_obs) lambda_k, for a Gaussian column its conditional mean; for a
            category column, the most probable category. 'sample': a draw from p(x_miss |
            x_obs) (a component by its posterior, then each gap from that component):
            multiple imputation, one completed data set per ``random_state``.""",
        returns="""        ndarray of shape (n_samples, n_features), or the path written: float64, or the
        columns' own values where the model has category columns (as :meth:`sample`
        returns them: an object array where a category is not a number); a lazy dask
        array for Dask input without category columns (without ``out``).""")

    def _checked_weights(self, K: int) -> torch.Tensor:
        """The fitted weights_ as a distribution of K (ParameterError naming the damage)."""
        weights = torch.as_tensor(np.asarray(self.weights_, dtype=np.float64))
        if weights.shape != (K,):
            raise ParameterError(f"weights_ has shape {tuple(weights.shape)}, expected ({K},) for n_components={K}")
        total = float(weights.sum())
        if bool((weights < 0).any()) or abs(total - 1) > 1e-6:
            raise ParameterError(
                f"invalid parameters: weights must be non-negative and sum to 1, got sum {total:.6g} "
                f"and minimum {float(weights.min()):.6g}"
            )
        return weights


def check_probabilities(value, shape: tuple[int, ...], name: str) -> torch.Tensor:
    """Probabilities given by the user or read from a file: the shape, finite, in [0, 1]."""
    p = _params.as_f64(value, name)
    _params.check_shape(p, shape, name)
    if bool(((p < 0) | (p > 1)).any()):
        raise ParameterError(f"{name} must hold probabilities in [0, 1]; got values from {float(p.min()):.6g} to "
                             f"{float(p.max()):.6g}")
    return p
