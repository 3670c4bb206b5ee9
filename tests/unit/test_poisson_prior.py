"""PoissonMixture's prior: maximum likelihood by default (pomegranate's and hmmlearn's),
and no improper prior. Pseudo-events without pseudo-rows (alpha > 0, beta = 0) have no
MAP: EM emptied extra components and drove their rates towards 1e297 (a model then
saved that could not be loaded). A maximum-likelihood rate is a weighted mean of the
counts, so it lies between 0 and the largest count."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bigem
from bigem import MixedMixture, PoissonMixture
from bigem._core.errors import ParameterError
from bigem.cli.main import main

RATES = np.array([[1, 1, 8, 0.5], [8, 1, 1, 0.5], [1, 8, 1, 0.5]])
RNG = np.random.default_rng(0)
COUNTS = RNG.poisson(RATES[RNG.choice(3, 200)]).astype(float)


@pytest.mark.parametrize("seed", range(4))
def test_extra_components_keep_rates_within_the_counts_and_the_model_loads(seed, tmp_path):
    model = PoissonMixture(7, random_state=seed, dtype="float64").fit(COUNTS)  # seeds 1-3 reached 3e297 before
    assert np.all(model.lambdas_ >= 0) and np.all(model.lambdas_ <= COUNTS.max(0))
    path = str(tmp_path / "m.bigem")
    model.save(path)
    np.testing.assert_array_equal(bigem.load(path).lambdas_, model.lambdas_)


def test_a_mixed_models_poisson_block_takes_maximum_likelihood():
    frame = pd.DataFrame(COUNTS, columns=list("abcd"))
    for seed in range(4):
        model = MixedMixture(7, families={c: "poisson" for c in frame}, random_state=seed, dtype="float64").fit(frame)
        assert np.all(model.lambdas_ <= COUNTS.max(0))


def test_a_proper_gamma_prior_is_its_map():
    model = PoissonMixture(3, alpha=2.0, beta=0.5, random_state=0, dtype="float64").fit(COUNTS)
    resp = model.predict_proba(COUNTS)  # the fit converged: one more M-step is where it stands
    expected = (2.0 + resp.T @ COUNTS) / (0.5 + resp.sum(0))[:, None]
    np.testing.assert_allclose(model.lambdas_, expected, rtol=1e-3)


def test_pseudo_events_without_pseudo_rows_are_refused_at_fit_but_a_model_with_them_predicts():
    with pytest.raises(ParameterError, match=r"alpha=1.0 with beta=0 is an improper Gamma prior.*give beta > 0"):
        PoissonMixture(3, alpha=1.0).fit(COUNTS)
    with pytest.raises(ParameterError, match="improper"):
        PoissonMixture(3, alpha=1.0).partial_fit(COUNTS)
    fitted = PoissonMixture(3, random_state=0).fit(COUNTS)
    fitted.set_params(alpha=1.0)  # as a model saved under the old default loads
    np.testing.assert_array_equal(fitted.predict(COUNTS), PoissonMixture(3, random_state=0).fit(COUNTS).predict(COUNTS))


def test_the_command_line_refuses_alpha_for_poisson(tmp_path, capsys):
    path = str(tmp_path / "c.csv")
    pd.DataFrame(COUNTS.astype(int), columns=list("abcd")).to_csv(path, index=False)
    assert main(["fit", path, "-k", "2", "--family", "poisson", "--alpha", "1", "-o", str(tmp_path / "m.bigem")]) == 2
    assert "maximum likelihood" in capsys.readouterr().err
    assert main(["fit", path, "-k", "2", "--family", "poisson", "-o", str(tmp_path / "m.bigem")]) == 0
    assert main(["fit", path, "-k", "2", "--family", "poisson", "--alpha", "0", "-o", str(tmp_path / "m.bigem")]) == 0


def test_counts_of_1e8_fit_in_float64_without_a_false_decrease_warning():
    """A row's log-density of about -11 is what is left of terms of 5e9 (x log rate, the
    rate, log x!): float64 rounds it by about 1e-7, and a fall of that size between two
    iterations warned "this is a bug in bigem" (warnings are errors here)."""
    from bigem import PoissonHMM

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.poisson(1e8, (300, 1)), rng.poisson(1.001e8, (300, 1))]).astype(float)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Best performing initialization did not converge")  # tol=0
        for seed in range(4):
            PoissonMixture(2, dtype="float64", random_state=seed, tol=0, max_iter=20).fit(X)
    PoissonHMM(2, dtype="float64", random_state=0, n_iter=20, tol=-1e300).fit(X)
