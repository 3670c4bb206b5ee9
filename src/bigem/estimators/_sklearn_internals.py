"""scikit-learn's private methods of its Gaussian mixtures that users' code calls
(``_estimate_weighted_log_prob`` for per-component log-densities, ``_get_parameters``
to copy a model): the same names and answers, on bigem's inference."""

from __future__ import annotations

import numpy as np
from scipy.special import digamma

from ..models.covariance import structure


class ScikitLearnInternals:
    """Mixed into GaussianMixture and BayesianGaussianMixture (``_parameter_names``: what
    scikit-learn's ``_get_parameters`` returns, in its order)."""

    _parameter_names: tuple[str, ...] = ()

    def _estimate_weighted_log_prob(self, X) -> np.ndarray:
        """log p(x, k) of each row and component (n_samples, n_components)."""
        return self._log_joint_rows(X)

    def _estimate_log_prob(self, X) -> np.ndarray:
        """log p(x | k) (n_samples, n_components): the joint less the log-weights."""
        return self._estimate_weighted_log_prob(X) - self._estimate_log_weights()

    def _estimate_log_weights(self) -> np.ndarray:
        """log weights_ (the variational mixture: their expectation)."""
        self._fitted()
        return np.log(np.asarray(self.weights_, dtype=np.float64))

    def _get_parameters(self) -> tuple:
        self._fitted()
        return tuple(getattr(self, name) for name in self._parameter_names)

    def _set_parameters(self, params) -> None:
        """Set the parameters ``_get_parameters`` returns; ``precisions_`` follows from
        ``precisions_cholesky_``, as in scikit-learn."""
        for name, value in zip(self._parameter_names, params, strict=True):
            setattr(self, name, value)
        prec_chol = np.asarray(self.precisions_cholesky_, dtype=np.float64)
        if structure(self.covariance_type).kernel == "diag":
            self.precisions_ = prec_chol**2
        else:
            self.precisions_ = prec_chol @ np.swapaxes(prec_chol, -1, -2)


def expected_log_weights(concentration, prior_type: str) -> np.ndarray:
    """E[log pi_k] under the variational posterior of the weights (scikit-learn's
    ``_estimate_log_weights``): stick-breaking Betas (a, b) for a Dirichlet process,
    else a Dirichlet."""
    if prior_type == "dirichlet_process":
        a, b = (np.asarray(c, dtype=np.float64) for c in concentration)
        total = digamma(a + b)
        return digamma(a) - total + np.hstack((0.0, np.cumsum(digamma(b) - total)[:-1]))
    c = np.asarray(concentration, dtype=np.float64)
    return digamma(c) - digamma(c.sum())
