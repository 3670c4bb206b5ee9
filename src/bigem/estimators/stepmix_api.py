"""StepMix's estimator, by name: ``from bigem import StepMix`` runs StepMix code unchanged.

The façade only: StepMix's constructor, methods, attributes and ``get_parameters()``
layout, over bigem's mixtures (the measurement model) and :class:`StructuralModel` (the
structural model, in one, two or three steps). StepMix's string descriptors name the
families; what bigem has no counterpart for is a ParameterError that says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np

from .._core.errors import BigemError, DataError, ParameterError, not_fitted_error
from ..em.driver import relative_tolerance
from ..sources.frames import frame_columns, native_frame
from . import _params
from ._base import EstimatorBase

# StepMix's measurement descriptor -> (bigem estimator, its keyword arguments)
_MEASUREMENT = {
    "bernoulli": ("BernoulliMixture", {}), "binary": ("BernoulliMixture", {}),
    "categorical": ("CategoricalMixture", {}), "multinoulli": ("CategoricalMixture", {}),
    "gaussian_diag": ("GaussianMixture", {"covariance_type": "diag"}),
    "continuous": ("GaussianMixture", {"covariance_type": "diag"}),
    "gaussian_full": ("GaussianMixture", {"covariance_type": "full"}),
    "gaussian_spherical": ("GaussianMixture", {"covariance_type": "spherical"}),
    "gaussian_tied": ("GaussianMixture", {"covariance_type": "tied"}),
}
_MEASUREMENT.update({f"{name}_nan": (cls, {**kw, "missing_values": "fiml"}) for name, (cls, kw) in list(_MEASUREMENT.items())
                     if name in ("bernoulli", "binary", "categorical", "multinoulli", "gaussian_diag", "continuous")})
# StepMix's structural descriptor -> StructuralModel's family (StepMix's bare 'gaussian' has unit variance)
_STRUCTURAL = {"gaussian": "gaussian_unit", "gaussian_unit": "gaussian_unit", "gaussian_diag": "gaussian",
               "continuous": "gaussian", "bernoulli": "bernoulli", "binary": "bernoulli",
               "categorical": "categorical", "multinoulli": "categorical", "covariate": "covariate"}
_STRUCTURAL.update({f"{name}_nan": family for name, family in list(_STRUCTURAL.items()) if family != "covariate"})
_PADDING = 1e-15  # StepMix's value of a category a column does not have (its clip)
# StepMix's name of each emission model (its ``model_str``), by descriptor
_MODEL_NAMES = {"bernoulli": "binary", "binary": "binary", "categorical": "categorical",
                "multinoulli": "categorical", "gaussian_diag": "gaussian_diag", "continuous": "gaussian_diag",
                "gaussian_full": "gaussian_full", "gaussian_spherical": "gaussian_spherical",
                "gaussian_tied": "gaussian_tied", "gaussian": "gaussian_unit", "gaussian_unit": "gaussian_unit",
                "covariate": "covariate"}
_MODEL_NAMES.update({f"{name}_nan": f"{model}_nan" for name, model in list(_MODEL_NAMES.items())
                     if model != "covariate"})
_INDEX = ["model", "model_name", "param", "class_no", "variable"]
# the blocks a nested measurement descriptor takes -> MixedMixture's family of their columns
_MIXED_MEASUREMENT = {name: family for name, family in _STRUCTURAL.items()
                      if family in ("gaussian", "bernoulli", "categorical")}


def _stepmix_reg_covar(models: list[str]) -> float:
    """StepMix's default ``reg_covar`` for the Gaussian models of a descriptor: 1e-6 (its
    Gaussian models', scikit-learn's), but none where every Gaussian block is a '_nan'
    model, whose M-step (StepMix's GaussianNan) adds none. bigem's one ``reg_covar`` per
    model cannot hold both where a descriptor mixes the two kinds: 1e-6 then."""
    gaussian = [m for m in models
                if _STRUCTURAL.get(m) == "gaussian" or _MEASUREMENT.get(m, ("",))[0] == "GaussianMixture"]
    return 0.0 if gaussian and all(m.endswith("_nan") for m in gaussian) else 1e-6


class NotSampledError(BigemError, NotImplementedError):
    """A model that cannot be sampled (a covariate model): StepMix's NotImplementedError."""


class OutcomeNotPredictedError(ParameterError, NotImplementedError):
    """``predict_Y`` of an outcome that is not binary or categorical: StepMix's
    NotImplementedError (a ParameterError too, as bigem's refusals are)."""


class StepMix(EstimatorBase):
    """StepMix's latent class estimator (``stepmix.stepmix.StepMix``): the same
    constructor, defaults, methods and attributes, on bigem.

    The measurement model is one of bigem's mixtures (``measurement``: 'bernoulli' /
    'binary', 'categorical' / 'multinoulli', 'gaussian_diag' / 'continuous',
    'gaussian_full', 'gaussian_spherical', 'gaussian_tied', and the '_nan' versions of
    the binary, categorical and diagonal ones); the structural model, given Y, is a
    :class:`StructuralModel` (``structural``: 'gaussian' / 'gaussian_unit',
    'gaussian_diag' / 'continuous', 'bernoulli' / 'binary', 'categorical' /
    'multinoulli', their '_nan' versions, or 'covariate'), fitted in ``n_steps`` with
    ``correction`` and ``assignment`` as StepMix fits it. A nested descriptor (StepMix's
    dict of blocks, as its ``get_mixed_descriptor`` makes) is a :class:`MixedMixture`
    over the measurement blocks (diagonal Gaussian, binary and categorical, with or
    without '_nan') and a :class:`StructuralModel` with a family per outcome block. The
    estimates are StepMix's, and
    so are ``get_parameters()``, the parameter frames (``get_parameters_df``,
    ``get_mm_df``, ``get_sm_df``, ``get_cw_df``) and the criteria
    (tests/reference/test_stepmix_api.py). Differences:

    - ``verbose=1`` prints StepMix's report after ``fit`` (as :meth:`report` does);
      ``progress_bar`` prints StepMix's "Fitting StepMix..." line at each EM, not its bar;
      ``save_param_init`` keeps nothing.
    - :meth:`sample` draws from the same model, not StepMix's numbers; given ``labels``,
      row i comes from class ``labels[i]`` (StepMix draws its j-th distinct label from
      class j).
    - ``init_params='random'`` (the default) starts every measurement model as StepMix
      does (its responsibility table from the same numbers, uniform weights), one step
      from StepMix's joint start, so the path and the classes' order are StepMix's; other
      starts (``'kmeans'``) are bigem's and one step begins from the measurement fit.
    - The covariate model's naive and BCH estimates (a single M-step) run Newton's
      steps to convergence (StepMix's default ``structural_params={'max_iter': 1}``
      takes one, so its estimates are one step from a random start). Within EM (one and
      two steps, ML's three) each M-step takes one Newton step, StepMix's default, from
      StepMix's start (its draws, each restart anew), so a covariate model's path is
      StepMix's; a larger ``max_iter`` takes StepMix along another path to the same
      fixed points.
    - 'gaussian_unit' measurements, full, spherical and tied Gaussians as outcomes or
      as blocks of a nested measurement, and categorical blocks given one-hot
      (``integer_codes=False``) have no counterpart: a ParameterError names them. In a
      nested measurement with a '_nan' block, every block takes gaps, marginalised
      (StepMix lets them through to the other blocks' models, which cannot take them).

    Parameters
    ----------
    n_components : int, default=2
        The number of latent classes.
    n_steps : {1, 2, 3}, default=1
        1: the measurement and structural models fitted jointly; 2: the measurement
        model first, then the structural one with it held fixed; 3: the measurement
        model, each row's class (``assignment``), then the structural model on those
        classes (with ``correction``).
    measurement : str or dict, default='bernoulli'
        The measurement model, by StepMix's name (listed above), or StepMix's dict of
        blocks for mixed columns.
    structural : str or dict, default='gaussian_unit'
        The structural model of Y, by StepMix's name (listed above), or a dict of blocks.
    assignment : {'modal', 'soft'}, default='modal'
        Three steps: each row's most likely class, or its posterior probabilities.
    correction : {None, 'BCH', 'ML'}, default=None
        Three steps: the bias correction of the structural estimates (Bolck, Croon and
        Hagenaars; or maximum likelihood), or none.
    abs_tol : float, default=1e-10
        EM stops when the mean log-likelihood rose by less than this.
    rel_tol : float, default=0.0
        EM also stops when the mean log-likelihood changed by less than this fraction
        of itself (StepMix's rule: either tolerance ends a run).
    max_iter : int, default=1000
        EM iterations per run.
    n_init : int, default=1
        Runs from different starts; the best is kept.
    save_param_init : bool, default=False
        Taken for StepMix's signature; bigem keeps no initial parameters.
    init_params : {'random', 'kmeans'}, default='random'
        The measurement model's start.
    random_state : int, RandomState or None, default=None
        Seed of the starts and of ``sample``.
    verbose : int, default=0
        1: StepMix's report after ``fit``.
    progress_bar : int, default=1
        0, 1 or 2, as StepMix takes it: above 0, StepMix's "Fitting StepMix..." line for
        each EM of the fit (its bars are not drawn).
    measurement_params : dict or None, default=None
        ``{'reg_covar': ...}`` for a Gaussian measurement model; any other key is a
        ParameterError naming it.
    structural_params : dict or None, default=None
        ``reg_covar`` and ``intercept`` for the structural model; ``method`` must be
        'newton-raphson', and ``max_iter`` and ``tol`` (Newton steps per M-step) are
        not read: a single M-step runs them to convergence, EM's take one each.
    """

    _estimator_type = None  # as StepMix's: scikit-learn takes it for no clusterer, classifier or density
    _UNROUTED = {}  # StepMix's score takes sample_weight: scikit-learn routes it there too
    _constraints = dict(
        n_components=_params.Int(1), n_steps=_params.Int(1, 3), measurement=_params.Passed(),
        structural=_params.Passed(), assignment=_params.Choice(("modal", "soft")),
        correction=_params.Optional(_params.Choice(("BCH", "ML"))), abs_tol=_params.Float(0.0),
        rel_tol=_params.Float(0.0), max_iter=_params.Int(1, at_most=_params.MAX_ITER),
        n_init=_params.Int(1, at_most=_params.MAX_INIT), save_param_init=_params.Flag(),
        init_params=_params.Choice(("kmeans", "random")), random_state=_params.Seed(), verbose=_params.Truthy(),
        progress_bar=_params.Passed(), measurement_params=_params.Mapping(), structural_params=_params.Mapping(),
    )

    def __init__(self, n_components=2, *, n_steps=1, measurement="bernoulli", structural="gaussian_unit",
                 assignment="modal", correction=None, abs_tol=1e-10, rel_tol=0.00, max_iter=1000, n_init=1,
                 save_param_init=False, init_params="random", random_state=None, verbose=0, progress_bar=1,
                 measurement_params=None, structural_params=None):
        self.n_components = n_components
        self.n_steps = n_steps
        self.measurement = measurement
        self.structural = structural
        self.assignment = assignment
        self.correction = correction
        self.abs_tol = abs_tol
        self.rel_tol = rel_tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.save_param_init = save_param_init
        self.init_params = init_params
        self.random_state = random_state
        self.verbose = verbose
        self.progress_bar = progress_bar
        self.measurement_params = measurement_params
        self.structural_params = structural_params

    # ------------------------------------------------------------------ fitting
    def _measurement_model(self, s):
        import bigem

        descriptor = s.measurement
        if isinstance(descriptor, dict):
            return self._mixed_measurement(s)
        if not isinstance(descriptor, str) or descriptor not in _MEASUREMENT:
            known = ", ".join(repr(k) for k in _MEASUREMENT)
            raise ParameterError(
                f"measurement={descriptor!r} has no bigem counterpart here; it takes one of {known}, or a dict of "
                "blocks of them (a unit-variance Gaussian measurement model is not built)")
        name, kw = _MEASUREMENT[descriptor]
        extra = _without_outcomes(dict(s.measurement_params or {}), descriptor, "measurement_params")
        reg = extra.pop("reg_covar", _stepmix_reg_covar([descriptor]))
        if name == "GaussianMixture":
            kw = {**kw, "reg_covar": reg}
        if extra:
            raise ParameterError(f"measurement_params {sorted(extra)} are not read by bigem's {name}")
        discrete = {} if name == "GaussianMixture" else {"alpha": 0.0}
        if name == "GaussianMixture" and s.init_params == "random":  # StepMix's start has uniform class weights
            kw = {**kw, "weights_init": np.full(s.n_components, 1.0 / s.n_components)}
        return getattr(bigem, name)(s.n_components, init_params=s.init_params, tol=s.abs_tol, max_iter=s.max_iter,
                                    n_init=s.n_init, random_state=s.random_state, dtype="float64", **discrete, **kw)

    def _mixed_measurement(self, s):
        """A nested measurement descriptor (StepMix's dict of blocks, e.g. from its
        ``get_mixed_descriptor``): a :class:`MixedMixture` with each block's family on its
        columns, and gaps allowed (FIML) where a block is a '_nan' model."""
        import bigem

        blocks = _blocks(s.measurement, "measurement", _MIXED_MEASUREMENT)
        extra = dict(s.measurement_params or {})
        reg = extra.pop("reg_covar", _stepmix_reg_covar([b.model for b in blocks]))
        if extra:
            raise ParameterError(f"measurement_params {sorted(extra)} are not read by bigem's MixedMixture")
        families = [_MIXED_MEASUREMENT[b.model] for b in blocks for _ in b.columns]
        gaps = "fiml" if any(b.model.endswith("_nan") for b in blocks) else "error"
        return bigem.MixedMixture(s.n_components, families=families, reg_covar=reg, alpha=0.0,
                                  init_params=s.init_params, tol=s.abs_tol, max_iter=s.max_iter, n_init=s.n_init,
                                  random_state=s.random_state, dtype="float64", missing_values=gaps)

    def _structural_model(self, s, measurement):
        from .structural import StructuralModel

        descriptor = s.structural
        names = [descriptor] if isinstance(descriptor, str) else []
        if isinstance(descriptor, dict):
            blocks = _blocks(descriptor, "structural", _STRUCTURAL)
            names = [b.model for b in blocks]
            descriptor = [_STRUCTURAL[b.model] for b in blocks for _ in b.columns]
        elif not isinstance(descriptor, str) or descriptor not in _STRUCTURAL:
            known = ", ".join(repr(k) for k in _STRUCTURAL)
            raise ParameterError(
                f"structural={descriptor!r} has no bigem counterpart here; it takes one of {known}, or a dict of "
                "blocks of them")
        else:
            descriptor = _STRUCTURAL[descriptor]
        extra = dict(s.structural_params or {})
        if isinstance(s.structural, str):
            extra = _without_outcomes(extra, s.structural, "structural_params")
        kw = {"reg_covar": extra.pop("reg_covar", _stepmix_reg_covar(names)), "intercept": extra.pop("intercept", True)}
        if extra.pop("method", "newton-raphson") != "newton-raphson":
            raise ParameterError("structural_params method: bigem's covariate model takes Newton-Raphson steps only")
        extra.pop("max_iter", None)  # Newton steps per M-step: to convergence alone, one within EM
        extra.pop("tol", None)
        if extra:
            raise ParameterError(f"structural_params {sorted(extra)} are not read by bigem's StructuralModel")
        return StructuralModel(measurement, descriptor, n_steps=s.n_steps, correction=s.correction,
                               assignment=s.assignment, alpha=0.0, tol=s.abs_tol, max_iter=s.max_iter, **kw)

    def fit(self, X, Y=None, sample_weight=None, y=None):
        """Fit the measurement model on X and, given Y, the structural model in ``n_steps``."""
        if y is not None and Y is None:
            Y = y
        s = self._checked_settings()
        self._fit(X, Y, sample_weight, s)
        # StepMix's line at each EM its fit ran (two for two steps and for ML's three), once the
        # data were taken, as StepMix prints it (said after the fit: the same lines on stdout)
        self._say_fitting(2 if Y is not None and (s.n_steps == 2 or s.correction == "ML") else 1)
        if self.verbose == 1:  # StepMix's test: 2 prints no report
            self.report(X, Y, sample_weight=sample_weight)
        return self

    def em(self, X, Y=None, sample_weight=None, freeze_measurement=False, log_emission_pm=None):
        """StepMix's EM, a step of its fit that its users call alone: the measurement model
        on X (Y None), every parameter at once (one step), or with ``freeze_measurement``
        the structural model alone beside the measurement model fitted before (two
        steps). Then :meth:`m_step_structural` takes the third step on given
        probabilities. (``log_emission_pm``, StepMix's ML correction inside EM, is
        ``fit`` with ``n_steps=3, correction='ML'`` here.)"""
        if log_emission_pm is not None:
            raise ParameterError("log_emission_pm: bigem's ML correction runs inside fit; pass n_steps=3, "
                                 "correction='ML' and call fit(X, Y)")
        s = self._checked_settings()
        if Y is None:
            self._fit(X, None, sample_weight, s)
        elif freeze_measurement:
            if getattr(self, "_mm", None) is None:
                raise not_fitted_error("em(..., freeze_measurement=True) holds the measurement model fitted before: "
                                       "call em(X) first")
            self._fit(X, Y, sample_weight, dataclasses.replace(s, n_steps=2, correction=None), self._mm)
        else:
            self._fit(X, Y, sample_weight, dataclasses.replace(s, n_steps=1, correction=None))
        self._say_fitting(1)
        return self

    def m_step_structural(self, resp, Y, sample_weight=None):
        """StepMix's third step: the structural model of Y on the class probabilities
        ``resp`` (n, n_components) given, beside the measurement model fitted by
        :meth:`em` (the naive step's M-step on the caller's probabilities: modal, soft,
        or corrected by the caller)."""
        s = self._checked_settings()
        if getattr(self, "_mm", None) is None:
            raise not_fitted_error(f"This {type(self).__name__} instance is not fitted yet. Call 'em' (or 'fit') "
                                   "with X first.")
        with _stepmix_words():
            self._sm = self._structural_model(dataclasses.replace(s, n_steps=3, correction=None),
                                              self._mm).fit_given(resp, Y, sample_weight=sample_weight)
        self.structural_in_ = len(self._sm.families_)
        self.y_names_ = _names(Y)
        self._draws_ = None
        return self

    def _say_fitting(self, times: int) -> None:
        """StepMix's line at the start of each EM, where ``progress_bar`` asks for a bar
        (the bar itself, on stderr, is not drawn)."""
        for _ in range(times if self.progress_bar else 0):
            print("Fitting StepMix...")

    def _checked_settings(self):
        s = self._settings()
        if self.progress_bar not in (0, 1, 2):  # StepMix's check and words (True and False are 1 and 0)
            raise ParameterError(f"progress_bar value {self.progress_bar} not recognized. Choose from [0, 1, 2]")
        return s

    def _fit(self, X, Y, sample_weight, s, measurement=None) -> None:
        """The fit under settings ``s`` (``n_steps`` and ``correction`` as the caller takes
        them), from a fitted ``measurement`` model where one is given (two steps); every
        EM in it stops on StepMix's ``abs_tol`` or ``rel_tol``."""
        measurement = self._measurement_model(s) if measurement is None else measurement
        if Y is None:
            with _stepmix_words(2), relative_tolerance(s.rel_tol):  # the caller of fit or em
                self._mm, self._sm = measurement.fit(X, sample_weight=sample_weight), None
            run = self._mm
        else:
            with _stepmix_words(2), relative_tolerance(s.rel_tol):
                _refuse_unmodelled_gaps(s.structural, Y)
                self._sm = self._structural_model(s, measurement).fit(X, Y, sample_weight=sample_weight)
            self._mm = self._sm.measurement_
            run = self._sm if np.isfinite(self._sm.lower_bound_) else self._mm  # naive and BCH do no EM
            self.structural_in_ = len(self._sm.families_)
        self.weights_ = np.asarray(self._mm.weights_, dtype=np.float64).copy()
        self.lower_bound_, self.n_iter_, self.converged_ = float(run.lower_bound_), int(run.n_iter_), bool(
            run.converged_)
        self.measurement_in_ = self.n_features_in_ = int(self._mm.n_features_in_)
        self.x_names_ = _names(X)
        names = getattr(self._mm, "feature_names_in_", None)  # scikit-learn's, as StepMix's fit keeps it
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        else:
            self.__dict__.pop("feature_names_in_", None)
        if Y is None:
            self.__dict__.pop("structural_in_", None)
            self.__dict__.pop("y_names_", None)
        else:
            self.y_names_ = _names(Y)
        self._draws_ = None  # sample's stream starts again from random_state

    def report(self, X, Y=None, sample_weight=None):
        """Print StepMix's report of the fit (``verbose=1`` prints it after ``fit``): each
        model's parameters, the class weights, and the fit's statistics on X (and Y), in
        StepMix's words and layout."""
        print("\n".join(_report(self, X, Y, sample_weight)))

    def set_parameters(self, params):
        """Set every parameter from StepMix's dict (the layout of :meth:`get_parameters`),
        fitted or not: the model then predicts, scores and samples with them. The
        structural model is set when ``params`` holds one ('structural' and
        'structural_in')."""
        s = self._settings()
        try:
            weights, given, width = params["weights"], params["measurement"], int(params["measurement_in"])
            structural = (params["structural"], int(params["structural_in"])) if "structural" in params else None
        except (KeyError, TypeError) as exc:
            raise ParameterError(f"params must be StepMix's dict of get_parameters() (weights, measurement, "
                                 f"measurement_in, and optionally structural, structural_in); missing {exc}") from None
        mm = _measurement_from(self._measurement_model(s), s, weights, given, width)
        sm = None
        if structural is not None:
            sm = _structural_from(self._structural_model(s, mm), s, *structural)
        self._mm, self._sm, self._draws_ = mm, sm, None
        self.weights_ = np.asarray(mm.weights_, dtype=np.float64).copy()
        self.measurement_in_ = width
        if sm is None:
            self.__dict__.pop("structural_in_", None)
        else:
            self.structural_in_ = structural[1]

    def sample(self, n_samples, labels=None):
        """Draw (X, Y, labels) from the fitted model, as StepMix's ``sample``: each row's
        class from the class weights (or ``labels``, one class per row), then its
        indicators and, with a structural model, its outcomes given the class (Y is None
        without one). Successive calls continue one stream of draws, seeded by
        ``random_state``. A covariate model cannot be sampled (NotImplementedError, as
        StepMix's)."""
        from .structural import class_draws, measurement_draws

        self._check_fitted()
        if self._conditional:
            raise NotSampledError("Sampling for the covariate model is not implemented: the covariate model gives "
                              "p(class | covariates), not a distribution of the covariates; draw them yourself, "
                              "then each row's class from predict_proba")
        if getattr(self, "_draws_", None) is None:
            self._draws_ = _params.draws(self._settings().random_state)
        classes = class_draws(self.weights_, n_samples, labels, self._draws_)
        X = _typed(measurement_draws(self._mm, classes, self._draws_), self.measurement)
        Y = None if self._sm is None else _typed(self._sm._outcome_draws(classes, self._draws_), self.structural)
        return X, Y, classes.numpy()

    # ------------------------------------------------------------------ parameters
    def __sklearn_is_fitted__(self) -> bool:  # scikit-learn's check_is_fitted (a Pipeline's predict asks it)
        return hasattr(self, "_mm")

    def _check_fitted(self) -> None:
        if not hasattr(self, "_mm"):
            raise not_fitted_error(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                                   "appropriate arguments before using this estimator.")

    @property
    def _conditional(self) -> bool:
        return self._sm is not None and "covariate" in self._sm.families_

    @property
    def n_parameters(self):
        """Free parameters, counted as StepMix counts them (class weights left out of a
        covariate model, whose classes' probabilities are the covariates')."""
        self._check_fitted()
        K = self.n_components_
        n = 0.0 if self._conditional else K - 1
        params = self.get_parameters()
        if isinstance(self.measurement, dict):
            n += sum(_count(params["measurement"][b.name], b.model, K) for b in _blocks(self.measurement))
        elif _MODEL_NAMES.get(self.measurement, "").startswith("categorical"):  # its codes' places, as StepMix
            n += _count(params["measurement"], self.measurement, K)
        else:
            n += self._mm._n_parameters() - (K - 1)
        if self._sm is not None:
            n += sum(_count(values, b.model, K) for b, values in _by_block(self.structural, params["structural"]))
        return n

    @property
    def n_components_(self) -> int:
        return int(np.shape(self._mm.weights_)[0])

    def get_parameters(self) -> dict:
        """StepMix's dict: weights, the measurement and structural models' parameters by
        StepMix's names, and the numbers of their columns."""
        self._check_fitted()
        s = self._settings()
        measurement = (_nested(self._mm, s.measurement) if isinstance(s.measurement, dict) else
                       _measurement_parameters(self._mm, s))
        params = dict(weights=self.weights_.copy(), measurement=measurement, measurement_in=self.measurement_in_)
        if self._sm is not None:
            params["structural"] = _nested(self._sm, s.structural)
            params["structural_in"] = self.structural_in_
        return params

    def get_parameters_df(self, x_names=None, y_names=None):
        """StepMix's long DataFrame of the parameters, indexed by model ('measurement',
        'structural'), model_name, param, class_no and variable."""
        import pandas as pd

        params = self.get_parameters()
        s = self._settings()
        x_names = x_names if x_names is not None else getattr(self, "x_names_", None)
        frames = [_frame(s.measurement, params["measurement"], x_names, self.measurement_in_).assign(
            model="measurement")]
        if not self._conditional:
            frames.append(pd.DataFrame.from_records(
                [dict(model="measurement", model_name="class_weights", param="class_weights", class_no=k,
                      variable="nan", value=w) for k, w in enumerate(self.weights_)]))
        if self._sm is not None:
            y_names = y_names if y_names is not None else getattr(self, "y_names_", None)
            frames.append(_frame(s.structural, params["structural"], y_names, self.structural_in_,
                                 bool(self._sm.intercept)).assign(model="structural"))
        return pd.concat(frames).set_index(_INDEX)

    def get_cw_df(self, x_names=None, y_names=None):
        """The class weights, one column per class (StepMix's layout)."""
        if self._conditional:
            raise ParameterError("Class weights are not defined when using the conditional likelihood perspective "
                                 "(covariates).")
        return _pivot(_rows(self.get_parameters_df(x_names, y_names), "measurement", True), ["param"])

    def get_mm_df(self, x_names=None, y_names=None):
        """The measurement model's parameters, one column per class (StepMix's layout)."""
        df = _rows(self.get_parameters_df(x_names, y_names), "measurement", False)
        return _pivot(df, ["model_name", "param", "variable"])

    def get_sm_df(self, x_names=None, y_names=None):
        """The structural model's parameters, one column per class (StepMix's layout)."""
        self._check_fitted()
        if self._sm is None:
            raise ParameterError("No structural model fitted.")
        return _pivot(_rows(self.get_parameters_df(x_names, y_names), "structural", False),
                      ["model_name", "param", "variable"])

    def permute_classes(self, perm):
        """Renumber the latent classes: class k becomes the fitted class ``perm[k]``, in
        the weights, the measurement model and the structural model."""
        from .structural import _permutation, permuted_mixture

        self._check_fitted()
        perm = _permutation(perm, self.n_components_)
        if self._sm is not None:
            self._mm = self._sm.permute_classes(perm).measurement_
        else:
            self._mm = permuted_mixture(self._mm, perm)
        self.weights_ = np.asarray(self._mm.weights_, dtype=np.float64).copy()

    def predict_proba_Y(self, X):
        """P(y | x) of a binary or categorical outcome: sum_c P(c | x) P(y | c), StepMix's
        columns (a binary column's P(0) and P(1) side by side; a categorical column's
        max_n_outcomes probabilities)."""
        resp, pis, family = self._outcome(X)
        if family == "bernoulli":
            probs = np.repeat(resp @ pis, 2, axis=1)
            probs[:, ::2] = 1 - probs[:, ::2]
            return probs
        params = _nested(self._sm, self.structural)
        M = params["max_n_outcomes"]
        return np.einsum("nk,kfo->nfo", resp, params["pis"].reshape(len(pis), -1, M)).reshape(len(resp), -1)

    def predict_Y(self, X):
        """The most likely value of each binary or categorical outcome given x (StepMix's
        shape: (n,) for one column)."""
        resp, pis, family = self._outcome(X)
        probs = self.predict_proba_Y(X)
        columns = pis.shape[1] if family == "bernoulli" else len(self._sm.families_)
        preds = probs.reshape(len(resp), columns, -1).argmax(axis=2)
        return preds.ravel() if preds.shape[1] == 1 else preds

    def _outcome(self, X):
        self._check_fitted()
        if self._sm is None:
            raise ParameterError("Calling predict_Y requires a structural model.")
        family = self._sm.families_[0]
        if family not in ("bernoulli", "categorical") or not isinstance(self.structural, str):
            raise OutcomeNotPredictedError(f"predict_Y and predict_proba_Y need a binary or categorical outcome; "
                                           f"this one is {self.structural!r}")
        pis = self._sm.bernoulli_probabilities_ if family == "bernoulli" else _nested(self._sm, self.structural)["pis"]
        return self._mm.predict_proba(self._rows(X)), pis, family

    # ------------------------------------------------------------------ bootstrap
    def bootstrap(self, X, Y=None, n_repetitions=1000, sample_weight=None, parametric=False, sampler=None,
                  identify_classes=True, progress_bar=True, random_state=None):
        """StepMix's bootstrap: (the parameter frames of every repetition, with a 'rep'
        column, or None without ``identify_classes``; each repetition's LL and avg_LL).

        Nonparametric (the default), a repetition reweights the rows by their counts in a
        draw with replacement (the same fit as on the drawn copy, without copying X).
        Parametric, it draws a data set of X's size from this model (or from ``sampler``,
        another fitted StepMix: the null model of a bootstrap likelihood ratio test), with
        :meth:`sample`, seeded by ``random_state``; ``sample_weight`` is then ignored, as
        StepMix ignores it. Either way the repetition refits from this fit (the measurement
        model warm-started, so its classes keep their order), and its classes are matched
        to this fit's by their posteriors on X, as StepMix does; without
        ``identify_classes`` a parametric repetition is fitted from scratch, as StepMix
        fits it (a BLRT's likelihoods: no start from the real data's fit)."""
        import copy

        import pandas as pd

        from .bootstrap import _best_order, base_weights, drawn_weights

        self._check_fitted()
        seed = self.random_state if random_state is None else random_state
        n = int(np.shape(X)[0])
        base = None if parametric else base_weights(sample_weight, n)
        rng = np.random.default_rng(_params.check_seed(seed))
        if parametric:
            source = copy.deepcopy(self if sampler is None else sampler)
            source._check_fitted()
            source._draws_ = _params.draws(seed)  # its own stream, from the bootstrap's seed
        total = n if sample_weight is None else float(np.sum(np.asarray(sample_weight, dtype=np.float64)))
        reference = self.predict_proba(X, Y)
        if progress_bar:
            print("\nBootstrapping estimator...")  # StepMix's words (its bar itself is not drawn)
        frames, lls, avg_lls = [], [], []
        for rep in range(int(n_repetitions)):
            if parametric:
                X_rep, Y_rep, _ = source.sample(n)
                # from this fit, its classes in order; without identify_classes (a BLRT's
                # likelihoods) from scratch, as StepMix refits, so no start favours a model
                replicate = self._refit(X_rep, Y_rep, None) if identify_classes else self._fresh(X_rep, Y_rep, seed)
                weights = None
                avg = replicate.score(X_rep, Y_rep)
            else:
                weights = drawn_weights(rng, n, "nonparametric", base)
                replicate = self._refit(X, Y, weights)
                avg = replicate.score(X, Y, sample_weight=weights)
            avg_lls.append(avg)
            lls.append(avg * total)  # StepMix's: the given weights' sum (n without), whatever was drawn
            if identify_classes:
                order = _best_order(reference, replicate.predict_proba(X, Y))
                renumber = np.empty(len(order), dtype=int)
                renumber[order] = np.arange(len(order))  # the replicate's class order[k] is this fit's class k
                frame = replicate.get_parameters_df(getattr(self, "x_names_", None),
                                                    getattr(self, "y_names_", None)).reset_index()
                frame["class_no"] = renumber[frame["class_no"].to_numpy()]
                frame["rep"] = rep
                frames.append(frame.set_index(_INDEX))
        samples = pd.concat(frames).sort_index() if identify_classes else None
        return samples, pd.DataFrame.from_dict({"LL": np.array(lls), "avg_LL": np.array(avg_lls)})

    def bootstrap_stats(self, X, Y=None, n_repetitions=1000, sample_weight=None, parametric=False,
                        progress_bar=True):
        """StepMix's summary of :meth:`bootstrap`: 'samples', 'rep_stats', and the means and
        standard deviations over the repetitions of the measurement ('mm_mean',
        'mm_std'), structural ('sm_mean', 'sm_std') and class weight ('cw_mean',
        'cw_std'; not for covariates) parameters, one column per class."""
        samples, stats = self.bootstrap(X, Y, n_repetitions=n_repetitions, sample_weight=sample_weight,
                                        parametric=parametric, progress_bar=progress_bar)
        index = ["model_name", "param", "variable"]
        mm = _rows(samples, "measurement", False)
        result = {"samples": samples, "rep_stats": stats, "mm_mean": _pivot(mm, index),
                  "mm_std": _pivot(mm, index, "std")}
        if self._sm is not None:
            sm = _rows(samples, "structural", False)
            result["sm_mean"], result["sm_std"] = _pivot(sm, index), _pivot(sm, index, "std")
        if not self._conditional:
            cw = _rows(samples, "measurement", True)
            result["cw_mean"], result["cw_std"] = _pivot(cw, ["param"]), _pivot(cw, ["param"], "std")
        return result

    def _fresh(self, X, Y, seed) -> StepMix:
        """A copy of this estimator fitted on (X, Y) from its own start, seeded by ``seed``."""
        import warnings

        from .._core.errors import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return type(self)(**{**self.get_params(deep=False), "random_state": seed, "verbose": 0,
                                 "progress_bar": 0}).fit(X, Y)

    def _refit(self, X, Y, weights) -> StepMix:
        """A copy refitted on rows of the given weights, from this fit."""
        import copy
        import warnings

        from .._core.errors import ConvergenceWarning

        replicate = copy.deepcopy(self)
        first = copy.deepcopy(self._mm)  # (after one step: the joint fit's, as near a start as any)
        first.set_params(warm_start=True, verbose=0)
        with warnings.catch_warnings(), relative_tolerance(self._settings().rel_tol):
            warnings.simplefilter("ignore", ConvergenceWarning)
            first.fit(X, sample_weight=weights)
            replicate._mm, replicate._sm = first, None
            if self._sm is not None and Y is not None:  # (a sampler without outcomes draws none)
                replicate._sm = copy.deepcopy(self._sm).set_params(measurement=first).fit(X, Y, sample_weight=weights)
                replicate._mm = replicate._sm.measurement_
        replicate.weights_ = np.asarray(replicate._mm.weights_, dtype=np.float64).copy()
        return replicate

    # ------------------------------------------------------------------ inference
    def _rows(self, X):
        """X for the measurement model: a DataFrame's values where the parameters were set
        without column names (:meth:`set_parameters`), as StepMix reads either."""
        width = np.shape(X)[1] if np.ndim(X) == 2 else None  # files: their columns are checked by name
        if width is not None and width != self.measurement_in_:
            raise DataError(f"X has {width} features, but StepMix is expecting {self.measurement_in_} features as "
                            "input.")
        if frame_columns(X) is not None and not hasattr(self._mm, "feature_names_in_"):
            return native_frame(X).to_numpy(dtype=np.float64, na_value=np.nan)
        names = getattr(self._mm, "feature_names_in_", None)
        if isinstance(X, (list, tuple)) and names is not None:
            X = np.asarray(X)  # rows as lists, which StepMix reads as an array
        if isinstance(X, np.ndarray) and names is not None and X.ndim == 2 and X.shape[1] == len(names):
            # StepMix reads an array's columns as the fitted frame's, in order, and says
            # nothing: the measurement model, fitted on names, would warn of their absence
            import pandas as pd

            return pd.DataFrame(X, columns=list(names), copy=False)
        return X

    def predict_proba_class(self, X, Y=None):
        """P(class | X), or P(class | X, Y) given the structural columns."""
        self._check_fitted()
        X = self._rows(X)
        if Y is None:
            return self._mm.predict_proba(X)
        self._check_structural()
        return self._sm.predict_proba(X, Y)

    def predict_class(self, X, Y=None):
        """The most likely class of each row given X (and the structural columns Y, if given)."""
        return self.predict_proba_class(X, Y).argmax(axis=1)

    def predict_proba(self, X, Y=None):
        """P(class | X), or P(class | X, Y): :meth:`predict_proba_class`, as StepMix's."""
        return self.predict_proba_class(X, Y)

    def predict(self, X, Y=None):
        """The most likely class of each row: :meth:`predict_class`, as StepMix's."""
        return self.predict_class(X, Y)

    def _check_structural(self) -> None:
        if self._sm is None:
            raise ParameterError("this StepMix was fitted without Y: it has no structural model to score Y with")

    def score(self, X, Y=None, sample_weight=None, y=None):
        """The mean log-likelihood of the rows (of X, or of X and Y), weighted by
        ``sample_weight``."""
        self._check_fitted()
        Y = y if Y is None else Y
        X = self._rows(X)
        values = self._mm.score_samples(X) if Y is None else (self._check_structural() or self._sm.score_samples(X, Y))
        return float(np.average(values, weights=sample_weight))

    def _total(self, X, Y) -> tuple[float, int]:
        n = int(np.shape(X)[0])
        return -2.0 * self.score(X, Y) * n, n

    def bic(self, X, Y=None):
        """-2 log L + p log n of X (and Y: the joint model's likelihood), lower is better (StepMix's)."""
        fit, n = self._total(X, Y)
        return fit + self.n_parameters * np.log(n)

    def aic(self, X, Y=None):
        """-2 log L + 2 p of X (and Y), lower is better (StepMix's)."""
        fit, _ = self._total(X, Y)
        return fit + 2 * self.n_parameters

    def caic(self, X, Y=None):
        """Bozdogan's consistent AIC, -2 log L + p (log n + 1), of X (and Y) (StepMix's)."""
        fit, n = self._total(X, Y)
        return fit + self.n_parameters * (np.log(n) + 1)

    def sabic(self, X, Y=None):
        """StepMix's formula, p log(n (n + 2) / 24): the estimators' own ``sabic`` is
        Sclove's, p log((n + 2) / 24), as Mplus and LatentGOLD compute it."""
        fit, n = self._total(X, Y)
        return fit + self.n_parameters * np.log(n * ((n + 2) / 24))

    def entropy(self, X, Y=None):
        """The posteriors' entropy, -sum_i sum_c P(c | row) log P(c | row), of X (and Y) (StepMix's)."""
        resp = np.clip(self.predict_proba_class(X, Y), 1e-15, 1 - 1e-15)
        return float(-np.sum(resp * np.log(resp)))

    def relative_entropy(self, X, Y=None):
        """1 - entropy / (n log K): the classes' separation, 1 when every row is certain (NaN for K = 1)."""
        K = self.n_components_
        return 1 - self.entropy(X, Y) / (np.shape(X)[0] * np.log(K)) if K > 1 else np.nan



class StepMixClassifier(StepMix):
    """StepMix's supervised classifier (``stepmix.stepmix.StepMixClassifier``): a
    :class:`StepMix` whose binary or categorical outcome is the target, so that
    ``predict(X)`` and ``predict_proba(X)`` infer Y from X (:meth:`StepMix.predict_Y`,
    :meth:`StepMix.predict_proba_Y`), as scikit-learn's classifiers do.

    Parameters
    ----------
    n_components, n_steps, measurement, structural, assignment, correction, abs_tol, rel_tol, max_iter, n_init, save_param_init, init_params, random_state, verbose, progress_bar, measurement_params, structural_params
        As :class:`StepMix`'s; ``structural`` names the outcome's model, binary or
        categorical ('binary', 'bernoulli', 'categorical', 'multinoulli', or their
        '_nan' versions).
    """

    # no scikit-learn classifier, as StepMix's is not: it has no classes_ (its outcome's codes
    # are its classes), so scikit-learn's classifier scorers and folds would fail on it; its
    # predict serves the "accuracy" scorer as StepMix's does
    _TARGETS = ("binary", "binary_nan", "bernoulli", "bernoulli_nan", "categorical", "categorical_nan", "multinoulli",
                "multinoulli_nan")

    def fit(self, X, Y=None, sample_weight=None, y=None):
        """Fit as :meth:`StepMix.fit`; the structural model must be the binary or
        categorical outcome to predict."""
        if self.structural not in self._TARGETS:
            raise ParameterError(f"StepMixClassifier predicts a binary or categorical outcome: structural must be one "
                                 f"of {list(self._TARGETS)}; got {self.structural!r}")
        return super().fit(X, Y, sample_weight=sample_weight, y=y)

    def predict(self, X):
        """The most likely value of the outcome given X (StepMix's shape)."""
        return self.predict_Y(X)

    def predict_proba(self, X):
        """P(y | X) of the outcome, StepMix's columns (see :meth:`StepMix.predict_proba_Y`)."""
        return self.predict_proba_Y(X)

def _typed(draws: np.ndarray, descriptor) -> np.ndarray:
    """Draws in the dtype StepMix's ``sample`` gives them: integers from a binary or
    categorical model, floats otherwise (a nested model's columns together)."""
    discrete = isinstance(descriptor, str) and _MODEL_NAMES.get(descriptor, "").removesuffix("_nan") in (
        "binary", "categorical")
    return draws.astype(np.int64) if discrete else draws


def _names(data) -> list[str] | None:
    """A DataFrame's column names or a Series' name, as StepMix keeps them (else None)."""
    if hasattr(data, "columns"):
        return list(data.columns)
    if hasattr(data, "name") and hasattr(data, "to_numpy"):
        return [data.name]
    return None


def _long(model_name: str, params: dict, names, width: int, intercept: bool = True, label: str | None = None):
    """One emission model's parameters in StepMix's long form: a row per (param, class,
    variable), as its emission models write them (``label``: the model_name written, a
    nested block's key; the model's own name by default)."""
    import pandas as pd

    names = list(names) if names is not None else [f"feature_{i}" for i in range(width)]
    K = next(v for v in params.values() if np.ndim(v) > 0).shape[0]
    rows = []

    def add(key, values, variables):
        for k in range(K):
            rows.extend(dict(model_name=label or model_name, param=key, class_no=k, variable=v, value=values[k, j])
                        for j, v in enumerate(variables))

    base = model_name.removesuffix("_nan")
    if base == "categorical":
        M = params["max_n_outcomes"]
        expanded = [f"{name}_{i}" for name in names for i in range(M)]
        keep = (params["pis"] > _PADDING).any(axis=0)  # StepMix drops the outcomes no class has
        add("pis", params["pis"][:, keep], [v for v, kept in zip(expanded, keep) if kept])
    elif base == "covariate":
        add("beta", params["beta"], (["intercept"] if intercept else []) + names)
    elif base in ("gaussian_full", "gaussian_tied"):
        add("means", params["means"], names)
        cov = params["covariances"]
        cov = np.tile(cov, (K, 1, 1)) if base == "gaussian_tied" else cov
        for k in range(K):
            rows.extend(dict(model_name=label or model_name, param=f"cov_{row}", class_no=k, variable=col,
                             value=cov[k, r, c])
                        for r, row in enumerate(names) for c, col in enumerate(names))
    elif base == "gaussian_spherical":
        add("means", params["means"], names)
        add("covariances", np.tile(params["covariances"], (len(names), 1)).T, names)
    else:
        for key in [k for k in ("pis", "means", "covariances") if k in params]:
            add(key, params[key], names)
    return pd.DataFrame.from_records(rows)


def _rows(df, model: str, weights: bool):
    """The rows of one model, the class weights' rows alone (``weights``) or without them,
    by masks: the frame keeps StepMix's row order, which is not sorted for ``.loc``."""
    level = df.index.get_level_values
    chosen = (level("model") == model) & ((level("model_name") == "class_weights") == weights)
    return df[chosen].droplevel("model")


def _pivot(df, index: list[str], aggfunc: str = "mean"):
    import pandas as pd

    return pd.pivot_table(df, columns="class_no", values="value", index=index, aggfunc=aggfunc)


def _padded(probabilities: list[np.ndarray], categories: list | None = None) -> tuple[np.ndarray, int, int]:
    """StepMix's categorical layout: each column's probabilities in a block of the widest
    column's width, padded with StepMix's clip; the width; the total of outcomes. StepMix
    reads a code as a position (its ``max_one_hot``): a column of codes ``categories``
    (say answers 1..5) has max code + 1 outcomes, the codes it never saw among them, so
    each probability goes to its code's place (categories that are not non-negative
    integers keep their order)."""
    K = probabilities[0].shape[0]
    positions = [np.arange(p.shape[1]) for p in probabilities]
    if categories is not None and all(_codes(c) for c in categories):
        positions = [np.asarray(c, dtype=np.float64).astype(np.int64) for c in categories]
    outcomes = [int(pos.max()) + 1 if pos.size else 0 for pos in positions]
    width = max(outcomes)
    blocks = []
    for p, pos in zip(probabilities, positions):
        block = np.full((K, width), _PADDING)
        block[:, pos] = p
        blocks.append(block)
    return np.concatenate(blocks, 1), width, sum(outcomes)


def _codes(categories) -> bool:
    """Whether a column's categories are non-negative integer codes (StepMix's input)."""
    values = np.asarray(categories)
    if values.dtype.kind not in "iuf" or not values.size:
        return False
    return bool(np.all(values >= 0) and np.all(values == np.round(values)))


def _measurement_parameters(mm, s) -> dict:
    name = type(mm).__name__
    if name == "BernoulliMixture":
        return {"pis": mm.probabilities_.copy()}
    if name == "CategoricalMixture":
        pis, width, total = _padded(mm.probabilities_, mm.categories_)
        return {"max_n_outcomes": width, "total_outcomes": total, "pis": pis}
    out = {"means": mm.means_.copy(), "covariances": mm.covariances_.copy()}
    if not s.measurement.endswith("_nan"):
        out["precisions_cholesky"] = mm.precisions_cholesky_.copy()
    return out


@dataclass(frozen=True)
class _Block:
    """One block of a descriptor: its key (None for a single model's string), StepMix's
    model name, and its columns."""

    name: str | None
    model: str
    columns: range


def _without_outcomes(params: dict, model: str, where: str) -> dict:
    """A categorical model's arguments less StepMix's ``max_n_outcomes`` and
    ``total_outcomes``: where either is None or absent, StepMix infers both from the codes,
    as bigem does. Both given pad each column to them in StepMix, which bigem does not."""
    if not model.startswith(("categorical", "multinoulli")):
        return params
    outcomes = {k: params.pop(k) for k in ("max_n_outcomes", "total_outcomes") if k in params}
    if len(outcomes) == 2 and None not in outcomes.values():
        raise ParameterError(f"{where}: bigem infers each categorical column's outcomes from its codes, as StepMix "
                             "does where max_n_outcomes or total_outcomes is None; it does not pad the columns to "
                             f"given ones ({outcomes}): drop one or both")
    return params


def _refuse_unmodelled_gaps(descriptor, Y) -> None:
    """NaN in Y's columns whose model is not a '_nan' one is refused, as StepMix refuses it
    (bigem's structural model would take it as a gap): the advice names the '_nan'
    models (see ``_stepmix_words``)."""
    from ..sources.validate import raise_not_finite

    frame = native_frame(Y)
    if isinstance(Y, str) or hasattr(frame, "columns") and not hasattr(frame, "to_numpy"):
        return  # columns of X's files: read with X, where the structural model checks them
    try:
        y = np.asarray(frame.to_numpy(dtype=np.float64, na_value=np.nan) if hasattr(frame, "to_numpy")
                       and hasattr(frame, "columns") else frame, dtype=np.float64)
    except (TypeError, ValueError):
        return  # not numbers: the structural model names what it holds
    y = y.reshape(len(y), -1)
    if isinstance(descriptor, str):
        columns = [] if descriptor.endswith("_nan") else list(range(y.shape[1]))
    else:
        columns = [j for b in _blocks(descriptor) if not b.model.endswith("_nan") for j in range(b.columns.start,
                                                                                                  b.columns.stop)]
    columns = [j for j in columns if j < y.shape[1]]
    gaps = np.isnan(y[:, columns]) if columns else np.zeros((len(y), 0), bool)
    if gaps.any():
        row, at = np.argwhere(gaps)[0]
        raise_not_finite(int(gaps.sum()), 0, int(row), "Y", column=int(columns[at]))


def _blocks(descriptor, role: str = "", known: dict | None = None, width: int | None = None) -> list[_Block]:
    """The blocks of a StepMix descriptor: a string is one block over every column
    (``width`` of them); a dict (a nested descriptor) gives each key's model and
    ``n_columns``, in order. A model not in ``known``, or a block's argument that bigem
    does not read, is a ParameterError naming it."""
    if isinstance(descriptor, str):
        return [_Block(None, descriptor, range(width or 0))]
    out, start = [], 0
    for key, item in descriptor.items():
        if not isinstance(item, dict) or "model" not in item or "n_columns" not in item:
            raise ParameterError(f"{role} block {key!r} must be a dict with a 'model' and an 'n_columns' key (StepMix's "
                                 f"nested descriptor); got {item!r}")
        model, n = item["model"], item["n_columns"]
        if known is not None and model not in known:
            raise ParameterError(f"{role} block {key!r} is a {model!r} model, which has no bigem counterpart in a "
                                 f"nested {role} descriptor; it takes one of {', '.join(repr(k) for k in known)}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ParameterError(f"{role} block {key!r}: n_columns must be an int >= 1; got {n!r}")
        rest = _without_outcomes(dict(item), model, f"{role} block {key!r}")
        extra = sorted(set(rest) - {"model", "n_columns", "method", "max_iter", "tol", "integer_codes"})
        if extra:
            raise ParameterError(f"{role} block {key!r}: bigem does not read {extra} (a block takes 'model', "
                                 "'n_columns' and its model's arguments)")
        if item.get("integer_codes", True) is not True:
            raise ParameterError(f"{role} block {key!r}: bigem reads categories as integer codes only "
                                 "(integer_codes=True, StepMix's default); pass the codes, not one-hot columns")
        if item.get("method", "newton-raphson") != "newton-raphson":
            raise ParameterError(f"{role} block {key!r}: bigem's covariate model takes Newton-Raphson steps only "
                                 "(method='newton-raphson', StepMix's default)")
        out.append(_Block(str(key), model, range(start, start + int(n))))
        start += int(n)
    if sum(b.model == "covariate" for b in out) > 1:
        raise ParameterError("Only one covariate model should be used in an entire StepMix estimator, be it in the "
                             "measurement or the structural model and including in nested models.")
    return out


def _by_block(descriptor, params: dict) -> list[tuple[_Block, dict]]:
    """Each block of a descriptor with its parameters (a nested dict's entry, or the
    whole dict of a single model)."""
    if isinstance(descriptor, str):
        return [(_Block(None, descriptor, range(0)), params)]
    return [(b, params[b.name]) for b in _blocks(descriptor)]


def _nested(est, descriptor) -> dict:
    """StepMix's parameters of a MixedMixture or StructuralModel fitted for ``descriptor``:
    one model's dict, or a nested descriptor's {block: dict}."""
    if isinstance(descriptor, str):
        return _block_parameters(est, descriptor, range(len(est.families_)))
    return {b.name: _block_parameters(est, b.model, b.columns) for b in _blocks(descriptor)}


def _block_parameters(est, model: str, columns: range) -> dict:
    """StepMix's dict of one block (``columns`` of the model's columns) of a MixedMixture
    or StructuralModel: its attributes list each family's columns in order."""
    base = _MODEL_NAMES[model].removesuffix("_nan")
    families = est.families_

    def among(group: tuple[str, ...]) -> list[int]:
        order = [j for j, f in enumerate(families) if f in group]
        return [order.index(j) for j in columns]

    if base in ("gaussian_diag", "gaussian_unit"):
        g = among(("gaussian", "gaussian_unit"))
        out = {"means": est.means_[:, g].copy()}
        if base == "gaussian_unit" and _MODEL_NAMES[model].endswith("_nan"):  # StepMix's unit variances, listed
            out["covariances"] = np.ones_like(out["means"])
        if base == "gaussian_diag":
            out["covariances"] = est.covariances_[:, g].copy()
            if not model.endswith("_nan"):
                out["precisions_cholesky"] = 1.0 / np.sqrt(out["covariances"])
        return out
    if base == "binary":
        return {"pis": est.bernoulli_probabilities_[:, among(("bernoulli",))].copy()}
    if base == "categorical":
        chosen = among(("categorical",))
        categories = getattr(est, "categories_", None)
        pis, width, total = _padded([est.probabilities_[i] for i in chosen],
                                    None if categories is None else [categories[i] for i in chosen])
        return {"max_n_outcomes": width, "total_outcomes": total, "pis": pis}
    coef = est.coef_[:, among(("covariate",))]
    return {"beta": np.c_[est.intercept_, coef] if est.intercept else coef.copy()}


def _count(params: dict, model: str, K: int) -> float:
    """A block's free parameters, StepMix's count."""
    base = _MODEL_NAMES[model].removesuffix("_nan")
    if base == "gaussian_unit":
        return params["means"].size
    if base == "gaussian_diag":
        return 2 * params["means"].size
    if base == "binary":
        return params["pis"].size
    if base == "categorical":
        return K * (params["total_outcomes"] - params["pis"].shape[1] // params["max_n_outcomes"])
    return (K - 1) * params["beta"].shape[1]


def _frame(descriptor, params: dict, names, width: int, intercept: bool = True):
    """StepMix's long frame of one model's parameters: a nested descriptor's blocks one
    after another, each named by its key and its own columns' names."""
    import pandas as pd

    if isinstance(descriptor, str):
        return _long(_MODEL_NAMES[descriptor], params, names, width, intercept)
    names = list(names) if names is not None else [f"feature_{i}" for i in range(width)]
    return pd.concat([_long(_MODEL_NAMES[b.model], params[b.name], names[b.columns.start:b.columns.stop],
                            len(b.columns), intercept, label=b.name) for b in _blocks(descriptor)])


def _set(what: str, descriptor: str, build):
    """``build()``, its ParameterError or NumericalError (arrays that do not make a valid
    model) as one that names the parameters set."""
    from .._core.errors import ModelFileError, NumericalError

    kind = repr(descriptor) if isinstance(descriptor, str) else "nested"
    try:
        return build()
    except KeyError as exc:
        raise ParameterError(f"params[{what!r}] lacks {exc}, which StepMix's {kind} model holds") from None
    except (ParameterError, NumericalError, ModelFileError, ValueError) as exc:
        reason = str(exc).replace("invalid parameters: ", "")
        raise ParameterError(f"params[{what!r}] do not make a valid {kind} model: {reason}") from None


def _measurement_from(mm, s, weights, given: dict, width: int):
    """The measurement mixture ``mm`` (unfitted) holding StepMix's parameters: the class
    weights and ``given`` (its ``get_parameters()['measurement']``) over ``width`` columns."""
    from ..sources.schema import Schema

    name = type(mm).__name__

    def build():
        mm.weights_ = np.asarray(weights, dtype=np.float64)
        if name == "MixedMixture":
            _mixed_from(mm, s.measurement, given)
        elif name == "BernoulliMixture":
            mm.probabilities_ = np.asarray(given["pis"], dtype=np.float64)
        elif name == "CategoricalMixture":  # each column StepMix's max_n_outcomes wide, its padding kept
            codes = np.arange(int(given["max_n_outcomes"]))
            mm._schema_ = Schema(("category",) * width, tuple(codes for _ in range(width)), "error", name,
                                 gaps=mm.missing_values == "fiml")
            mm._probabilities_ = np.asarray(given["pis"], dtype=np.float64)
        else:
            mm.means_, mm.covariances_ = (np.asarray(given[k], dtype=np.float64) for k in ("means", "covariances"))
        params = mm._from_attributes(mm._settings())
        if mm._centres(params).shape[1] != width:
            raise ParameterError(f"they have {mm._centres(params).shape[1]} columns but measurement_in is {width}")
        mm._set_fitted(params, width, None)
        mm.converged_, mm.n_iter_, mm.n_passes_, mm.lower_bound_ = False, 0, 0, -np.inf
        mm.lower_bounds_, mm.history_ = [], []
        return mm

    return _set("measurement", s.measurement, build)


def _mixed_from(mm, descriptor: dict, given: dict) -> None:
    """A MixedMixture's fitted arrays and column kinds from a nested descriptor's
    parameters ({block: StepMix's dict}): each family's columns in order, a categorical
    block's columns its max_n_outcomes wide."""
    from ..sources.schema import Schema
    from .mixed_mixture import FAMILIES

    K = len(mm.weights_)
    kinds, categories = [], []
    means, variances, binary, categorical = [], [], [], []
    for b in _blocks(descriptor):
        family, values = _MIXED_MEASUREMENT[b.model], given[b.name]
        kinds += [FAMILIES[family]] * len(b.columns)
        codes = np.arange(int(values["max_n_outcomes"])) if family == "categorical" else None
        categories += [codes] * len(b.columns)
        if family == "gaussian":
            means.append(np.asarray(values["means"], dtype=np.float64))
            variances.append(np.asarray(values["covariances"], dtype=np.float64))
        elif family == "bernoulli":
            binary.append(np.asarray(values["pis"], dtype=np.float64))
        else:
            categorical.append(np.asarray(values["pis"], dtype=np.float64))
    joined = lambda arrays: np.concatenate(arrays, 1) if arrays else np.zeros((K, 0))  # noqa: E731
    mm._schema_ = Schema(tuple(kinds), tuple(categories), "error", "MixedMixture", gaps=mm.missing_values == "fiml")
    mm.means_, mm.covariances_ = joined(means), joined(variances)
    mm.bernoulli_probabilities_, mm._probabilities_, mm.lambdas_ = joined(binary), joined(categorical), np.zeros((K, 0))


def _structural_from(sm, s, given: dict, width: int):
    """The StructuralModel ``sm`` (over a measurement model already set) holding StepMix's
    structural parameters ``given`` over ``width`` columns of Y."""
    from .structural import structural_from

    K = len(sm.measurement.weights_)

    def build():
        families, sizes, gaps = [], [], set()
        parts: dict[str, list] = {}
        intercepts = []
        for b, values in _by_block(s.structural, given):
            family, n = _STRUCTURAL[b.model], len(b.columns) if b.name is not None else width
            families += [family] * n
            if b.model.endswith("_nan"):
                gaps.add(family)
            if family in ("gaussian", "gaussian_unit"):
                means = np.asarray(values["means"], dtype=np.float64)
                parts.setdefault("means_", []).append(means)
                parts.setdefault("covariances_", []).append(
                    np.ones_like(means) if family == "gaussian_unit" else values["covariances"])
            elif family == "bernoulli":
                parts.setdefault("bernoulli_probabilities_", []).append(values["pis"])
            elif family == "categorical":
                sizes += [int(values["max_n_outcomes"])] * n
                parts.setdefault("_flat_probabilities_", []).append(values["pis"])
            else:
                beta = np.asarray(values["beta"], dtype=np.float64)
                lead = int(bool(sm.intercept))
                parts.setdefault("coef_", []).append(beta[:, lead:])
                intercepts.append(beta[:, 0] if lead else np.zeros(K))
        arrays = {attr: np.concatenate([np.asarray(v, dtype=np.float64) for v in values], 1)
                  for attr, values in parts.items()}
        if intercepts:
            arrays["intercept_"] = intercepts[0]  # one covariate block at most (_blocks)
        return structural_from(sm, families, arrays, sizes, gaps)

    return _set("structural", s.structural, build)


def _report(model, X, Y, sample_weight) -> list[str]:
    """The lines of StepMix's report (``stepmix.utils.print_report``)."""
    import pandas as pd

    s = model._settings()
    K, n = model.n_components, int(np.shape(X)[0])
    mean = model.score(X, Y, sample_weight=sample_weight)
    ll = mean * (np.sum(sample_weight) if sample_weight is not None else n)
    params = model.get_parameters()
    indent = " " * 10  # StepMix's parameter tables: two indents of five spaces

    def table(descriptor, values: dict, names, width: int) -> list[str]:
        """A model's parameter table, or a nested descriptor's, one per block, each followed
        by blank lines (StepMix's ``Nested.print_parameters``)."""
        if isinstance(descriptor, str):
            return block(_MODEL_NAMES[descriptor], values, names, width, None)
        names = list(names) if names is not None else [f"feature_{i}" for i in range(width)]
        return [line for b in _blocks(descriptor) for line in
                block(_MODEL_NAMES[b.model], values[b.name], names[b.columns.start:b.columns.stop], len(b.columns),
                      b.name) + ["\n"]]

    def block(name: str, values: dict, names, width: int, label) -> list[str]:
        df = _long(name, values, names, width, intercept=bool(getattr(model._sm, "intercept", True)), label=label)
        flipped = name in ("gaussian_full", "gaussian_tied")  # StepMix prints these by class
        index, columns = (["class_no", "param"], ["model_name", "variable"]) if flipped else \
            (["param", "variable"], ["model_name", "class_no"])
        text = pd.pivot_table(df, index=index, columns=columns, values="value").round(4).to_string()
        return [indent + text.replace("\n", "\n" + indent)]

    rule, inner = "=" * 80, "    " + "=" * 76
    lines = [rule, "MODEL REPORT", rule, inner, "    Measurement model parameters", inner]
    lines += table(s.measurement, params["measurement"], getattr(model, "x_names_", None), model.measurement_in_)
    if model._sm is not None:
        lines += [inner, "    Structural model parameters", inner]
        lines += table(s.structural, params["structural"], getattr(model, "y_names_", None), model.structural_in_)
    lines += [inner, "    Class weights", inner]
    lines += [f"        Class {i + 1} : {w:.2f}" for i, w in enumerate(model.weights_)]
    lines += [inner, f"    Fit for {K} latent classes", inner, f"    Estimation method             : {s.n_steps}-step"]
    if s.n_steps == 3:
        lines += [f"    Correction method             : {s.correction}",
                  f"    Assignment method             : {s.assignment}"]
    lines += [f"    Number of observations        : {n}",
              f"    Number of latent classes      : {K}",
              f"    Number of estimated parameters: {model.n_parameters}",
              f"    Log-likelihood (LL)           : {ll:.4f}",
              f"    -2LL                          : {-2 * ll:.4f}",
              f"    Average LL                    : {mean:.4f}",
              f"    AIC                           : {model.aic(X, Y):.2f}",
              f"    BIC                           : {model.bic(X, Y):.2f}",
              f"    CAIC                          : {model.caic(X, Y):.2f}",
              f"    Sample-Size Adjusted BIC      : {model.sabic(X, Y):.2f}",
              f"    Entropy                       : {model.entropy(X, Y):.4f}",
              f"    Scaled Relative Entropy       : {model.relative_entropy(X, Y):.4f}"]
    return lines


# StepMix's words when the best start did not converge (bigem's fits use scikit-learn's)
_NOT_CONVERGED = ("Initializations did not converge. Try different init parameters, or increase max_iter, abs_tol, "
                  "rel_tol or check for degenerate data.")


# bigem's advice for gaps, and StepMix's: its models take gaps in their '_nan' variants
_FIML_ADVICE = "pass missing_values='fiml' (bigem: --missing fiml)"
_NAN_MODELS = "use the models' '_nan' variants (e.g. 'binary_nan', 'categorical_nan', 'gaussian_diag_nan')"


@contextlib.contextmanager
def _stepmix_words(calls: int = 1):
    """The fit's warnings as StepMix gives them: its ConvergenceWarning in StepMix's words
    (which name its parameters, abs_tol and rel_tol, not tol), pointing at the caller of
    ``StepMix.fit`` (``calls`` frames above the block's own); none for rows with every value missing (StepMix takes them silently,
    as bigem takes them: their posterior is the class weights); every other warning as it
    was. A refusal of gaps gives StepMix's fix."""
    from .._core.errors import ConvergenceWarning, EmptyRowWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except DataError as exc:
            if _FIML_ADVICE not in str(exc):
                raise
            raise DataError(str(exc).replace(_FIML_ADVICE, _NAN_MODELS)) from None
    for w in caught:
        if issubclass(w.category, EmptyRowWarning):
            continue
        if issubclass(w.category, ConvergenceWarning) and str(w.message).startswith("Best performing initialization"):
            warnings.warn(_NOT_CONVERGED, w.category, stacklevel=3 + calls)  # past this manager and fit
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
