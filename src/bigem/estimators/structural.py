"""Stepwise estimators of a latent class model's structural part: distal outcomes and
covariates related to classes fixed from the measurement model first (StepMix's
``n_steps=2, 3`` with ``correction=None, 'BCH', 'ML'``; Mplus's and LatentGOLD's
three-step methods).

The façade only: it fits (or takes) the measurement model, then streams X and Y together
(``sources.beside``), each chunk's rows turned into their K measurement terms as they are
read, and hands those terms and the structural columns to the model of
``models.structural`` and the EM driver. A few passes check Y, find the classification
error and the start; nothing of size n is held.
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import torch

from .._core.errors import (ConvergenceWarning, DataError, DegenerateFitWarning, NumericalError, ParameterError,
                            convergence_warning, not_fitted_error)
from .._core.draws import numpy_draws
from .._core.protocols import Task
from ..em.driver import fit_em
from ..em.init import from_random_responsibilities
from ..engines.local import LocalEngine
from ..models.bernoulli import BernoulliComponent
from ..models.categorical import PROBABILITY_FLOOR, CategoricalComponent
from ..models.gaussian import GaussianComponent
from ..models.mixture import MixtureModel, MixtureParams, check_unexplained, first_unexplained
from ..models.poisson import PoissonComponent
from ..models.product import Part, ProductComponent, ProductParams
from ..models.structural import (CovariateComponent, FixedTerms, OffsetComponent, assignments, classification_error,
                                 error_sums)
from . import _params
from ._base import EstimatorBase

# family -> the part it forms (StepMix's names read too; its bare 'gaussian' is unit variance)
_ALIASES = {"gaussian": "gaussian", "gaussian_diag": "gaussian", "continuous": "gaussian",
            "gaussian_unit": "gaussian_unit", "bernoulli": "bernoulli", "binary": "bernoulli",
            "categorical": "categorical", "multinoulli": "categorical", "poisson": "poisson",
            "covariate": "covariate"}
# StepMix's names of the same families with missing values (bigem's take them whenever Y has gaps)
_ALIASES.update({f"{name}_nan": family for name, family in list(_ALIASES.items()) if family != "covariate"})
_ORDER = ("gaussian", "gaussian_unit", "categorical", "bernoulli", "poisson", "covariate")
# One step's measurement start (other than StepMix's drawn one) stops where scikit-learn's
# fits stop by default: it only places the joint fit, which converges at the model's own
# tol. Run to tol=1e-10 instead, the start can take 1000 iterations on a flat likelihood
# and leave the joint fit further from its optimum (154 joint iterations against 37, on
# StepMix's data_bakk_complex with a k-means start).
_START_TOL = 1e-3


class StructuralModel(EstimatorBase):
    """The structural part of a latent class model, estimated after its measurement part.

    The measurement model (any bigem mixture: :class:`BernoulliMixture`,
    :class:`CategoricalMixture`, :class:`GaussianMixture`, :class:`MixedMixture`, ...)
    defines the classes from the indicators X. The structural model relates them to other
    columns Y: distal outcomes, p(y | class), or covariates, p(class | z), a multinomial
    logit. Estimating both at once lets the outcome redefine the classes; these estimators
    fix the classes from X first:

    - ``n_steps=1``: EM on the whole likelihood p(x, y), every parameter free (the
      outcome does redefine the classes here). A measurement model with
      ``init_params='random'`` (and no given parameters but weights) starts as StepMix
      does: per restart (its ``n_init``), one table of random responsibilities over
      every row, one M-step of every part on it, uniform class weights (or those
      given), covariate coefficients drawn as StepMix draws them; the same path and fit
      as StepMix's. Otherwise it starts from a short fit of the measurement model (to
      scikit-learn's default tol, 1e-3), or from the given fitted one, and the
      structural model's start from it;
    - ``n_steps=2``: EM on the whole likelihood p(x, y) with the measurement parameters
      and class weights held fixed (Bakk & Kuha 2018). A covariate model whose
      measurement model is fitted here starts as StepMix's does: per restart (the
      measurement model's ``n_init``), coefficients drawn from its ``random_state``
      (normal, sd 1e-3); given a fitted measurement model, once, from a Newton step on
      its posteriors. So does ML's three;
    - ``n_steps=3``: each row is assigned a class from its posterior given X (``assignment``),
      and the structural model is estimated from the assignments:

      - ``correction=None`` (naive): the assignments as responsibilities; biased towards
        no association, as assignments misclassify;
      - ``'BCH'`` (Bolck, Croon & Hagenaars 2004; Vermunt 2010): the assignments times
        D^-1, where D[c, s] = P(assigned s | class c) is the classification error; these
        weights may be negative;
      - ``'ML'`` (Vermunt 2010; Bakk, Tekle & Vermunt 2013): EM in which the assigned
        class is an indicator of the class with the fixed error D.

    These are StepMix's estimators (``StepMix(n_steps=..., correction=..., assignment=...)``),
    and give its estimates: the class weights stay the measurement model's in every step,
    as StepMix holds them; the covariate model takes StepMix's Newton-Raphson step.
    The one-step model of a distal outcome is a :class:`MixedMixture` over X and Y.

    X streams (any input the measurement model reads: arrays, DataFrames, Parquet/CSV/.npy
    files, ...), and Y with it, row for row: an array beside X, or columns of X's files
    read with its rows. Each pass computes the rows' K measurement log-densities as it
    reads them, so memory stays bounded by a chunk whatever the number of rows.

    Parameters
    ----------
    measurement : bigem mixture
        The measurement model. Fitted already, it is used as it is (the first step done);
        otherwise a copy is fitted on X by :meth:`fit` (``measurement_``).
    structural : str, list or dict, default='gaussian'
        The family of each column of Y: 'gaussian' (mean and variance per class; StepMix's
        'gaussian_diag'), 'gaussian_unit' (unit variance, StepMix's 'gaussian'),
        'bernoulli', 'categorical' (integer codes 0, 1, ...), 'poisson', or 'covariate'
        (the class's logit is linear in the column). One string for every column, a list
        with one per column, or a dict {column name or position: family}.
    n_steps : {1, 2, 3}, default=3
    correction : {None, 'BCH', 'ML'}, default=None
        Three steps only: none (naive), BCH or ML (see above).
    assignment : {'modal', 'soft'}, default='modal'
        Three steps: each row's most likely class (one-hot), or its posterior.
    intercept : bool, default=True
        Whether the covariate model has an intercept per class.
    reg_covar : float, default=1e-6
        Added to the variances of 'gaussian' columns (StepMix's and scikit-learn's default).
    alpha : float >= 0, default=0.0
        Pseudo-counts of the 'categorical' and 'bernoulli' columns (0: maximum likelihood,
        as StepMix fits). 'poisson' columns take maximum likelihood whatever alpha says:
        pseudo-events without pseudo-rows are an improper prior whose MAP has no maximum
        (see :class:`PoissonMixture`).
    tol : float, default=1e-10
        Convergence threshold on the change of the mean log-likelihood (StepMix's
        ``abs_tol``); for the covariate model of the naive and BCH steps, on the largest
        change of a coefficient.
    max_iter : int, default=1000
        Maximum iterations of the structural fit.
    accelerate : {None, 'squarem'}, default=None
        'squarem': extrapolate along the EM path of the two-step and ML estimators
        (SQUAREM, Varadhan & Roland 2008), to the same optimum in fewer passes over X and
        Y when EM is slow (poorly separated classes: 2.5x to 6x fewer in the tests); a
        step that would lower the log-likelihood is replaced by the plain EM step.
        ``max_iter`` and ``n_iter_`` then count passes. The one-step likelihood, whose
        classes move too, is left to plain EM: there the extrapolation can leave the
        mode EM climbs.

    Attributes
    ----------
    measurement_ : the fitted measurement model
    weights_ : ndarray of shape (n_components,)
        The class weights, the measurement model's (fixed in every step).
    families_ : list of str
        The family of each column of Y.
    structural_names_ : list of str or None
        The names of Y's columns (a DataFrame's, or the names given), else None.
    means_, covariances_ : ndarray of shape (n_components, n_gaussian)
        The 'gaussian' and 'gaussian_unit' columns, in their order.
    probabilities_ : list of ndarray
        One (n_components, n_categories) array per categorical column.
    bernoulli_probabilities_ : ndarray of shape (n_components, n_bernoulli)
    lambdas_ : ndarray of shape (n_components, n_poisson)
    coef_ : ndarray of shape (n_components, n_covariates)
    intercept_ : ndarray of shape (n_components,)
        The covariate model: class c's logit is intercept_[c] + coef_[c] . z. Softmax
        leaves a common shift free; the fit's rows sum to 0 over the classes. Subtract a
        reference class's row to read log odds against it.
    classification_error_ : ndarray of shape (n_components, n_components)
        D[c, s] = P(assigned s | class c) of three-step fits (None for two steps).
    lower_bound_ : float
        The mean log-likelihood of the last EM iteration (two steps and ML: of x and y, or
        of x given the covariates); NaN for the naive and BCH steps, which do no EM.
    n_iter_, converged_ : int, bool
    """

    _constraints = dict(
        measurement=_params.Passed(), structural=_params.Passed(), n_steps=_params.Int(1, 3),
        correction=_params.Optional(_params.Choice(("BCH", "ML"))), assignment=_params.Choice(("modal", "soft")),
        intercept=_params.Flag(), reg_covar=_params.Float(0.0), alpha=_params.Float(0.0), tol=_params.Float(0.0),
        max_iter=_params.Int(1, at_most=_params.MAX_ITER), accelerate=_params.Optional(_params.Choice(("squarem",))),
    )

    # what a model file holds (persistence): the published arrays, D (empty without three
    # steps), and the measurement model as the file's part
    _fitted_arrays = {"weights_": "weights", "means_": "means", "covariances_": "covariances",
                      "_flat_probabilities_": "probabilities", "bernoulli_probabilities_": "bernoulli_probabilities",
                      "lambdas_": "lambdas", "coef_": "coef", "intercept_": "intercept",
                      "_error_": "classification_error"}

    def __init__(self, measurement=None, structural="gaussian", *, n_steps=3, correction=None, assignment="modal",
                 intercept=True, reg_covar=1e-6, alpha=0.0, tol=1e-10, max_iter=1000, accelerate=None):
        self.measurement = measurement
        self.structural = structural
        self.n_steps = n_steps
        self.correction = correction
        self.assignment = assignment
        self.intercept = intercept
        self.reg_covar = reg_covar
        self.alpha = alpha
        self.tol = tol
        self.max_iter = max_iter
        self.accelerate = accelerate

    # ------------------------------------------------------------------ fitting
    def fit(self, X, Y, sample_weight=None, *, columns=None):
        """Fit the measurement model on X (unless it is fitted), then the structural model
        of Y by the chosen steps. Y: an array or DataFrame (n_samples, n_columns), or the
        name (or list of names) of columns of X (a DataFrame, or Parquet/CSV files, whose
        columns then stream with X's), which the measurement model then leaves out.
        ``columns`` selects X's features by name, as the measurement model's ``fit`` does."""
        s = self._settings()
        if s.n_steps != 3 and s.correction is not None:
            raise ParameterError(f"correction={s.correction!r} applies to three steps; with n_steps={s.n_steps} leave "
                                 "it None")
        if s.accelerate is not None and not (s.n_steps == 2 or s.correction == "ML"):
            raise ParameterError(f"accelerate={s.accelerate!r} applies to the EM of two steps and of ML three steps; "
                                 f"with n_steps={s.n_steps} and correction={s.correction!r} leave it None")
        y, names, rest = _as_columns(Y, "Y", X)
        weight = _weights(sample_weight, None if y is None else y.shape[0])  # refused before any fit reads X
        if rest is not None and columns is None and not hasattr(self.measurement, "feature_names_in_"):
            # Y names columns of X: the measurement model reads the others (a model fitted
            # on named columns reads those)
            columns = [c for c in rest if c != weight]
        drawn = s.n_steps == 1 and _drawn_start(self.measurement)
        measurement = self._measurement(X, sample_weight, columns, start=s.n_steps == 1, reader=drawn)
        families = _families(s.structural, names, len(names) if y is None else y.shape[1])
        sizes, gaps, means = _survey(y, X, families, names)
        rows = _Rows(measurement, X, columns, y, names, weight)
        K = rows.K
        model = self._model(K, families, sizes, s, gaps=gaps)
        log_w = torch.as_tensor(np.log(measurement.weights_), dtype=torch.float64)
        conditional = "covariate" in families  # the covariates give the class probabilities
        error = None
        if s.n_steps == 3:
            sums = torch.zeros(K, K, dtype=torch.float64)
            for chunk in rows.beside(lambda lj: lj).chunks():
                resp = torch.softmax(chunk.x[:, :K], 1)
                sums += error_sums(resp, assignments(resp, s.assignment), chunk.weight)
            error = classification_error(sums)
        # the rows' fixed term: given responsibilities (naive, BCH) or a log-density per class
        kind = "joint" if s.n_steps < 3 else {None: "naive", "BCH": "bch", "ML": "ml"}[s.correction]
        given = kind in ("naive", "bch")
        source = rows.beside(FixedTerms(kind, log_w, conditional, s.assignment, error))
        if s.correction == "BCH":
            _check_admissible(source, K, families, names, sizes, means)
        engine = LocalEngine(prefetch=source.decodes)
        start = self._start(model, engine, source if given else rows.beside(lambda lj: torch.softmax(lj, 1)), K,
                            means)
        if s.n_steps == 1:
            params, measurement, result = self._one_step(measurement, rows, start, families, sizes, s, conditional,
                                                         gaps, drawn)
        elif given:
            params, result = self._given(model, engine, source, start, families, s, gaps)
        else:
            initialise, n_init, generator = (lambda restart: start), 1, None
            if conditional and not hasattr(self.measurement, "weights_"):
                # StepMix's flow (the measurement fitted here, as StepMix fits it): its EM with
                # the measurement held draws the coefficients anew at each restart; a model
                # fitted beforehand (a bootstrap's replicate) starts from its posteriors
                generator = _params.draws(getattr(self.measurement, "random_state", None))
                n_init = int(getattr(self.measurement, "n_init", 1))

                def initialise(restart: int) -> MixtureParams:
                    return MixtureParams(start.weights, _drawn_covariates(model, start.component, generator))

            best, _ = fit_em(model, engine, source, initialise, n_init=n_init, max_iter=s.max_iter, tol=s.tol,
                             accelerate=s.accelerate)
            if generator is not None:
                generator.settle()
            params, result = best.params, (best.n_iter, best.converged, best.lower_bound)
        return self._take_fit(model, params, result, families, measurement, names, gaps, error)

    def _take_fit(self, model, params, result, families, measurement, names, gaps, error=None):
        """Take the fit's parameters and the measurement model they stand beside; ``result``:
        (n_iter, converged, lower bound); ``error``: the three steps' classification error."""
        self.measurement_, self._gaps, self.structural_names_ = measurement, gaps, names
        self._error_ = np.zeros((0, 0)) if error is None else error.numpy().copy()
        self._fitted_model, self._fitted_params = model, params
        # the weights the fitted measurement model holds (one step's are the joint fit's)
        self._conditional = "covariate" in families  # the covariates give the class probabilities
        self._log_w = torch.as_tensor(np.log(measurement.weights_), dtype=torch.float64)
        self.n_iter_, self.converged_, self.lower_bound_ = result
        self._publish(model, params, families, measurement)
        return self

    def fit_given(self, resp, Y, sample_weight=None):
        """The structural model of Y on given class probabilities ``resp`` (n, K), the
        measurement model as fitted: the naive third step's M-step on the caller's
        responsibilities (StepMix's ``m_step_structural``, which its users call with their
        own assignments or corrections). Y in memory (an array or DataFrame)."""
        from ..sources.arrays import TensorSource
        from ..sources.beside import Beside

        s = self._settings()
        measurement = self.measurement
        if not hasattr(measurement, "weights_"):
            raise not_fitted_error("fit_given takes the structural model's responsibilities beside a fitted "
                                   "measurement model: fit it first (StepMix: em(X) before m_step_structural)")
        if isinstance(Y, str) or isinstance(Y, (list, tuple)) and Y and isinstance(Y[0], str):
            raise DataError("fit_given reads Y in memory: pass its values (an array or DataFrame), not column names")
        y, names, _ = _as_columns(Y, "Y")
        K = int(np.asarray(measurement.weights_).shape[0])
        r = np.asarray(resp, dtype=np.float64)
        if r.ndim != 2 or r.shape != (y.shape[0], K):
            raise DataError(f"resp has shape {r.shape}; give one probability per class ({K}) for each of Y's "
                            f"{y.shape[0]} rows")
        if not np.isfinite(r).all():
            raise DataError("resp holds NaN or infinite values; give each row's class probabilities")
        weight = _weights(sample_weight, y.shape[0])
        families = _families(s.structural, names, y.shape[1])
        sizes, gaps, means = _survey(y, None, families, names)
        model = self._model(K, families, sizes, s, gaps=gaps)
        given = TensorSource(torch.from_numpy(r.copy()), weight, 65536)
        source = Beside(given, lambda chunk: chunk.x.double(), K, y, names=names)
        engine = LocalEngine()
        start = self._start(model, engine, source, K, means)
        params, result = self._given(model, engine, source, start, families, s, gaps)
        return self._take_fit(model, params, result, families, measurement, names, gaps)

    def _one_step(self, measurement, rows, start, families, sizes, s, conditional, gaps, drawn: bool):
        """Every parameter at once: EM over [X as the measurement model reads it | Y],
        streamed. ``drawn``: from StepMix's start, each of the measurement model's
        ``n_init`` restarts one M-step of every part on a table of random
        responsibilities (:func:`_drawn_start`); else from the measurement model's fit
        and the structural start. Returns the structural parameters (in the stepwise
        model's form), a copy of the measurement model holding the joint fit's
        measurement parameters, and (n_iter, converged, lower bound)."""
        mmodel, mparams = rows.model, rows.params.to("cpu")
        K = mparams.n_components
        first = Part("measurement", mmodel.component, tuple(range(rows.width)))
        joint = self._model(K, families, sizes, s, first=first, fixed_weights=conditional, gaps=gaps)
        weights = torch.ones(K, dtype=torch.float64) if conditional else mparams.weights
        data = rows.rows()
        engine = LocalEngine(prefetch=data.decodes)
        if drawn:
            m = self.measurement
            generator = _params.draws(m.random_state)
            if conditional:  # the covariates give the class probabilities
                start_weights = weights
            elif m.weights_init is not None:
                start_weights = _params.check_weights_init(m.weights_init, K)
            else:
                start_weights = torch.full((K,), 1.0 / K, dtype=torch.float64)
            centre = _first_rows_centre(joint, data)

            def initialise(restart: int) -> MixtureParams:
                table = from_random_responsibilities(joint, engine, data, generator, centre)
                return MixtureParams(start_weights, _drawn_covariates(joint, table.component, generator))

            n_init = m.n_init
        else:
            point = MixtureParams(weights, ProductParams((mparams.component, *start.component.parts[1:])))
            initialise, n_init = (lambda restart: point), 1
        best, _ = fit_em(joint, engine, data, initialise, n_init=n_init, max_iter=s.max_iter, tol=s.tol)
        if drawn:
            generator.settle()
        fitted = copy.deepcopy(measurement)
        inner = best.params.component.parts[0]
        if conditional:  # StepMix's weights_: the rows' mean class posterior (the covariates give each row's prior)
            # of the last E-step, whose M-step gave the parameters, as StepMix's M-step sets them
            stats = best.stats if best.stats is not None else engine.reduce(Task(joint, "e_step", (best.params,)), data)
            n_k = stats.component.n_k
            own = MixtureParams((n_k / n_k.sum()).cpu(), inner)
        else:
            own = MixtureParams(best.params.weights, inner)
        fitted._set_fitted(mmodel.translate(own, rows.source.shift), measurement.n_features_in_,
                           getattr(measurement, "feature_names_in_", None))
        # its fit is the joint one: a start's (or a given fit's) record would describe other parameters
        fitted.n_iter_ = fitted.n_passes_ = best.n_iter
        fitted.converged_ = best.converged
        fitted.lower_bound_ = np.float64(_mean_log_likelihood(mmodel, own, rows.source))
        fitted.lower_bounds_, fitted.history_ = [float(fitted.lower_bound_)], []
        params = MixtureParams(start.weights, ProductParams((start.component.parts[0],
                                                            *best.params.component.parts[1:])))
        return params, fitted, (best.n_iter, best.converged, best.lower_bound)

    def _measurement(self, X, sample_weight, columns, start: bool = False, reader: bool = False):
        """The measurement model, fitted on X unless it is. Where the fit is only the
        ``start`` of one step's joint fit, it stops at ``_START_TOL`` and its
        ConvergenceWarning is not raised: the joint fit, the only one StepMix runs, says
        whether the answer converged. A ``reader`` (one step from a drawn start) is one
        iteration, whose parameters nothing uses: the fit only learns how the model reads
        X (its columns, categories and coordinates), from a copy of a RandomState, which
        the joint start then draws from as StepMix does."""
        m = self.measurement
        if m is None or not hasattr(m, "_log_joint_rows"):
            raise ParameterError(f"measurement must be a bigem mixture (BernoulliMixture, CategoricalMixture, "
                                 f"GaussianMixture, MixedMixture, ...); got {m!r}")
        if hasattr(m, "weights_"):
            return m
        params = m.get_params(deep=False)
        if start and "tol" in params:
            params["tol"] = max(params["tol"], _START_TOL)
        if reader:
            params.update(max_iter=1, n_init=1, random_state=copy.deepcopy(params["random_state"]))
        fitted = type(m)(**params)
        with warnings.catch_warnings():
            if start:
                warnings.simplefilter("ignore", ConvergenceWarning)
            return fitted.fit(X, sample_weight=sample_weight, columns=columns)

    def _model(self, K: int, families: list[str], sizes: dict[int, int], s, first: Part | None = None,
               fixed_weights: bool = True, gaps: set[str] = frozenset()) -> MixtureModel:
        """A mixture over [the leading columns | Y]: ``first``, the part of the leading
        columns (default: the K fixed terms, with weights fixed at one), then one part per
        family over its columns of Y; the families in ``gaps`` marginalise their missing
        values (full-information maximum likelihood, StepMix's ``*_nan`` models)."""
        dt = torch.float64
        advice = "check the structural columns, or raise reg_covar" if "gaussian" in families else "check Y"
        first = Part("measurement", OffsetComponent(K, dt), tuple(range(K))) if first is None else first
        lead = len(first.columns)
        parts = [first]
        for family in _ORDER:
            cols = tuple(lead + j for j, f in enumerate(families) if f == family)
            if not cols:
                continue
            g = family in gaps
            if family == "gaussian":
                component = GaussianComponent("diag", s.reg_covar, dt, advice=advice, gaps=g)
            elif family == "gaussian_unit":
                component = GaussianComponent("diag", 0.0, dt, advice=advice, gaps=g)
                component.letters = "m"  # the means move; the unit variances of the start stay
            elif family == "categorical":
                # floored as in the mixtures: a share BCH clips to 0 would give its rows no density
                component = CategoricalComponent([sizes[c - lead] for c in cols], 1.0 + s.alpha, dt, advice=advice,
                                                 floor=PROBABILITY_FLOOR, gaps=g)
            elif family == "bernoulli":
                component = BernoulliComponent(s.alpha, dt, advice=advice, gaps=g)
            elif family == "poisson":
                component = PoissonComponent(0.0, 0.0, dt, advice=advice, gaps=g)  # ML: see alpha
            else:
                component = CovariateComponent(len(cols), s.intercept, dt)
            parts.append(Part(family, component, cols))
        return MixtureModel(ProductComponent(parts, dt, advice=advice), K, dt, advice, fixed_weights=fixed_weights)

    def _start(self, model, engine, source, K: int, means: torch.Tensor) -> MixtureParams:
        """One M-step from the responsibilities in the first K columns of ``source``'s
        rows: the posteriors given X (the naive soft estimate), or the three-step's given
        ones; covariate coefficients from 0, Gaussian variances from 1. The point it steps
        from has each class's mean of the structural columns, a gap counted at its
        column's ``means`` (over the rows that observe it)."""
        product = model.component
        fill = torch.cat([torch.zeros(K, dtype=torch.float64), means])
        sums, mass_total = None, torch.zeros(K, dtype=torch.float64)
        for chunk in source.chunks():
            rows = torch.where(torch.isnan(chunk.x), fill, chunk.x)
            mass = rows[:, :K] if chunk.weight is None else rows[:, :K] * chunk.weight[:, None]
            part = mass.T @ product.embed(rows)
            sums = part if sums is None else sums + part
            mass_total += mass.sum(0)
        centres = sums / mass_total.clamp_min(1e-300)[:, None]
        point = MixtureParams(torch.ones(K, dtype=torch.float64), product.at(centres))
        stats = engine.reduce(Task(model, "e_step_given", (point,), {"resp_fn": _leading(K)}), source)
        return model.m_step(stats, point).params

    def _given(self, model, engine, source, start, families, s, gaps):
        """The naive and BCH steps: the structural M-step on given responsibilities, once.
        A covariate model repeats its Newton step on them, and a Gaussian column with gaps
        its M-step (which fills a gap with the class's mean so far), until the parameters
        settle: the maximum of sum_n sum_c r_nc log p(y_n | c) given the responsibilities."""
        K = start.n_components
        if "covariate" not in families and not gaps & {"gaussian", "gaussian_unit"}:
            return start, (1, True, math.nan)
        params = start
        for n_iter in range(2, s.max_iter + 1):
            stats = engine.reduce(Task(model, "e_step_given", (params,), {"resp_fn": _leading(K)}), source)
            new = model.m_step(stats, params).params
            moved = float((model.flatten(new) - model.flatten(params)).abs().max())
            params = new
            if moved < max(s.tol, 1e-12):
                return params, (n_iter, True, math.nan)
        warnings.warn(f"The structural M-step on the given responsibilities did not settle in max_iter={s.max_iter} "
                      "iterations; increase max_iter or tol, or check the covariates for separation",
                      convergence_warning(), stacklevel=3)
        return params, (s.max_iter, False, math.nan)

    # ------------------------------------------------------------------ attributes
    def _publish(self, model, params, families, measurement) -> None:
        K = params.n_components
        got = {part.name: p for part, p in zip(model.component.parts, params.component.parts)}
        self.families_ = list(families)
        self.weights_ = np.asarray(measurement.weights_, dtype=np.float64).copy()
        gaussian = [got[f] for f in ("gaussian", "gaussian_unit") if f in got]
        order = [j for f in ("gaussian", "gaussian_unit") for j, g in enumerate(families) if g == f]
        means = np.concatenate([g.means.numpy() for g in gaussian], 1) if gaussian else np.zeros((K, 0))
        variances = np.concatenate([g.covariances.numpy() for g in gaussian], 1) if gaussian else np.zeros((K, 0))
        in_order = np.argsort(order) if order else slice(None)  # the columns in Y's order
        self.means_, self.covariances_ = means[:, in_order], variances[:, in_order]
        c = got.get("categorical")
        sizes = [] if c is None else [part.component.sizes for part in model.component.parts
                                      if part.name == "categorical"][0]
        self._flat_probabilities_ = np.zeros((K, 0)) if c is None else c.probabilities.numpy().copy()
        self.probabilities_ = [] if c is None else np.split(self._flat_probabilities_, np.cumsum(sizes)[:-1], 1)
        b = got.get("bernoulli")
        self.bernoulli_probabilities_ = b.probabilities.numpy().copy() if b is not None else np.zeros((K, 0))
        p = got.get("poisson")
        self.lambdas_ = p.rates.numpy().copy() if p is not None else np.zeros((K, 0))
        cov = got.get("covariate")
        if cov is None:
            self.coef_, self.intercept_ = np.zeros((K, 0)), np.zeros(K)
        else:
            coef = cov.coef.numpy().copy()
            intercept = self.intercept
            self.coef_ = coef[:, 1:] if intercept else coef
            self.intercept_ = coef[:, 0] if intercept else np.zeros(K)

    @property
    def classification_error_(self) -> np.ndarray | None:
        """D[c, s] = P(assigned s | class c) of a three-step fit; None for one or two steps."""
        error = getattr(self, "_error_", None)
        return None if error is None or not error.size else error

    # ------------------------------------------------------------------ model files
    def save(self, path) -> None:
        """Write the fitted model to ``path`` (safetensors + JSON, atomically): its settings,
        its structural parameters, and its measurement model as a part; ``bigem.load``
        reads it back."""
        from .persistence import save

        self._check_fitted()
        save(self, path)

    def _parts(self) -> list:
        return [self.measurement_]

    def _fitted_state(self) -> dict:
        return {"families_": list(self.families_), "sizes": [int(p.shape[1]) for p in self.probabilities_],
                "gaps": sorted(self._gaps), "n_iter_": int(self.n_iter_), "converged_": bool(self.converged_),
                "structural_names_": None if self.structural_names_ is None else [str(n) for n in
                                                                                  self.structural_names_],
                "lower_bound_": None if math.isnan(self.lower_bound_) else float(self.lower_bound_)}

    def _restore(self, state: dict) -> None:
        from .._core.errors import ModelFileError

        raise ModelFileError("a StructuralModel file holds its measurement model as a part, and this one has none")

    def _restore_parts(self, state: dict, parts: list) -> None:
        """The fitted model from a file: the measurement model (its part), the structural
        parameters from the arrays, checked as a fit leaves them."""
        from .._core.errors import ModelFileError

        stored = _params.Stored(state)
        s = self._settings()
        families = stored.strings("families_")
        if not families or any(f not in _ORDER for f in families):
            raise ModelFileError(f"families_ must name families among {list(_ORDER)}; got {families}")
        if len(parts) != 1 or not hasattr(parts[0], "_log_joint_rows"):
            raise ModelFileError(f"a StructuralModel holds one measurement mixture; found "
                                 f"{[type(p).__name__ for p in parts]}")
        measurement = parts[0]
        K = int(np.shape(measurement.weights_)[0])
        sizes = [int(v) for v in stored.numbers("sizes")]
        categorical = [j for j, f in enumerate(families) if f == "categorical"]
        if len(sizes) != len(categorical) or any(m < 1 for m in sizes):
            raise ModelFileError(f"sizes must give each of the {len(categorical)} categorical columns its categories")
        gaps = set(stored.strings("gaps", []))
        model = self._model(K, families, dict(zip(categorical, sizes)), s, gaps=gaps)
        params = MixtureParams(torch.ones(K, dtype=torch.float64),
                               ProductParams(tuple(self._stored_part(part, families, sizes, K)
                                                   for part in model.component.parts)))
        error = np.asarray(self._error_)
        if error.size and error.shape != (K, K):
            raise ModelFileError(f"classification_error has shape {error.shape}; expected ({K}, {K})")
        self.measurement_, self._fitted_model, self._fitted_params = measurement, model, params
        self._conditional = "covariate" in families
        self._log_w = torch.as_tensor(np.log(measurement.weights_), dtype=torch.float64)
        self._gaps = gaps
        self.structural_names_ = stored.strings("structural_names_", None)
        if self.structural_names_ is not None and len(self.structural_names_) != len(families):
            raise ModelFileError(f"structural_names_ names {len(self.structural_names_)} columns for "
                                 f"{len(families)} families")
        self.n_iter_, self.converged_ = stored.count("n_iter_"), stored.flag("converged_")
        # the naive and BCH steps do no EM: no lower bound (NaN), which JSON holds as null
        self.lower_bound_ = math.nan if state.get("lower_bound_") is None else stored.number("lower_bound_")
        self._publish(model, params, families, measurement)

    def _stored_part(self, part: Part, families: list[str], sizes: list[int], K: int):
        """One part's parameters from the stored arrays (a ParameterError when they do
        not fit the families: ``load`` names the file)."""
        name, component = part.name, part.component
        if name == "measurement":
            return component.make_params()
        width = len(part.columns)
        position = [j for j, f in enumerate(families) if f in ("gaussian", "gaussian_unit")]
        own = [position.index(c - K) for c in part.columns] if name.startswith("gaussian") else None
        arrays = {"gaussian": lambda: (self.means_[:, own], self.covariances_[:, own]),
                  "gaussian_unit": lambda: (self.means_[:, own], self.covariances_[:, own]),
                  "categorical": lambda: (self._flat_probabilities_,),
                  "bernoulli": lambda: (self.bernoulli_probabilities_,),
                  "poisson": lambda: (self.lambdas_,),
                  "covariate": lambda: (np.c_[self.intercept_, self.coef_] if self.intercept else self.coef_,)}
        try:
            values = [torch.as_tensor(np.asarray(v, dtype=np.float64)) for v in arrays[name]()]
        except IndexError:
            raise ParameterError(f"the stored {name} parameters do not have the columns the families name") from None
        expected = {"categorical": sum(sizes), "covariate": width + self.intercept}.get(name, width)
        if any(v.shape != (K, expected) for v in values):
            raise ParameterError(f"the stored {name} parameters have shape {tuple(values[0].shape)}; expected "
                                 f"({K}, {expected})")
        if name in ("categorical", "bernoulli") and bool(((values[0] < 0) | (values[0] > 1)).any()):
            raise ParameterError(f"the stored {name} probabilities are not all in [0, 1]")
        if name == "poisson" and bool((values[0] < 0).any()):
            raise ParameterError("the stored Poisson rates are not all >= 0")
        return component.make_params(*values)

    def _parameters(self) -> dict[str, np.ndarray]:
        """The fitted parameters by attribute name, those of the fitted families only
        (a list's arrays one by one: ``probabilities_[0]``, ...)."""
        out = {"weights_": self.weights_}
        gaussian = any(f == "gaussian" for f in self.families_)
        names = {"means_": gaussian or "gaussian_unit" in self.families_, "covariances_": gaussian,
                 "bernoulli_probabilities_": "bernoulli" in self.families_, "lambdas_": "poisson" in self.families_,
                 "coef_": "covariate" in self.families_, "intercept_": "covariate" in self.families_ and self.intercept}
        out.update({name: np.array(getattr(self, name), dtype=np.float64) for name, kept in names.items() if kept})
        out.update({f"probabilities_[{j}]": np.array(p, dtype=np.float64) for j, p in enumerate(self.probabilities_)})
        return out

    def bootstrap(self, X, Y, *, n_boot: int = 100, method: str = "nonparametric", random_state=None, columns=None,
                  sample_weight=None):
        """Bootstrap standard errors and percentile intervals of the fitted parameters
        (:class:`bigem.BootstrapResult`). Each replicate refits the measurement model
        from its fit and then the structural steps on the rows drawn with replacement
        (``"nonparametric"``) or given Exp(1) weights (``"weighted"``), so the errors
        include the first step's uncertainty. X and Y stream each replicate as in ``fit``."""
        from .bootstrap import structural_bootstrap

        return structural_bootstrap(self, X, Y, n_boot=n_boot, method=method, random_state=random_state,
                                    columns=columns, sample_weight=sample_weight)

    def permute_classes(self, perm) -> StructuralModel:
        """Renumber the classes: class k becomes the fitted class ``perm[k]``, in the
        measurement model (``measurement_``, a copy) and the structural model alike."""
        self._check_fitted()
        perm = _permutation(perm, len(self.weights_))
        self.measurement_ = permuted_mixture(self.measurement_, perm)
        model, params = self._fitted_model, self._fitted_params
        tensors = {name: value[perm] for name, value in model.component.to_tensors(params.component).items()}
        self._fitted_params = MixtureParams(params.weights, model.component.from_tensors(tensors))
        self._log_w = self._log_w[perm]
        if self._error_.size:
            self._error_ = self._error_[np.ix_(perm, perm)]
        self._publish(model, self._fitted_params, self.families_, self.measurement_)
        return self

    # ------------------------------------------------------------------ sampling
    def sample(self, n_samples=1, *, labels=None, random_state=None):
        """Draw rows from the fitted model: (X, Y, labels). Each row's class is drawn from
        the class weights (or given: ``labels``, one class 0..K-1 per row), then its
        indicators from the measurement model and its outcomes from the structural model,
        given the class. A covariate model cannot be sampled: it gives p(class | z), not a
        distribution of z (draw the covariates, then the classes from ``predict_proba``)."""
        self._check_fitted()
        if self._conditional:
            raise ParameterError("a covariate model gives p(class | z), not a distribution of the covariates z, so it "
                                 "cannot be sampled: draw the covariates yourself, then each row's class from "
                                 "predict_proba")
        generator = _params.draws(random_state)
        labels = class_draws(self.weights_, n_samples, labels, generator)
        drawn = measurement_draws(self.measurement_, labels, generator), self._outcome_draws(labels, generator)
        generator.settle()
        return (*drawn, labels.numpy())

    def _outcome_draws(self, labels: torch.Tensor, generator: torch.Generator) -> np.ndarray:
        """Y for rows of the given classes (n,): each family's part drawn given the class."""
        model, params = self._fitted_model, self._fitted_params
        K = params.n_components
        out = np.empty((labels.shape[0], len(self.families_)), dtype=np.float64)
        for part, q in zip(model.component.parts[1:], params.component.parts[1:]):
            out[:, [c - K for c in part.columns]] = part.component.sample(q, labels, generator).cpu().double().numpy()
        return out

    # ------------------------------------------------------------------ inference
    def __sklearn_is_fitted__(self) -> bool:  # scikit-learn's check_is_fitted (a Pipeline's predict asks it)
        return hasattr(self, "_fitted_params")

    def _check_fitted(self) -> None:
        if not hasattr(self, "_fitted_params"):
            raise not_fitted_error(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with X and Y "
                                 "before using this estimator.")

    def _log_joint(self, X, Y, columns=None) -> torch.Tensor:
        """(n, K) log w_c + log p(x | c) + the structural log-density of each row (with
        covariates: log p(x | c) + log p(c | z)), X and Y streamed together."""
        self._check_fitted()
        y, names, _ = _as_columns(Y, "Y", X)
        width = len(names) if y is None else y.shape[1]
        if width != len(self.families_):
            raise DataError(f"Y has {width} columns but the model was fitted with {len(self.families_)}")
        rows = _Rows(self.measurement_, X, columns, y, names, None, passes=1)
        source = rows.beside(FixedTerms("joint", self._log_w, self._conditional))
        model = self._inference_model(rows.K)
        blocks = [model.log_joint(self._fitted_params, chunk.x) for chunk in source.chunks()]
        joint = torch.cat(blocks) if blocks else torch.zeros(0, rows.K, dtype=torch.float64)
        unread = torch.isnan(joint).any(1)
        if bool(unread.any()):  # a covariate has no density to marginalise over
            raise DataError(f"Y has a missing value (NaN) in a covariate column at row {int(unread.int().argmax())}: "
                            "the covariates give the class probabilities and cannot be missing; fill or drop the row")
        return joint

    def _inference_model(self, K: int):
        """The fitted model with every structural family but the covariates taking a
        missing value of Y (NaN) as missing, whether or not the fit's Y had any: a row's
        class then rests on what it observed, as the fit's would (the model built for a
        Y without gaps computed NaN there, and predict gave class 0). On complete rows it
        gives the same numbers."""
        families = list(self.families_)
        categorical = [j for j, f in enumerate(families) if f == "categorical"]
        sizes = dict(zip(categorical, (int(np.shape(p)[1]) for p in self.probabilities_)))
        return self._model(K, families, sizes, self._settings(), gaps=set(families) - {"covariate"})

    def predict_proba(self, X, Y, *, columns=None) -> np.ndarray:
        """P(class | x, y) of each row, (n, n_components): the measurement and the structural
        model together (with covariates: given x and z)."""
        return torch.softmax(self._log_joint(X, Y, columns), 1).numpy()

    def predict(self, X, Y, *, columns=None) -> np.ndarray:
        """The most likely class of each row given x and y."""
        return self._log_joint(X, Y, columns).argmax(1).numpy()

    def score_samples(self, X, Y, *, columns=None) -> np.ndarray:
        """log p(x, y) of each row (with covariates: log p(x | z))."""
        return torch.logsumexp(self._log_joint(X, Y, columns), 1).numpy()

    def score(self, X, Y, *, columns=None) -> float:
        """The mean log-likelihood of the rows (:meth:`score_samples` averaged)."""
        return float(self.score_samples(X, Y, columns=columns).mean())


def structural_from(model: StructuralModel, families: list[str], arrays: dict, sizes: list[int] = (),
                    gaps: set[str] = frozenset()) -> StructuralModel:
    """``model``, whose ``measurement`` is fitted, holding the structural parameters
    ``arrays`` (by attribute: 'means_', 'covariances_', '_flat_probabilities_',
    'bernoulli_probabilities_', 'lambdas_', 'coef_', 'intercept_') of the ``families``:
    checked as a model file's are, and ready to predict, score and sample."""
    measurement = model.measurement
    K = len(measurement.weights_)
    empty = np.zeros((K, 0))
    held = {"weights_": measurement.weights_, "means_": empty, "covariances_": empty, "_flat_probabilities_": empty,
            "bernoulli_probabilities_": empty, "lambdas_": empty, "coef_": empty, "intercept_": np.zeros(K),
            "_error_": np.zeros((0, 0)), **arrays}
    for attr, value in held.items():
        setattr(model, attr, np.asarray(value, dtype=np.float64))
    state = {"families_": list(families), "sizes": list(sizes), "gaps": sorted(gaps), "n_iter_": 0,
             "converged_": False, "structural_names_": None, "lower_bound_": None}
    model._restore_parts(state, [measurement])
    return model


def class_draws(weights, n_samples, labels, generator: torch.Generator) -> torch.Tensor:
    """Each row's class (n,) int64: ``n_samples`` drawn from the class weights, or the
    classes given (``labels``, each in 0..K-1; then ``n_samples`` is their number)."""
    K = len(weights)
    if labels is not None:
        given = np.asarray(labels)
        if given.ndim != 1 or not given.size or not np.issubdtype(given.dtype, np.number) or np.any(
                given != np.round(given)) or given.min() < 0 or given.max() >= K:
            raise ParameterError(f"labels must be a 1-D array of classes 0..{K - 1}, one per row to draw; got "
                                 f"{given.tolist() if given.size < 10 else given.shape}")
        return torch.from_numpy(given.astype(np.int64))
    _params.check_n_samples(n_samples)
    _params.check_sample_size(int(n_samples), 1)
    return torch.multinomial(torch.as_tensor(weights, dtype=torch.float64), int(n_samples), replacement=True,
                             generator=generator)


def measurement_draws(mixture, labels: torch.Tensor, generator: torch.Generator) -> np.ndarray:
    """Rows of a fitted bigem mixture for the given components (n,), in the data's own
    values (category codes decoded)."""
    s = mixture._inference_settings()
    params = mixture._fitted()
    _params.check_sample_size(labels.shape[0], mixture.n_features_in_)
    x = mixture._model(s).component.sample(params.component, labels, generator)
    return mixture._decoded(x.cpu().double().numpy())


def _permutation(perm, K: int) -> np.ndarray:
    perm = np.asarray(perm)
    if perm.shape != (K,) or sorted(perm.tolist()) != list(range(K)):
        raise ParameterError(f"perm must be a permutation of 0..{K - 1}; got {perm.tolist()}")
    return perm.astype(np.int64)


def permuted_mixture(est, perm: np.ndarray):
    """A copy of the fitted mixture ``est`` whose component k is its component
    ``perm[k]``: its fitted arrays reordered (those all components share kept), and its
    parameters rebuilt from them as user-set ones are."""
    out = copy.deepcopy(est)
    K = len(perm)
    shared = out._shared_parameters()
    for attr in out._fitted_arrays:
        value = np.asarray(getattr(out, attr))
        if attr not in shared and value.ndim and value.shape[0] == K:
            setattr(out, attr, value[perm])
    params = out._from_attributes(out._inference_settings())
    out._set_fitted(params, out.n_features_in_, getattr(out, "feature_names_in_", None))
    return out


def _check_admissible(source, K: int, families: list[str], names: list[str] | None, sizes: dict[int, int],
                      means: torch.Tensor) -> None:
    """BCH's weights may be negative, and so may the moments they give (Vermunt 2010). A
    class's negative share of a category (or of ones, or of counts) is clipped to 0 (a
    category's to the categorical floor) by the M-step, with a DegenerateFitWarning; a
    variance at or below 0 has no admissible value, and is a NumericalError. Both name
    the column and the way out. One pass over ``source``'s rows, [the BCH weights | Y]: each class's moments of a column about its
    overall ``means`` (so that no large mean cancels), over the rows that observe it;
    ``sizes``: the categorical columns' numbers of categories."""
    q = len(families)
    mass, total, first, second = (torch.zeros(K, q, dtype=torch.float64) for _ in range(4))
    counts = {j: torch.zeros(K, m, dtype=torch.float64) for j, m in sizes.items()}
    for chunk in source.chunks():
        r = chunk.x[:, :K] if chunk.weight is None else chunk.x[:, :K] * chunk.weight[:, None]
        y = chunk.x[:, K:]
        seen = ~torch.isnan(y)
        centred = torch.where(seen, y - means, torch.zeros_like(y))
        mass += r.T @ seen.double()
        total += r.T @ torch.where(seen, y, torch.zeros_like(y))
        first += r.T @ centred
        second += r.T @ centred ** 2
        for j, m in sizes.items():
            counts[j] += r[seen[:, j]].T @ torch.nn.functional.one_hot(y[seen[:, j], j].long(), m).double()
    clipped = []
    for j, family in enumerate(families):
        name = str(names[j]) if names else str(j)
        label = repr(name) if names else name
        if family in ("gaussian", "gaussian_unit"):
            shift = first[:, j] / mass[:, j]
            var = second[:, j] / mass[:, j] - shift ** 2
            if family == "gaussian" and bool((var <= 0).any()):
                raise NumericalError(
                    f"the BCH weights, some of them negative, give column {label} of Y a variance of "
                    f"{float(var.min()):.3g} in a class: the classes are too poorly separated for BCH here; use "
                    "correction='ML'")
        elif family == "categorical":
            if bool((counts[j] < 0).any()):
                clipped.append(name)
        elif family == "bernoulli":  # a class's ones out of its rows
            if bool((total[:, j] < 0).any()) or bool((total[:, j] > mass[:, j]).any()):
                clipped.append(name)
        elif family == "poisson" and bool((total[:, j] < 0).any()):
            clipped.append(name)
    if clipped:
        warnings.warn(f"the BCH weights, some of them negative, give a class a negative share of a value of the "
                      f"columns {clipped} of Y, which the estimates clip to 0: the classes are too poorly separated "
                      "for BCH here; use correction='ML', whose estimates are always admissible",
                      DegenerateFitWarning, stacklevel=3)


class _Rows:
    """X as the measurement model reads it, with Y beside it, row for row (Y in memory,
    or columns of X's files that stream with it): the passes of a structural fit.
    ``beside(terms)`` gives each row ``terms(log_joint)``, K columns computed from its
    measurement log-joint (n, K), then Y; ``rows()`` gives X's columns themselves."""

    def __init__(self, measurement, X, columns, y: np.ndarray | None, names: list[str] | None, weight,
                 passes: int = 2) -> None:
        kept = names if y is None else None
        w = weight.numpy() if isinstance(weight, torch.Tensor) else weight
        # a fit reads the rows many times: files decoded once when they fit the cache budget
        self.source, s = measurement._inference_source(X, columns, keep=kept, sample_weight=w, passes=passes)
        self.model = measurement._model(s)
        self.params = measurement._in_source_coordinates(self.model, self.source, s)
        self.K, self.width, self.dtype = self.params.n_components, self.source.n_features, s.dtype
        self.y, self.names = (y if y is not None else names), names

    def log_joint(self, chunk) -> torch.Tensor:
        """The chunk's (n, K) float64 measurement log-joints, on the host; a row no class
        explains is the measurement model's error."""
        lj = self.model.log_joint(self.params, chunk.x).double()
        check_unexplained(first_unexplained(torch.logsumexp(lj, 1), chunk.weight, chunk.row_start), self.dtype)
        return lj.cpu()

    def beside(self, terms):
        from ..sources.beside import Beside

        return Beside(self.source, lambda chunk: terms(self.log_joint(chunk)), self.K, self.y, names=self.names)

    def rows(self):
        from ..sources.beside import Beside

        return Beside(self.source, lambda chunk: chunk.x.double(), self.width, self.y, names=self.names)


def _drawn_covariates(model: MixtureModel, start: ProductParams, generator) -> ProductParams:
    """``start`` with each covariate part's coefficients drawn as StepMix's ``initialize``
    draws them, after the responsibility table and from the same numbers: normal, mean 0,
    standard deviation 1e-3 (no M-step on the table: StepMix's covariate model takes its
    first Newton step in the first iteration). Centred over the classes, as the fit keeps
    them (softmax leaves the shift free, so the path is StepMix's)."""
    rs = numpy_draws(generator)
    parts = list(start.parts)
    for i, part in enumerate(model.component.parts):
        if isinstance(part.component, CovariateComponent):
            shape = tuple(parts[i].coef.shape)
            coef = (torch.from_numpy(rs.normal(0.0, 1e-3, size=shape)) if rs is not None else
                    1e-3 * torch.randn(shape, generator=generator, dtype=torch.float64))
            parts[i] = part.component.make_params(coef - coef.mean(0))
    return ProductParams(tuple(parts))


def _drawn_start(measurement) -> bool:
    """Whether one step starts as StepMix does (its ``em``): the measurement model, not
    fitted, starts from random responsibilities (``init_params='random'``, StepMix's
    default) and no given parameters. The table is over every row; one M-step of the
    whole model on it gives each part its start, with uniform class weights. Started
    from a measurement fit instead, the joint fit can end elsewhere (on StepMix's
    data_gaussian_diag, a class's variance collapsed to reg_covar on 0/1 columns)."""
    m = measurement
    if m is None or hasattr(m, "weights_") or not hasattr(m, "_user_initialised"):
        return False
    if getattr(m, "init_params", None) != "random" or getattr(m, "warm_start", False):
        return False
    bare = type(m)(**{**m.get_params(deep=False), "weights_init": None})  # given weights are the start's weights
    return not bare._user_initialised(bare._settings())


def _mean_log_likelihood(model: MixtureModel, params: MixtureParams, source) -> float:
    """The rows' (weighted) mean log-likelihood under ``params``: one pass, read back once."""
    total = mass = None
    for chunk in source.chunks():
        ll = torch.logsumexp(model.log_joint(params.to(chunk.x.device), chunk.x).double(), 1)
        w = torch.ones_like(ll) if chunk.weight is None else chunk.weight.double()
        part, weight = (ll * w).sum(), w.sum()
        total = part if total is None else total + part.to(total.device)
        mass = weight if mass is None else mass + weight.to(mass.device)
    return float(total / mass)


def _first_rows_centre(model: MixtureModel, source, n: int = 1024) -> torch.Tensor:
    """The mean of the embedded first rows of a source that streams in order only (its
    first chunk's, gaps filled): the reference point of a start's moments."""
    from ..em.init import fill_gaps

    chunks = source.chunks()
    try:
        x = next(chunks).x[:n]
    finally:
        chunks.close()
    return model.embed(fill_gaps(x)).double().mean(0)


def _leading(K: int):
    """The responsibilities held in a chunk's first K columns (the given ones)."""
    return lambda chunk: chunk.x[:, :K]


def _as_columns(Y, what: str, X=None) -> tuple[np.ndarray | None, list[str] | None, list[str] | None]:
    """Y as an (n, q) float64 array (None where Y names columns of X's files, which
    stream with X), its column names (DataFrames and Series, or the names given), and,
    where Y names columns of X (a column name or a list of them, X a DataFrame or
    files), X's other columns (else None)."""
    if Y is None:
        raise ParameterError(f"{what} is required: the structural columns (outcomes or covariates), one row per row "
                             "of X")
    names, rest = None, None
    if isinstance(Y, str) or (isinstance(Y, (list, tuple)) and Y and all(isinstance(v, str) for v in Y)):
        from ..sources.inputs import named_columns

        names = [Y] if isinstance(Y, str) else list(Y)
        Y, rest = named_columns(X, names)
        if Y is None:  # columns of X's files: they stream with X's rows
            return None, names, rest
    elif hasattr(Y, "columns"):
        names = [str(c) for c in Y.columns]
    elif hasattr(Y, "name") and hasattr(Y, "to_numpy"):
        names = [str(Y.name)]
    try:
        y = np.asarray(Y.to_numpy() if hasattr(Y, "to_numpy") else Y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} must be numeric (categorical outcomes as integer codes 0, 1, ...): {exc}") from None
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[1] == 0 or y.shape[0] == 0:
        raise DataError(f"{what} must be a 2-D array (n_samples, n_columns) with at least one row and column; got "
                        f"shape {y.shape}")
    bad = np.argwhere(np.isinf(y))
    if bad.size:
        row, col = (int(v) for v in bad[0])
        raise DataError(f"{what} holds an infinite value at row {row}, column {col}; drop or correct the row")
    return np.ascontiguousarray(y), names, rest


def _families(structural, names: list[str] | None, width: int) -> list[str]:
    """The family of each column of Y (ParameterError naming a bad one)."""
    known = ", ".join(repr(f) for f in _ALIASES)

    def family(value, where: str) -> str:
        if value not in _ALIASES:
            raise ParameterError(f"structural{where} is {value!r}; a family is one of {known}")
        return _ALIASES[value]

    if isinstance(structural, str):
        return [family(structural, "")] * width
    if isinstance(structural, (list, tuple)):
        if len(structural) != width:
            raise ParameterError(f"structural lists {len(structural)} families but Y has {width} columns; give one "
                                 "per column, or a dict {column: family}")
        return [family(f, f"[{j}]") for j, f in enumerate(structural)]
    if isinstance(structural, dict):
        out: list[str | None] = [None] * width
        for key, value in structural.items():
            if names is not None and str(key) in names:
                j = names.index(str(key))
            elif isinstance(key, (int, np.integer)) and not isinstance(key, bool) and 0 <= int(key) < width:
                j = int(key)
            else:
                have = names if names is not None else f"positions 0..{width - 1}"
                raise ParameterError(f"structural names column {key!r}, which Y does not have; it has {have}")
            out[j] = family(value, f"[{key!r}]")
        missing = [names[j] if names else j for j, f in enumerate(out) if f is None]
        if missing:
            raise ParameterError(f"structural gives no family for the columns {missing} of Y; give one for each")
        return out
    raise ParameterError(f"structural must be a family name, a list (one per column of Y) or a dict; got "
                         f"{structural!r}")


class _ColumnCheck:
    """One column of Y read block by block: the values its family cannot take and a
    covariate's gap (DataErrors naming the column and row), whether it has gaps, its
    largest code (categorical), and its mean over the rows that observe it."""

    def __init__(self, family: str, label: str) -> None:
        self.family, self.label = family, label
        self.gaps, self.count, self.total, self.largest = False, 0, 0.0, -1

    def add(self, col: np.ndarray, row0: int) -> None:
        label, family = self.label, self.family
        inf = np.isinf(col)
        if inf.any():
            raise DataError(f"Y's {label} holds an infinite value at row {row0 + int(np.argmax(inf))}; drop or correct "
                            "the row")
        gap = np.isnan(col)
        if family == "covariate" and gap.any():
            raise DataError(f"Y's {label} is a covariate with a missing value at row {row0 + int(np.argmax(gap))}; "
                            "covariates are given, not modelled, so every row needs them: drop or impute those rows")
        self.gaps |= bool(gap.any())
        col = col[~gap]
        self.count += col.size
        self.total += float(col.sum())
        if family == "categorical":
            if np.any(col < 0) or np.any(col != np.round(col)):
                raise DataError(f"Y's {label} is categorical but holds values other than the codes 0, 1, ...; encode "
                                "its categories as integers from 0")
            self.largest = max(self.largest, int(col.max()) if col.size else -1)
        elif family == "bernoulli" and not np.all((col == 0) | (col == 1)):
            raise DataError(f"Y's {label} is bernoulli but holds values other than 0 and 1")
        elif family == "poisson" and (np.any(col < 0) or np.any(col != np.round(col))):
            raise DataError(f"Y's {label} is poisson but holds values that are not counts (integers >= 0)")

    def mean(self) -> float:
        if self.count == 0:
            raise DataError(f"Y's {self.label} has no observed value; drop it")
        return self.total / self.count


def _survey(y: np.ndarray | None, X, families: list[str], names: list[str] | None):
    """Y's columns checked, each once (in memory, or read alone from X's files): each
    categorical column's number of categories (its largest code + 1) by position, the
    families with gaps, and each column's mean over the rows that observe it."""
    checks = []
    for j, family in enumerate(families):
        check = _ColumnCheck(family, f"column {names[j]!r}" if names else f"column {j}")
        if y is not None:
            check.add(y[:, j], 0)
        else:
            from ..sources.inputs import named_column_blocks

            for values, row0 in named_column_blocks(X, names[j]):
                check.add(values, row0)
        checks.append(check)
    means = torch.tensor([c.mean() for c in checks], dtype=torch.float64)
    sizes = {j: c.largest + 1 for j, c in enumerate(checks) if c.family == "categorical"}
    return sizes, {c.family for c in checks if c.gaps}, means


def _weights(sample_weight, n: int | None) -> torch.Tensor | str | None:
    """The rows' weights: an array checked (one finite, non-negative value per row when
    ``n`` is known), or the name of a column of X, which the sources read and check."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, str):
        return sample_weight  # a column of X's files or DataFrame, read with the rows
    w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if n is not None and w.shape[0] != n:
        raise DataError(f"sample_weight has {w.shape[0]} values but X has {n} rows")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise DataError("sample_weight must be finite and non-negative")
    return torch.from_numpy(w.copy())
