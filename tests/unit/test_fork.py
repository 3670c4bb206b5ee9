"""A fitted model answers in a forked child (multiprocessing's default start on Linux,
a pre-loading server): torch's OpenMP pool does not survive fork, and a child's first
parallel operation after its parent's hung for ever. The child computes on one thread."""

from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest

from bigem import GaussianHMM, GaussianMixture, MultinomialMixture

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="POSIX fork"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # Python 3.12+: fork of a threaded process
    pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning"),
]


def _answer_in_a_child(model, *data) -> int | None:
    """The child's exit code: 0 when it answers as the parent does, None if it hangs."""
    import torch

    parent = model.predict_proba(*data)
    threads = torch.get_num_threads()

    def child():
        same = np.array_equal(model.predict_proba(*data), parent)
        os._exit(0 if same and torch.get_num_threads() == 1 else 3)

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(60)
    if process.exitcode is None:
        process.kill()
        process.join()
    assert torch.get_num_threads() == threads  # the parent keeps its own
    return process.exitcode


@pytest.mark.parametrize("family", ["gaussian", "hmm", "multinomial"])
def test_a_fitted_model_answers_in_a_forked_child(family):
    rng = np.random.default_rng(0)
    if family == "multinomial":
        X = rng.poisson(3.0, (6000, 20))
        assert _answer_in_a_child(MultinomialMixture(3, random_state=0).fit(X), X) == 0
    elif family == "hmm":
        X = rng.normal(size=(3000, 2))
        assert _answer_in_a_child(GaussianHMM(3, n_iter=5, random_state=0).fit(X, [1500, 1500]), X, [1500, 1500]) == 0
    else:
        X = np.concatenate([rng.normal(m, 1.0, (2000, 4)) for m in (0, 3, 6)])
        assert _answer_in_a_child(GaussianMixture(3, random_state=0).fit(X), X) == 0
