"""Online EM: one pass over the data against exact EM's many.

On 100,000 rows from five overlapping clusters, exact EM iterates to convergence, one
pass over the data per iteration; online (stepwise) EM makes one M-step per mini-batch
of 5,000 rows and reads the data once or twice. The table compares their mean log-likelihood on the
data and the passes each took; ``partial_fit`` does the same, batch by batch.
"""

import numpy as np

from bigem import GaussianMixture

rng = np.random.default_rng(1)
centres = rng.normal(0, 2.0, (5, 3))
labels = rng.integers(0, 5, 100_000)
X = centres[labels] + rng.normal(size=(100_000, 3))

exact = GaussianMixture(5, random_state=0, dtype="float64").fit(X)
print(f"{'fit':<34} {'passes':>6} {'log-lik/row':>12}")
print(f"{'exact EM':<34} {exact.n_iter_:>6} {exact.score(X):>12.6f}")
for passes in (1, 2):
    online = GaussianMixture(5, algorithm="online", batch_size=5_000, max_iter=passes, random_state=0,
                             dtype="float64").fit(X)
    print(f"{'online EM, batches of 5,000':<34} {passes:>6} {online.score(X):>12.6f}")

stream = GaussianMixture(5, batch_size=5_000, random_state=0, dtype="float64")
for start in range(0, len(X), 25_000):  # data arriving in four parts
    stream.partial_fit(X[start:start + 25_000])
print(f"{'partial_fit, 4 calls':<34} {1:>6} {stream.score(X):>12.6f}   ({stream.n_steps_} M-steps)")
