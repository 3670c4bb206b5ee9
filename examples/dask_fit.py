"""Fitting on Dask, from a plain script.

A Dask array of 300,000 rows in 6 partitions is fitted on Dask (a map over partitions
and a tree reduction of the statistics); the answer equals the local fit to rounding.
With no ``client``, bigem starts a local cluster for the fit and closes it after: this
script has no ``if __name__ == "__main__":`` guard, so the cluster computes in this
process (worker processes would run the script again); add the guard, or pass
``client=``, to get worker processes. Prediction on a Dask array is lazy.
"""

import dask.array as da
import numpy as np

from bigem import GaussianMixture

rng = np.random.default_rng(0)
centres = np.array([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
X = centres[rng.integers(0, 3, 300_000)] + rng.normal(size=(300_000, 2))
X_dask = da.from_array(X, chunks=(50_000, 2))

on_dask = GaussianMixture(3, random_state=0, dtype="float64").fit(X_dask)
local = GaussianMixture(3, random_state=0, dtype="float64").fit(X)
print(f"partitions: {X_dask.numblocks[0]}; iterations: dask {on_dask.n_iter_}, local {local.n_iter_}")
print(f"largest difference of the means: {np.abs(on_dask.means_ - local.means_).max():.1e}")
labels = on_dask.predict(X_dask)  # lazy: computed partition by partition where the data lives
print(f"predict -> {type(labels).__name__}; counts per component: {np.bincount(labels.compute())}")
