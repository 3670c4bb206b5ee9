"""A NaN or null that an estimator refuses: the error names missing_values='fiml' only
where the estimator has that option; elsewhere it says how to drop or fill the values.
In memory, from files (Parquet nulls, CSV blanks), and on a Dask cluster."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from bigem import BayesianGaussianMixture, BernoulliMixture, GaussianMixture, PoissonMixture
from bigem._core.errors import DataError

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

FIML = r"missing_values='fiml'"
NO_FIML = (r"this estimator does not model missing values; "
           r"DataFrame.dropna\(\) drops such rows, sklearn.impute.SimpleImputer fills them in")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster, distributed.Client(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture(scope="module")
def with_nan():
    X = np.random.default_rng(0).integers(0, 2, (60, 3)).astype(float)
    X[7, 1] = np.nan
    return X


def _inputs(X, tmp_path):
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame.to_parquet(tmp_path / "x.parquet")
    frame.to_csv(tmp_path / "x.csv", index=False)
    return {"memory": X, "parquet": str(tmp_path / "x.parquet"), "csv": str(tmp_path / "x.csv")}


@pytest.mark.parametrize("where", ["memory", "parquet", "csv"])
@pytest.mark.parametrize("make, offered", [(GaussianMixture, True), (BernoulliMixture, True), (PoissonMixture, True),
                                           (BayesianGaussianMixture, False)],
                         ids=["gaussian", "bernoulli", "poisson", "bayesian"])
def test_the_fix_names_fiml_only_where_the_estimator_has_it(make, offered, where, with_nan, tmp_path):
    data = _inputs(with_nan, tmp_path)[where]
    with pytest.raises(DataError, match=r"row 7") as info:
        make(n_components=2).fit(data)
    message = str(info.value)
    if offered:
        assert FIML in message
    else:
        assert FIML not in message
        assert re.search(NO_FIML, message), message


@pytest.mark.parametrize("make, offered", [(GaussianMixture, True), (BernoulliMixture, True),
                                           (BayesianGaussianMixture, False)],
                         ids=["gaussian", "bernoulli", "bayesian"])
def test_on_a_dask_cluster_fit_and_predict_say_the_same(make, offered, with_nan, client):
    """The workers' checks: a fit's first pass, and a lazy predict's partitions."""
    lazy = da.from_array(with_nan, chunks=(20, -1))
    for run in (lambda: make(n_components=2, client=client).fit(lazy),
                lambda: make(n_components=2, random_state=0).fit(np.nan_to_num(with_nan)).predict(lazy).compute()):
        with pytest.raises(DataError, match="row 7") as info:
            run()
        message = str(info.value)
        assert (FIML in message) is offered, message
        assert ("does not model missing values" in message) is not offered, message


def test_an_infinity_is_not_called_a_missing_value_where_fiml_does_not_exist():
    X = np.ones((20, 2))
    X[3, 0] = np.inf
    with pytest.raises(DataError, match="infinity") as info:
        BayesianGaussianMixture(n_components=2).fit(X)
    assert FIML not in str(info.value) and "NaN is" not in str(info.value)
    with pytest.raises(DataError, match="infinity is not a missing value: NaN is, with missing_values='fiml'"):
        GaussianMixture(2).fit(X)
