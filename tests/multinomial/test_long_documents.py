"""Long documents in the default float32: x . log theta_k of 1e6 tokens is about -1e7,
which float32 sums to within nats, so components a hair apart swapped posteriors (four
of six documents) and score_samples was 22 nats off. The products now hold each word's
log-probabilities less their mean over the components; the rest is float64."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import gammaln, logsumexp, xlogy

from bigem import MultinomialMixture


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_documents_of_a_million_tokens_score_as_in_float64(dtype):
    rng = np.random.default_rng(0)
    V = 10_000
    first = rng.dirichlet(np.ones(V))
    second = first * np.exp(rng.normal(0, 0.003, V))
    P = np.stack([first, second / second.sum()])
    docs = np.stack([rng.multinomial(10**6, P[i % 2]) for i in range(6)])
    model = MultinomialMixture(2, alpha=1e-9, dtype=dtype, probabilities_init=P, weights_init=[0.5, 0.5],
                               max_iter=0).fit(sp.csr_matrix(docs))
    Q = np.asarray(model.probabilities_, dtype=np.float64)
    coef = gammaln(docs.sum(1) + 1) - gammaln(docs + 1).sum(1)
    joint = coef[:, None] + np.stack([xlogy(docs, Q[k]).sum(1) for k in range(2)], 1) + np.log(model.weights_)
    truth = logsumexp(joint, 1)
    np.testing.assert_allclose(model.score_samples(sp.csr_matrix(docs)), truth, rtol=0, atol=1e-3)
    np.testing.assert_allclose(model.predict_proba(sp.csr_matrix(docs)), np.exp(joint - truth[:, None]), atol=1e-3)
