"""Full-information maximum likelihood against StepMix's (its ``gaussian_diag_nan``
measurement model), from the same start.

StepMix's M-step for a diagonal Gaussian with gaps averages each feature over the rows
that observe it; bigem's completes each gap by its conditional mean and variance (the
exact EM). The two iterations differ but share their fixed points, the maximum of the
observed-data likelihood, so from the same start both reach the same parameters. The
discrete half of StepMix's FIML (``categorical_nan``, ``binary_nan``) is tested step by
step in ``tests/unit/test_families_missing.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

stepmix = pytest.importorskip("stepmix.stepmix")

from bigem import GaussianMixture  # noqa: E402


def _start_at(model, weights, means, variances):
    """Make StepMix's initialisation give these parameters (it has no parameters_init)."""
    original = model._initialize_parameters

    def initialise(X, random_state):
        original(X, random_state)
        model.weights_ = weights.copy()
        model._mm.parameters["means"] = means.copy()
        model._mm.parameters["covariances"] = variances.copy()

    model._initialize_parameters = initialise


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_diagonal_fiml_reaches_stepmix_fixed_point(rate):
    rng = np.random.default_rng(0)
    K, D, N = 3, 4, 3000
    means = rng.normal(0, 3, (K, D))
    sd = rng.uniform(0.5, 1.5, (K, D))
    z = rng.integers(0, K, N)
    X = means[z] + sd[z] * rng.normal(size=(N, D))
    X[rng.random(X.shape) < rate] = np.nan
    X = X[~np.isnan(X).all(1)]  # StepMix counts a row with nothing observed as 0, as bigem does; keep it simple
    w0, m0, v0 = np.full(K, 1 / K), means + rng.normal(0, 0.5, (K, D)), np.ones((K, D))

    reference = stepmix.StepMix(n_components=K, measurement="gaussian_diag_nan", n_init=1, max_iter=100_000,
                                abs_tol=1e-13, rel_tol=0, verbose=0, progress_bar=0, random_state=0)
    _start_at(reference, w0, m0, v0)
    reference.fit(X)
    ref = reference.get_parameters()

    ours = GaussianMixture(K, covariance_type="diag", missing_values="fiml", dtype="float64", reg_covar=0.0, tol=1e-13,
                           max_iter=100_000, weights_init=w0, means_init=m0, precisions_init=1 / v0).fit(X)

    np.testing.assert_allclose(ours.weights_, ref["weights"], rtol=1e-6)
    np.testing.assert_allclose(ours.means_, ref["measurement"]["means"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours.covariances_, ref["measurement"]["covariances"], rtol=1e-6)
    assert ours.score(X) == pytest.approx(reference.score(X), rel=1e-10)
