"""GaussianMixture behaves as scikit-learn documents it, in the details users' code relies on:
its ConvergenceWarning class, warm starts that detect convergence across fits, a
likelihood check that ignores last-bit rounding, and the "ill-defined empirical
covariance" error when components collapse without reg_covar, for every structure."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SkBayesian
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from bigem import BayesianGaussianMixture, GaussianMixture
from bigem._core.errors import ConvergenceWarning, LikelihoodDecreaseWarning, NumericalError
from bigem._core.protocols import Objective, Step
from bigem.em.driver import run_em
from bigem.engines import LocalEngine
from bigem.sources import TensorSource
from tests.conftest import COV_TYPES, init_kwargs, make_blobs


def test_convergence_warning_is_also_sklearns():
    """scikit-learn warns with sklearn.exceptions.ConvergenceWarning when the best
    initialisation did not converge; code that filters or expects that class keeps working."""
    X, _, _ = make_blobs(0, n_per=100)
    with pytest.warns(SkConvergenceWarning, match="did not converge") as caught:
        GaussianMixture(3, max_iter=1, random_state=0).fit(X)
    assert isinstance(caught[0].message, ConvergenceWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=SkConvergenceWarning)  # a filter written for scikit-learn
        GaussianMixture(3, max_iter=1, random_state=0).fit(X)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_warm_start_detects_convergence_across_fits_as_sklearn_does(covariance_type):
    """With warm_start=True "training starts where it left off": lower_bound_ carries over,
    so successive one-iteration fits converge once the bound stops moving, on the same call
    as scikit-learn's, with the same lower bounds."""
    X, _, _ = make_blobs(1, n_per=100, d=2)
    kw = init_kwargs(X, 3, covariance_type) | dict(max_iter=1, warm_start=True)
    ours, ref = GaussianMixture(**kw, dtype="float64"), SkGaussianMixture(**kw)
    for call in range(1, 100):
        with warnings.catch_warnings(record=True) as theirs:
            warnings.simplefilter("always")
            ref.fit(X)
        with warnings.catch_warnings(record=True) as mine:
            warnings.simplefilter("always")
            ours.fit(X)
        assert ours.converged_ is ref.converged_, call  # a Python bool: it was numpy's after the first fit
        assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-9)
        assert [type(w.message).__name__ for w in mine] == [type(w.message).__name__ for w in theirs]
        if ref.converged_:
            break
    assert ref.converged_ and call > 2
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-6)


@dataclass(frozen=True)
class _Total:
    value: float

    def __add__(self, other):
        return _Total(self.value + other.value)


class _Fixed:
    """A model at a fixed point whose objective, evaluated again, rounds differently in its
    last bit; it claims no rounding slack of its own."""

    advice = "nothing"

    def __init__(self, values):
        self.values = values

    def e_step(self, params, chunk):
        return _Total(self.values[params] if chunk.row_start == 0 else 0.0)

    def m_step(self, stats, params):
        return Step(min(params + 1, len(self.values) - 1))

    def objective(self, stats):
        return Objective(stats.value, 1.0)

    def decrease_tolerance(self, params, value):
        return 0.0


def test_likelihood_check_ignores_last_bit_rounding():
    value = -1234.5678
    below = float(np.nextafter(value, -np.inf))  # 1e-16 relative lower: rounding, not a decrease
    source = TensorSource(torch.zeros(4, 1), None, chunk_rows=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LikelihoodDecreaseWarning)
        result = run_em(_Fixed([value, below, value, below]), LocalEngine(), source, 0, max_iter=4, tol=-1.0)
    assert result.n_iter == 4
    with pytest.warns(LikelihoodDecreaseWarning, match="decreased"):  # a real fall is still reported
        run_em(_Fixed([value, value * (1 + 1e-9)]), LocalEngine(), source, 0, max_iter=2, tol=-1.0)


def _on_repeated_points():
    return np.vstack([np.repeat([[0.5, 1.5]], 20, 0), np.repeat([[3.1, -2.3]], 20, 0), np.repeat([[7.7, 0.1]], 20, 0)])


# float32 full covariances of repeated points are rounding noise that may happen to factor:
# those components are re-seeded instead (the float64 case shows the error)
@pytest.mark.parametrize("covariance_type, dtype", [(c, "float64") for c in COV_TYPES]
                         + [(c, "float32") for c in ("tied", "diag", "spherical")])
def test_collapse_without_reg_covar_raises_sklearns_error(covariance_type, dtype):
    """reg_covar=0 and every component on repeated points: scikit-learn's "ill-defined
    empirical covariance" error (a ValueError) for every structure, never variances of 1e-17."""
    X = _on_repeated_points()
    with pytest.raises(NumericalError, match="ill-defined empirical covariance") as info:
        GaussianMixture(3, covariance_type=covariance_type, reg_covar=0.0, dtype=dtype, random_state=0).fit(X)
    assert isinstance(info.value, ValueError)


def test_components_that_keep_their_spread_fit_without_reg_covar():
    X, _, _ = make_blobs(2, n_per=100, d=2)
    for covariance_type in ("diag", "spherical"):
        kw = init_kwargs(X, 3, covariance_type) | dict(reg_covar=0.0)
        gm = GaussianMixture(**kw, dtype="float64").fit(X)
        ref = SkGaussianMixture(**kw).fit(X)
        assert gm.converged_ and np.min(gm.covariances_) > 0.1
        np.testing.assert_allclose(gm.covariances_, ref.covariances_, rtol=1e-6)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_real_spread_far_from_the_centre_is_kept_without_reg_covar(covariance_type):
    """Unit variances 1e3 and 1e4 from the centre: float32 cannot resolve them, so their
    moments are summed in float64 and judged by float64's rounding; they are real variances,
    not a collapse (judged by float32's rounding, they were zeroed and re-seeded)."""
    rng = np.random.default_rng(0)
    for far in (1e3, 1e4):
        X = np.r_[rng.normal(-far, 1, (300, 2)), rng.normal(far, 1, (300, 2)), rng.normal(0, 1, (300, 2))]
        kw = dict(n_components=3, covariance_type=covariance_type, reg_covar=0.0, means_init=X[[0, 300, 600]])
        ours = GaussianMixture(**kw).fit(X)
        ref = SkGaussianMixture(**kw).fit(X)
        np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-3)
        np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-6, atol=1e-3)


def test_messages_types_and_tags_are_scikit_learns():
    X, _, _ = make_blobs(0, n_per=30)
    theirs, ours = SkGaussianMixture(2, max_iter=1, random_state=0), GaussianMixture(2, max_iter=1, random_state=0)
    texts = []
    for m in (theirs, ours):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m.fit(X)
        texts.append([str(w.message) for w in caught if issubclass(w.category, SkConvergenceWarning)])
    assert texts[0] == texts[1] and len(texts[0]) == 1  # to the letter
    assert type(ours.lower_bound_) is type(theirs.lower_bound_)
    assert ours.__sklearn_tags__().estimator_type == theirs.__sklearn_tags__().estimator_type == "density_estimator"
    for rows, K in ((1, 1), (1, 2), (0, 1)):  # two rows at least, asked before the components are counted
        for make in ((SkGaussianMixture, GaussianMixture), (SkBayesian, BayesianGaussianMixture)):
            errors = []
            for cls in make:
                with pytest.raises(ValueError) as info:
                    cls(n_components=K).fit(X[:rows])
                errors.append(str(info.value))
            assert errors[0] == errors[1]


def test_repr_is_scikit_learns():
    """Parameters set apart from their defaults, by name, wrapped at 80 columns as
    scikit-learn's pretty-printer wraps them."""
    rng = np.random.default_rng(0)
    choices = dict(n_components=[2, 10, 123], covariance_type=["full", "tied", "diag", "spherical"], tol=[1e-3, 1e-8],
                   reg_covar=[1e-6, 0.5], max_iter=[100, 12345], n_init=[1, 5], warm_start=[False, True],
                   init_params=["kmeans", "random", "random_from_data"], random_state=[None, 0, 4294967295],
                   verbose=[0, 2], verbose_interval=[10, 3], means_init=[None, [[0.5, 0.25], [1.0, 2.0]]])
    wrapped = 0
    for _ in range(300):
        kw = {k: v[rng.integers(len(v))] for k, v in choices.items() if rng.random() < 0.5}
        for ours, theirs in ((GaussianMixture, SkGaussianMixture), (BayesianGaussianMixture, SkBayesian)):
            kw = {k: v for k, v in kw.items() if k != "means_init" or ours is GaussianMixture}
            assert repr(ours(**kw)) == repr(theirs(**kw))
            wrapped += "\n" in repr(ours(**kw))
    assert 50 < wrapped < 550  # both layouts met


@pytest.mark.parametrize("make", [lambda: GaussianMixture(2), lambda: BayesianGaussianMixture(n_components=2)])
def test_column_names_that_mix_strings_with_other_types_are_refused_as_sklearn_does(make):
    """scikit-learn raises TypeError for DataFrame names such as ["a", 1, "c"]; bigem fitted
    silently and dropped the names. All-integer names stay unnamed in both."""
    pd = pytest.importorskip("pandas")
    X, _, _ = make_blobs(0, n_per=30, d=3)
    mixed = pd.DataFrame(X, columns=["a", 1, "c"])
    with pytest.raises(TypeError) as theirs:
        (SkGaussianMixture(2) if isinstance(make(), GaussianMixture) else SkBayesian(n_components=2)).fit(mixed)
    with pytest.raises(TypeError) as ours:
        make().fit(mixed)
    assert str(ours.value) == str(theirs.value) and isinstance(ours.value, ValueError)
    fitted = make().fit(X)
    with pytest.raises(TypeError, match=r"\['int', 'str'\] as feature name"):
        fitted.predict(mixed)
    assert not hasattr(make().fit(pd.DataFrame(X)), "feature_names_in_")


def test_an_unknown_parameter_is_named_in_scikit_learns_words():
    """The estimator's repr, as scikit-learn's message shows it (it said the class name)."""
    def said(est) -> str:
        with pytest.raises(ValueError) as raised:
            est.set_params(foo=1)
        return str(raised.value).split(" Valid parameters")[0]

    assert said(GaussianMixture(n_components=3)) == said(SkGaussianMixture(n_components=3))
