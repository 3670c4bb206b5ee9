"""HMM fits save checkpoints and resume from them to the uninterrupted fit's answer."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from bigem import GMMHMM, CategoricalHMM, GaussianHMM
from bigem._core.errors import ConvergenceWarning, ParameterError


class _Killed(Exception):
    pass


def _die_at(iteration: int):
    def callback(info):
        if info.iteration == iteration:
            raise _Killed

    return callback


def _data():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (300, 2)), rng.normal(4, 1, (300, 2))]
    return X, [100, 1, 199, 300]


@pytest.mark.parametrize("make, fitted", [
    (lambda seed: GaussianHMM(3, covariance_type="full", n_iter=12, tol=-np.inf, random_state=seed, dtype="float64"),
     ("startprob_", "transmat_", "means_", "covars_")),
    (lambda seed: GMMHMM(2, n_mix=2, n_iter=12, tol=-np.inf, random_state=seed, dtype="float64"),
     ("transmat_", "weights_", "means_", "covars_")),
    (lambda seed: CategoricalHMM(3, n_iter=12, tol=-np.inf, random_state=seed, dtype="float64",
                                 accelerate="squarem"), ("transmat_", "emissionprob_")),
], ids=["gaussian", "gmm", "categorical-squarem"])
def test_a_killed_hmm_fit_resumes_to_the_uninterrupted_answer(tmp_path, make, fitted):
    X, lengths = _data()
    if isinstance(make(0), CategoricalHMM):
        X = (X[:, :1] > 2).astype(int) + (X[:, 1:] > 0).astype(int)
    whole = make(0).fit(X, lengths)
    ck = tmp_path / "fit.ckpt"
    with pytest.raises(_Killed):
        make(0).fit(X, lengths, checkpoint=ck, checkpoint_every=5, callback=_die_at(8))
    assert ck.exists()
    resumed = make(0).fit(X, lengths, checkpoint=ck, checkpoint_every=5)  # the start is the file's
    assert not ck.exists()  # done: nothing left to resume
    for name in fitted:
        np.testing.assert_allclose(getattr(resumed, name), getattr(whole, name), rtol=1e-12, atol=1e-15, err_msg=name)
    assert list(resumed.monitor_.history) == list(whole.monitor_.history)  # to the last bit (1 ulp off before)
    assert resumed.monitor_.iter == whole.monitor_.iter and len(resumed.monitor_.seconds) == len(whole.monitor_.history)


def test_a_checkpoint_of_other_data_or_settings_is_refused_saying_what_differs(tmp_path):
    X, lengths = _data()
    ck = tmp_path / "fit.ckpt"
    with pytest.raises(_Killed):
        GaussianHMM(2, n_iter=9, random_state=0).fit(X, lengths, checkpoint=ck, checkpoint_every=2,
                                                     callback=_die_at(3))
    with pytest.raises(ParameterError, match=r"different fit.*differ in: lengths"):
        GaussianHMM(2, n_iter=9).fit(X, [600], checkpoint=ck)
    with pytest.raises(ParameterError, match=r"different fit.*differ in: covariance_type"):
        GaussianHMM(2, n_iter=9, covariance_type="full").fit(X, lengths, checkpoint=ck)
    with pytest.raises(ParameterError, match=r"different fit.*differ in: data"):
        GaussianHMM(2, n_iter=9).fit(X + 1, lengths, checkpoint=ck)
    with pytest.raises(ParameterError, match="checkpoint_every"):
        GaussianHMM(2, n_iter=9).fit(X, lengths, checkpoint=ck, checkpoint_every=0)
    assert ck.exists()  # refusals leave it for the fit it belongs to


def test_a_checkpoint_path_that_cannot_take_the_file_is_refused_before_any_iteration(tmp_path):
    """The path was first written at the first save: checkpoint_every iterations of
    work were lost first (a mixture's fit and an HMM's alike)."""
    from bigem import GaussianMixture
    from bigem.errors import OutputPathError

    X, lengths = _data()
    seen = []
    for model, args in ((GaussianMixture(2, random_state=0), (X,)), (GaussianHMM(2, random_state=0), (X, lengths))):
        with pytest.raises(OutputPathError, match=r"checkpoint .*nowhere.*does not exist; create it first"):
            model.fit(*args, checkpoint=tmp_path / "nowhere" / "fit.ckpt", checkpoint_every=5,
                      callback=lambda info: seen.append(info.iteration))
    assert seen == []


def test_a_damaged_checkpoint_says_to_start_afresh(tmp_path):
    from bigem import GaussianMixture
    from bigem.errors import ModelFileError

    X, _ = _data()
    (tmp_path / "run (1)").mkdir()
    path = tmp_path / "run (1)" / "fit.ckpt"  # the reason was cut from a path's parentheses
    with pytest.raises(_Killed):
        GaussianMixture(2, tol=0, max_iter=20, random_state=0).fit(X, checkpoint=path, checkpoint_every=2,
                                                                   callback=_die_at(5))
    damaged = bytearray(path.read_bytes())
    damaged[-3] ^= 1
    path.write_bytes(bytes(damaged))
    with pytest.raises(ModelFileError, match=rf"^{re.escape(str(path))}: not a checkpoint bigem can resume from \(its "
                                             r"bytes do not match the checksum written with them: the file was damaged "
                                             r"or modified after it was written\); delete it to start the fit afresh, "
                                             r"or pass another checkpoint path$") as caught:
        GaussianMixture(2, tol=0, max_iter=20, random_state=0).fit(X, checkpoint=path)
    assert "save the model again" not in str(caught.value)  # a model file's advice


def test_a_checkpoint_of_another_seed_is_refused(tmp_path):
    """An int random_state decides the starts and re-seeds: a fit of seed 1 resumed seed 0's
    checkpoint and returned seed 0's answer, where every other setting is refused. A
    generator's state is not comparable, so only its kind is."""
    from bigem import GaussianMixture

    X, lengths = _data()
    for make, args in ((lambda seed: GaussianMixture(2, tol=0, max_iter=20, random_state=seed), (X,)),
                       (lambda seed: GaussianHMM(2, n_iter=9, random_state=seed), (X, lengths))):
        path = tmp_path / f"{type(make(0)).__name__}.ckpt"
        with pytest.raises(_Killed):
            make(0).fit(*args, checkpoint=path, checkpoint_every=2, callback=_die_at(5))
        with pytest.raises(ParameterError, match=r"differ in: random_state\)"):
            make(1).fit(*args, checkpoint=path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # 20 iterations at tol=0
            make(0).fit(*args, checkpoint=path)  # the same seed resumes
    path = tmp_path / "generator.ckpt"
    with pytest.raises(_Killed):
        GaussianMixture(2, tol=0, max_iter=20, random_state=np.random.RandomState(0)).fit(
            X, checkpoint=path, checkpoint_every=2, callback=_die_at(5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        GaussianMixture(2, tol=0, max_iter=20, random_state=np.random.RandomState(0)).fit(X, checkpoint=path)


def _hand_set(shift: float) -> GaussianHMM:
    """hmmlearn's recipe: init_params='' and the starting parameters set by hand."""
    m = GaussianHMM(2, init_params="", n_iter=30, tol=-np.inf, dtype="float64")
    m.startprob_, m.transmat_ = np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.1, 0.9]])
    m.means_, m.covars_ = np.array([[0.0, 0.0], [4.0, 4.0]]) + shift, np.ones((2, 2))
    return m


def test_a_checkpoint_of_other_hand_set_parameters_is_refused_and_the_same_resume(tmp_path):
    """The values set by hand start the fit: a checkpoint of a fit from other values was
    resumed silently, and the fit returned another start's answer."""
    X, lengths = _data()
    path = tmp_path / "fit.ckpt"
    with pytest.raises(_Killed):
        _hand_set(0.0).fit(X, lengths, checkpoint=path, checkpoint_every=1, callback=_die_at(4))
    with pytest.raises(ParameterError, match=r"\(they differ in: hand_set_parameters\); to start fresh"):
        _hand_set(0.5).fit(X, lengths, checkpoint=path)
    seen = []
    resumed = _hand_set(0.0).fit(X, lengths, checkpoint=path, callback=lambda info: seen.append(info.iteration))
    whole = _hand_set(0.0).fit(X, lengths)
    assert seen[0] > 1 and not path.exists()
    np.testing.assert_array_equal(resumed.means_, whole.means_)
    assert list(resumed.monitor_.history) == list(whole.monitor_.history)


def test_a_hand_set_start_resumes_whatever_the_layout_it_was_set_in(tmp_path):
    """A spherical start set as (K,) and as hmmlearn's (K, D) is one start: its checkpoint
    resumes under either (the digest is of the covariances as full matrices)."""
    X, lengths = _data()
    path = tmp_path / "fit.ckpt"

    def start(covars):
        m = GaussianHMM(2, covariance_type="spherical", init_params="", n_iter=12, tol=-np.inf, dtype="float64")
        m.startprob_, m.transmat_ = np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.1, 0.9]])
        m.means_, m._covars_ = np.array([[0.0, 0.0], [4.0, 4.0]]), covars
        return m

    with pytest.raises(_Killed):
        start(np.array([1.0, 2.0])).fit(X, lengths, checkpoint=path, checkpoint_every=1, callback=_die_at(4))
    seen = []
    start(np.array([[1.0, 1.0], [2.0, 2.0]])).fit(X, lengths, checkpoint=path,
                                                  callback=lambda info: seen.append(info.iteration))
    assert seen[0] > 1 and not path.exists()
