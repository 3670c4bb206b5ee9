"""Pictures of fitted models. Imports matplotlib lazily, only when a figure is drawn."""

from .density import plot_density_1d

__all__ = ["plot_density_1d"]
