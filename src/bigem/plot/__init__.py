"""Pictures of fitted models (PNG or SVG by extension). matplotlib is imported only when a
figure is drawn (``pip install 'bigem[plot]'``).

- :func:`plot_fit`: the data and the fit; a histogram with component densities for one
  feature, a scatter with covariance ellipses for more;
- :func:`plot_convergence`: log-likelihood per iteration, one line per restart;
- :func:`plot_selection`: a criterion against K, one line per covariance type;
- :func:`plot_profile`: per component, the probability of each category (latent class
  models) or of its most likely words (multinomial models), as a heatmap.
"""

from ._common import check_fitted, gaussian_mixture_only
from .clusters import plot_clusters
from .convergence import plot_convergence
from .density import plot_density_1d
from .profile import plot_profile
from .selection import plot_selection

__all__ = ["plot_clusters", "plot_convergence", "plot_density_1d", "plot_fit", "plot_profile", "plot_selection"]


def plot_fit(estimator, X, path, title: str | None = None, **kwargs) -> None:
    """The fit over the data: :func:`plot_density_1d` for one feature, else :func:`plot_clusters`.
    Gaussian mixtures only; the other families have :func:`plot_profile`."""
    gaussian_mixture_only(estimator, "plot_fit")
    check_fitted(estimator, "means_")
    if estimator.means_.shape[1] == 1:
        plot_density_1d(estimator, X, path, title or "Gaussian mixture fit", **kwargs)
    else:
        plot_clusters(estimator, X, path, title or "Gaussian mixture clusters", **kwargs)
