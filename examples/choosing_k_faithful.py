"""Choosing K on Old Faithful, as mclust's documentation does.

The 272 eruptions of R's ``faithful`` data (eruption length and waiting time, in
minutes). ``bigem.select`` fits every K from 1 to 5 with each covariance type and keeps
the lowest BIC (mclust reports minus this number: its best model is our lowest). The
table lists every candidate; the pictures show BIC against K and the chosen fit.
"""

import bigem
from bigem.datasets import load_faithful
from bigem.plot import plot_fit, plot_selection

X = load_faithful()
result = bigem.select(X, n_components=range(1, 6), covariance_types=("full", "diag", "spherical", "tied"),
                      criterion="bic", n_init=2, random_state=0, dtype="float64")
print(result.format_table())
best = result.best_
print(f"\nchosen: K={best['n_components']} {best['covariance_type']} (BIC {best['bic']:.2f})")
gm = result.best_estimator_
for k in range(gm.n_components):
    print(f"  component {k}: weight {gm.weights_[k]:.3f}  eruptions {gm.means_[k, 0]:.2f} min  "
          f"waiting {gm.means_[k, 1]:.1f} min")
plot_selection(result, "bic.png")
plot_fit(gm, X, "faithful.png", title="Old Faithful: the chosen mixture")
