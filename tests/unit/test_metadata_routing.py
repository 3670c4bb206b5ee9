"""scikit-learn's metadata routing (``enable_metadata_routing=True``): bigem's estimators
take sample weights and sequence lengths through Pipeline, GridSearchCV and
cross_validate as scikit-learn's and hmmlearn's estimators do, with scikit-learn's
errors where a request is missing or wrong."""

from __future__ import annotations

import numpy as np
import pytest

import bigem

sklearn = pytest.importorskip("sklearn")


@pytest.fixture()
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0.0, 1.0, (300, 2)), rng.normal(3.0, 1.0, (300, 2))]
    return X, rng.uniform(0.2, 3.0, 600)


def test_sample_weight_reaches_the_mixture_inside_a_pipeline(routing, data):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, w = data
    pipe = Pipeline([("scale", StandardScaler().set_fit_request(sample_weight=False)),
                     ("gmm", bigem.GaussianMixture(2, random_state=0).set_fit_request(sample_weight=True))])
    pipe.fit(X, sample_weight=w)
    Z = StandardScaler().fit_transform(X)
    weighted = bigem.GaussianMixture(2, random_state=0).fit(Z, sample_weight=w)
    plain = bigem.GaussianMixture(2, random_state=0).fit(Z)
    np.testing.assert_allclose(pipe[-1].means_, weighted.means_, atol=1e-12)
    assert np.abs(pipe[-1].weights_ - plain.weights_).max() > 1e-3  # the weights arrived


def test_grid_search_and_clone_keep_the_request(routing, data):
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV

    X, w = data
    est = bigem.GaussianMixture(random_state=0).set_fit_request(sample_weight=True)
    assert clone(est).get_metadata_routing().fit.requests["sample_weight"] is True
    search = GridSearchCV(est, {"n_components": [1, 2, 3]}, cv=3).fit(X, sample_weight=w)
    assert search.best_params_ == {"n_components": 2}


def test_an_hmm_declares_its_lengths_as_hmmlearns_does(routing):
    """hmmlearn's HMMs declare ``lengths`` for fit, predict, predict_proba and score (a
    Pipeline cannot hand it to either: it passes y in its place), and so do bigem's."""
    hmmlearn = pytest.importorskip("hmmlearn.hmm")
    theirs = hmmlearn.GaussianHMM(2).get_metadata_routing()
    ours = bigem.GaussianHMM(2).set_fit_request(lengths=True).get_metadata_routing()
    for method in ("fit", "predict", "predict_proba", "score"):
        assert "lengths" in getattr(theirs, method).requests and "lengths" in getattr(ours, method).requests
    assert ours.fit.requests["lengths"] is True and ours.score.requests["lengths"] is None


def test_scikit_learns_errors_where_a_request_is_missing_or_wrong(routing, data):
    from sklearn.exceptions import UnsetMetadataPassedError
    from sklearn.pipeline import Pipeline

    X, w = data
    with pytest.raises(UnsetMetadataPassedError, match="sample_weight"):
        Pipeline([("gmm", bigem.GaussianMixture(2))]).fit(X, sample_weight=w)
    with pytest.raises(TypeError, match="Unexpected args: {'weights'} in fit"):
        bigem.GaussianMixture().set_fit_request(weights=True)
    routing_of = bigem.BernoulliMixture().get_metadata_routing()
    assert set(routing_of.fit.requests) >= {"sample_weight", "columns"}
    assert all(v is None for v in routing_of.fit.requests.values())  # nothing requested by default


def test_requests_need_routing_enabled():
    with pytest.raises(RuntimeError, match="enable_metadata_routing=True"):
        bigem.GaussianMixture().set_fit_request(sample_weight=True)


def test_weights_routed_to_fit_leave_score_as_scikit_learns(routing, data):
    """scikit-learn's GaussianMixture.score takes no weights, so a search that routes
    sample_weight to fit needs no score request; bigem's score takes them by hand only.
    StepMix's score takes them, and so does the façade's, as metadata."""
    from sklearn.mixture import GaussianMixture as Theirs

    assert "sample_weight" not in bigem.GaussianMixture().get_metadata_routing().score.requests
    assert "sample_weight" not in Theirs().get_metadata_routing().score.requests
    assert "sample_weight" in bigem.StepMix().get_metadata_routing().score.requests
