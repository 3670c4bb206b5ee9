"""StepMix's simulated data sets (``stepmix.datasets``), by the same names and
arguments: the designs of Bakk and Kuha (2018) and StepMix's Gaussian examples, so
that a tutorial that builds its data here runs unchanged.

Each draws from the same model as StepMix's function (the same classes, parameters,
columns and dtypes), seeded by ``random_state``, but from bigem's own stream of numbers:
the rows are not StepMix's, and estimates on them differ by sampling noise.

Bakk, Z. and Kuha, J. Two-step estimation of models between latent classes and external
variables. Psychometrika, 83(4):871-892, 2018.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["random_nan", "bakk_measurements", "data_bakk_response", "data_bakk_covariate", "data_bakk_complete",
           "data_bakk_complex", "data_generation_gaussian", "data_gaussian_binary", "data_gaussian_categorical",
           "data_gaussian_diag"]

# StepMix's four-class Gaussian example (its homework problem): each class's mean and covariance
_FOUR_MEANS = np.array([[-2.0344, 4.1726], [3.9779, 3.7735], [3.8007, -3.7972], [-3.0620, -3.5345]])
_FOUR_COVARIANCES = np.array([[[2.9044, 0.2066], [0.2066, 2.7562]], [[0.2104, 0.2904], [0.2904, 12.2392]],
                              [[0.9213, 0.0574], [0.0574, 1.8660]], [[6.2414, 6.0502], [6.0502, 6.1825]]])
_RESPONSE_MEANS = np.array([-1.0, 1.0, 0.0])  # Bakk and Kuha's outcome mean per class
_COVARIATE_SLOPES = np.array([0.0, -1.0, 1.0])  # log odds of each class per unit of the covariate
_COVARIATE_INTERCEPTS = np.array([0.0, 2.34459467, -3.65540533])  # equal class sizes on average


def random_nan(X, Y, nan_ratio, random_state=None):
    """X and Y with each value replaced by NaN with probability ``nan_ratio`` (a warning
    if a row loses every value)."""
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    observed = np.random.default_rng(random_state).random((X.shape[0], X.shape[1] + Y.shape[1])) > nan_ratio
    if not observed.sum(axis=1).all():
        warnings.warn("Some samples are completely unobserved. This will likely result in downstream errors. Reduce "
                      "the nan_ratio or try another seed.", stacklevel=2)
    return np.where(observed[:, :X.shape[1]], X, np.nan), np.where(observed[:, X.shape[1]:], Y, np.nan)


def bakk_measurements(n_classes, n_mm, sep_level):
    """Bakk and Kuha's binary items (n_mm, n_classes): class 0 answers yes with
    probability ``sep_level`` to every item, class 1 to the first half and 1 - sep_level
    to the rest, class 2 with 1 - sep_level to every item (further classes: never)."""
    pis = np.zeros((n_mm, n_classes))
    half = int(n_mm / 2)
    pis[:, 0] = sep_level
    if n_classes > 1:
        pis[:half, 1], pis[half:, 1] = sep_level, 1 - sep_level
    if n_classes > 2:
        pis[:, 2] = 1 - sep_level
    return pis


def data_bakk_response(n_samples, sep_level, n_classes=3, n_mm=6, random_state=None):
    """Binary items X (n_samples, n_mm), a unit-variance Gaussian outcome Y (n_samples, 1)
    of class means -1, 1, 0, and the classes, drawn with equal probabilities."""
    if n_classes != len(_RESPONSE_MEANS):
        raise ValueError(f"n_classes={n_classes}: the response design has {len(_RESPONSE_MEANS)} classes")
    rng = np.random.default_rng(random_state)
    labels = rng.integers(0, n_classes, n_samples)
    X = _items(rng, bakk_measurements(n_classes, n_mm, sep_level), labels)
    return X, rng.normal(_RESPONSE_MEANS[labels], 1.0)[:, None], labels


def data_bakk_covariate(n_samples, sep_level, n_mm=6, random_state=None):
    """A covariate Y uniform on 1..5 (n_samples, 1), each row's class drawn from its
    multinomial logit, and binary items X given the class."""
    rng = np.random.default_rng(random_state)
    Y = rng.integers(1, 6, (n_samples, 1))
    logits = Y * _COVARIATE_SLOPES + _COVARIATE_INTERCEPTS
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    labels = (rng.random(n_samples)[:, None] > np.cumsum(probabilities, 1)).sum(1)
    labels = np.minimum(labels, len(_COVARIATE_SLOPES) - 1)  # a cumulated sum that rounds below 1
    return _items(rng, bakk_measurements(3, n_mm, sep_level), labels), Y, labels


def data_bakk_complete(n_samples, sep_level, n_mm=6, random_state=None, nan_ratio=0.0):
    """The covariate design with a unit-variance Gaussian outcome beside the covariate:
    X, Y = [covariate, outcome] (n_samples, 2), labels; NaNs at ``nan_ratio``."""
    X, covariate, labels = data_bakk_covariate(n_samples, sep_level, n_mm, random_state)
    rng = np.random.default_rng(None if random_state is None else [random_state, 1])
    outcome = rng.normal(_RESPONSE_MEANS[labels], 1.0)[:, None]
    if nan_ratio:
        X, outcome = random_nan(X, outcome, nan_ratio, random_state=random_state)
    return X, np.hstack((covariate, outcome)), labels


def data_bakk_complex(n_samples, sep_level, random_state=None, nan_ratio=0.0):
    """Mixed data as DataFrames: three binary items and a Gaussian measurement; three
    binary items, a Gaussian outcome and the covariate as the structural columns."""
    import pandas as pd

    X, covariate, labels = data_bakk_covariate(n_samples, sep_level, 6, random_state)
    rng = np.random.default_rng(None if random_state is None else [random_state, 1])
    means = np.array([[-1.0, 2.0], [1.0, -2.0], [0.0, 0.0]])
    gaussian = rng.normal(means[labels], 1.0)
    if nan_ratio:
        X, gaussian = random_nan(X, gaussian, nan_ratio, random_state=random_state)
    measured = pd.DataFrame(np.hstack((X[:, :3], gaussian[:, [1]])),
                            columns=[f"Binary Measurement {i}" for i in (1, 2, 3)] + ["Continuous Measurement 1"])
    structural = pd.DataFrame(np.hstack((X[:, 3:], gaussian[:, [0]], covariate)),
                              columns=[f"Binary Outcome {i}" for i in (1, 2, 3)] + ["Continuous Outcome 1",
                                                                                     "Covariate 1"])
    return measured, structural, labels


def data_generation_gaussian(n_samples, sep_level, n_mm=6, random_state=None):
    """Four equally likely classes: binary items X (Bakk and Kuha's, the fourth class
    never answering yes) and a two-dimensional full-covariance Gaussian outcome Y."""
    rng = np.random.default_rng(random_state)
    labels = rng.integers(0, 4, n_samples)
    X = _items(rng, bakk_measurements(4, n_mm, sep_level), labels)
    return X, _gaussians(rng, _FOUR_MEANS, _FOUR_COVARIANCES, labels), labels


def data_gaussian_binary(n_samples, random_state=None):
    """Four equally likely classes: a two-dimensional Gaussian X and two binary outcomes Y."""
    rng = np.random.default_rng(random_state)
    labels = rng.integers(0, 4, n_samples)
    binary = _items(rng, np.array([[0.1, 0.9, 0.1, 0.9], [0.9, 0.9, 0.1, 0.1]]), labels)
    return _gaussians(rng, _FOUR_MEANS, _FOUR_COVARIANCES, labels), binary, labels


def data_gaussian_categorical(n_samples, random_state=None):
    """Four equally likely classes: a two-dimensional Gaussian X and two categorical
    outcomes Y of three codes each (0, 1, 2)."""
    rng = np.random.default_rng(random_state)
    labels = rng.integers(0, 4, n_samples)
    first = np.array([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    second = np.array([[0.9, 0.1, 0.0], [0.9, 0.0, 0.1], [0.1, 0.9, 0.0], [0.1, 0.0, 0.9]])
    X = _gaussians(rng, _FOUR_MEANS, _FOUR_COVARIANCES, labels)
    Y = np.stack([_codes(rng, first[labels]), _codes(rng, second[labels])], axis=1)
    return X, Y, labels


def data_gaussian_diag(n_samples, sep_level, n_mm=6, random_state=None, nan_ratio=0.0):
    """Three equally likely classes: binary items X and a two-dimensional Gaussian outcome
    Y with diagonal covariances (means 0, 5 and -5); NaNs at ``nan_ratio``."""
    rng = np.random.default_rng(random_state)
    labels = rng.integers(0, 3, n_samples)
    X = _items(rng, bakk_measurements(3, n_mm, sep_level), labels)
    means = np.array([[0.0, 0.0], [5.0, 5.0], [-5.0, -5.0]])
    covariances = np.array([np.diag([1.0, 1.0]), np.diag([2.0, 2.0]), np.diag([1.0, 3.0])])
    Y = _gaussians(rng, means, covariances, labels)
    if nan_ratio:
        X, Y = random_nan(X, Y, nan_ratio, random_state=random_state)
    return X, Y, labels


def _items(rng, pis: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Binary answers (n, items) given each row's class; ``pis`` is (items, classes)."""
    return (rng.random((len(labels), pis.shape[0])) < pis.T[labels]).astype(np.int64)


def _gaussians(rng, means: np.ndarray, covariances: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A Gaussian row per label: its class's mean plus its covariance's Cholesky factor
    times standard normals."""
    factors = np.linalg.cholesky(covariances)
    z = rng.standard_normal((len(labels), means.shape[1]))
    return means[labels] + np.einsum("nij,nj->ni", factors[labels], z)


def _codes(rng, probabilities: np.ndarray) -> np.ndarray:
    """One code per row from its row of category probabilities."""
    return (rng.random(len(probabilities))[:, None] > np.cumsum(probabilities, 1)).sum(1).clip(
        max=probabilities.shape[1] - 1)
