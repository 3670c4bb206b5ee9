"""Two clusters in one dimension: the textbook example, step by step.

100 points from N(0, 1.5^2) and 100 from N(5, 0.5^2), fitted with two components from
the same start scikit-learn would take. Each row of the table is one EM iteration: the
mean log-likelihood of the parameters entering it, then the updated parameters. The
picture shows the data, each weighted component density and their sum.
"""

import numpy as np

from bigem import GaussianMixture
from bigem.plot import plot_density_1d

rng = np.random.default_rng(42)
X = np.r_[rng.normal(0.0, 1.5, 100), rng.normal(5.0, 0.5, 100)][:, None]

print(f"{'iter':>4} {'log-lik/row':>12} {'mean 1':>8} {'mean 2':>8} {'var 1':>8} {'var 2':>8} {'w 1':>6} {'w 2':>6}")


def show(info):
    p = info.params
    m, v, w = p.means[:, 0].tolist(), p.covariances[:, 0, 0].tolist(), p.weights.tolist()
    print(f"{info.iteration:>4} {info.log_likelihood:>12.6f} {m[0]:>8.4f} {m[1]:>8.4f} "
          f"{v[0]:>8.4f} {v[1]:>8.4f} {w[0]:>6.3f} {w[1]:>6.3f}")


gm = GaussianMixture(2, weights_init=[0.5, 0.5], means_init=[[0.0], [5.0]], precisions_init=[[[1.0]], [[1.0]]],
                     dtype="float64", tol=1e-8)
gm.fit(X, callback=show)
print(f"converged after {gm.n_iter_} iterations; mean log-likelihood of the fitted model {gm.score(X):.6f}")
plot_density_1d(gm, X, "two_clusters.png", title="Two-component fit of 200 points")
