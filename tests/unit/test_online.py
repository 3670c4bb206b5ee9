"""Online (stepwise) EM: recovers known parameters, one pass lands near full EM, and the
running average is exact algebra (statistics moved to another shift give the same M-step)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from bigem import GaussianMixture
from bigem._core.types import Chunk
from bigem.em.online import minibatches, step_size
from bigem.models.gaussian import gaussian_mixture as GaussianMixtureModel
from tests.conftest import COV_TYPES, make_blobs


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_moments_moved_to_another_shift_give_the_same_m_step(covariance_type):
    X, _, _ = make_blobs(2, n_per=300, k=3, d=4)
    x = torch.from_numpy(X)
    model = GaussianMixtureModel(3, covariance_type, 1e-6, torch.float64)
    rng = np.random.default_rng(0)
    cov = {"full": np.stack([np.eye(4)] * 3), "tied": np.eye(4), "diag": np.ones((3, 4)), "spherical": np.ones(3)}
    params = model.make_params(torch.full((3,), 1 / 3, dtype=torch.float64), torch.from_numpy(X[:3].copy()),
                               torch.from_numpy(cov[covariance_type]).double())
    stats = model.e_step(params, Chunk(x, None, 0))
    c = stats.component
    moved = replace(stats, component=c.about(c.shift + torch.from_numpy(rng.normal(0, 3, (3, 4)))))
    a, b = model.m_step(stats).params.component, model.m_step(moved).params.component
    torch.testing.assert_close(b.means, a.means, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(b.covariances, a.covariances, rtol=1e-10, atol=1e-12)


def test_step_sizes_follow_the_schedule():
    assert step_size(1, 0.7, 10.0) == 1.0
    assert step_size(5, 0.7, 10.0) == pytest.approx(15**-0.7)
    assert step_size(100, 1.0, 0.0) == pytest.approx(0.01)


def test_minibatches_cut_exactly_whatever_the_chunks():
    x = torch.arange(23.0)[:, None]
    chunks = [Chunk(x[:5], None, 0), Chunk(x[5:17], None, 5), Chunk(x[17:], None, 17)]
    batches = list(minibatches(chunks, 4))
    assert [b.n_rows for b in batches] == [4] * 5 + [3]
    assert [b.row_start for b in batches] == [0, 4, 8, 12, 16, 20]
    torch.testing.assert_close(torch.cat([b.x for b in batches]), x)


def test_a_process_parts_of_the_batches_end_its_streams_pass_and_read_no_rows_beyond_the_sizes():
    # a torch group's process cuts its rows into its parts of the batches (sizes summing
    # to its rows): its stream must end its pass, or a source's end-of-pass checks never run
    from bigem._core.batches import rebatch

    x = torch.arange(23.0)[:, None]
    read = []

    def stream(parts):
        for a, b in parts:
            read.append(a)
            yield Chunk(x[a:b], None, a)
        read.append("end")

    batches = list(rebatch(stream([(0, 5), (5, 17), (17, 23)]), [6, 9, 8]))
    assert [b.n_rows for b in batches] == [6, 9, 8] and read == [0, 5, 17, "end"]
    torch.testing.assert_close(torch.cat([b.x for b in batches]), x)
    read.clear()
    assert [b.n_rows for b in rebatch(stream([(0, 5), (5, 17), (17, 23)]), [3, 2])] == [3, 2]
    assert read == [0, 5]  # the sizes ended inside the rows: one chunk looked at, no more


def _truth(seed, n_per=20_000):
    X, means, stds = make_blobs(seed, n_per=n_per, k=3, d=2, sep=8.0)
    return X, means, stds


@pytest.mark.parametrize("seed", [0, 1])
def test_one_online_pass_recovers_the_generating_parameters(seed):
    X, means, stds = _truth(seed)
    gm = GaussianMixture(3, covariance_type="diag", algorithm="online", batch_size=2000, max_iter=1,
                         random_state=seed).fit(X)
    order = [int(np.argmin(((gm.means_ - m) ** 2).sum(1))) for m in means]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(gm.means_[order], means, atol=0.05)
    np.testing.assert_allclose(np.sqrt(gm.covariances_[order]), stds, rtol=0.05)
    np.testing.assert_allclose(gm.weights_, 1 / 3, atol=0.02)
    assert gm.n_iter_ == 1 and gm.n_steps_ == 30


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_one_online_pass_is_within_half_a_percent_of_full_em(covariance_type):
    X, _, _ = make_blobs(5, n_per=10_000, k=4, d=3, sep=5.0)
    full = GaussianMixture(4, covariance_type=covariance_type, random_state=0, tol=1e-6, max_iter=500).fit(X)
    online = GaussianMixture(4, covariance_type=covariance_type, algorithm="online", batch_size=1000, max_iter=1,
                             random_state=0).fit(X)
    gap = (full.score(X) - online.score(X)) / abs(full.score(X))
    assert -1e-9 < gap < 0.005  # online cannot beat the converged exact fit by more than rounding


def test_partial_fit_streams_batches_and_continues():
    X, means, _ = _truth(3, n_per=5000)
    gm = GaussianMixture(3, covariance_type="full", batch_size=1000, random_state=0)
    for part in np.array_split(X, 5):
        gm.partial_fit(part)
    assert gm.n_steps_ == 15
    order = [int(np.argmin(((gm.means_ - m) ** 2).sum(1))) for m in means]
    np.testing.assert_allclose(gm.means_[order], means, atol=0.1)
    # the same rows through fit(algorithm="online") take the same steps: same result
    same = GaussianMixture(3, covariance_type="full", batch_size=1000, random_state=0, algorithm="online", max_iter=1)
    same.fit(X[: len(X) // 5])  # initialise from the same first call's sample ...
    gm2 = GaussianMixture(3, covariance_type="full", batch_size=1000, random_state=0)
    gm2.partial_fit(X[: len(X) // 5])
    np.testing.assert_allclose(gm2.means_, same.means_, rtol=1e-12)


def test_online_parameters_are_validated():
    with pytest.raises(ValueError, match=r"'learning_decay' parameter of GaussianMixture must be a float in the range \(0.5, 1\]"):
        GaussianMixture(learning_decay=1.5).fit(np.zeros((10, 1)))
    with pytest.raises(ValueError, match=r"'algorithm' parameter of GaussianMixture must be a str among"):
        GaussianMixture().fit(np.zeros((10, 1)), algorithm="stochastic")


def test_verbose_fits_show_progress_and_quiet_ones_do_not(capsys, tmp_path):
    X, _, _ = make_blobs(1, n_per=2000)
    GaussianMixture(3, random_state=0, chunk_size=500).fit(X)
    assert capsys.readouterr().err == ""
    GaussianMixture(3, random_state=0, chunk_size=500, verbose=1).fit(X)
    err = capsys.readouterr().err
    assert "rows" in err and "iteration" in err and "loglik=" in err
    GaussianMixture(3, random_state=0, algorithm="online", batch_size=500, max_iter=2, verbose=1).fit(X)
    err = capsys.readouterr().err
    assert "pass 2/2" in err and "pass 3/2" not in err  # never a pass beyond the last


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::bigem.errors.ComponentReseededWarning")
def test_a_float32_online_fit_whose_batches_change_kernel_dtype_runs():
    # rows in cluster order: the first batches see one cluster, whose full covariance
    # float32 cannot hold, so those batches compute in float64 and later ones in float32;
    # blending the two running averages raised "gathered under different 'kernel_dtype'"
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(m, 1.0, (2000, 4)) for m in (0, 3, 6)])
    single = GaussianMixture(3, random_state=0, algorithm="online", batch_size=500).fit(X)
    double = GaussianMixture(3, random_state=0, algorithm="online", batch_size=500, dtype="float64").fit(X)
    np.testing.assert_allclose(np.sort(single.means_, 0), np.sort(double.means_, 0), atol=1e-3)
    assert single.lower_bound_ == pytest.approx(double.lower_bound_, abs=1e-4)


@pytest.mark.parametrize("weighted", [False, True])
def test_a_one_pass_fit_of_a_parquet_file_reads_it_once(tmp_path, monkeypatch, weighted):
    """The initial sample of an online fit was drawn across the whole file, which decoded
    every row group it touched (all 40 here) before the one pass (audit AU); a file that
    decodes gives its first rows now: one row group more than the pass, and the probe's."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rng = np.random.default_rng(3)
    n = 200_000
    X = rng.normal(size=(n, 2)) + rng.integers(0, 3, n)[:, None] * 4.0
    path = tmp_path / "rg.parquet"
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "w": rng.uniform(0.5, 2.0, n)}), path, row_group_size=5000)
    decoded = [0]
    batches, group = pq.ParquetFile.iter_batches, pq.ParquetFile.read_row_group

    def counted_batches(self, *args, **kwargs):
        for batch in batches(self, *args, **kwargs):
            decoded[0] += batch.num_rows
            yield batch

    def counted_group(self, *args, **kwargs):
        table = group(self, *args, **kwargs)
        decoded[0] += table.num_rows
        return table

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", counted_batches)
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counted_group)
    gm = GaussianMixture(3, algorithm="online", batch_size=1000, max_iter=1, random_state=0)
    gm.fit(str(path), columns=["a", "b"], sample_weight="w" if weighted else None)
    assert n <= decoded[0] <= n + 2 * 5000, decoded[0]
    np.testing.assert_allclose(np.sort(gm.means_[:, 0]), [0.0, 4.0, 8.0], atol=0.05)  # a fair start all the same


def test_the_start_passes_over_rows_of_weight_0_and_reads_on_to_every_class():
    """Online EM's start reads the first rows: where they all weigh 0 it crashed in
    k-means++ (numpy's 'a must be greater than 0'), and where none is labelled the
    components never met their classes (accuracy 0 on separated data); it reads on."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(m, 0.5, (1000, 2)) for m in (0.0, 5.0, 10.0)])
    y = np.repeat([0, 1, 2], 1000)
    order = rng.permutation(len(X))
    X, y = X[order], y[order]
    w = np.ones(len(X))
    w[:300] = 0.0
    gm = GaussianMixture(3, algorithm="online", batch_size=100, max_iter=2, random_state=0).fit(X, sample_weight=w)
    np.testing.assert_allclose(np.sort(gm.means_[:, 0]), [0.0, 5.0, 10.0], atol=0.1)
    labels = np.where(rng.random(len(y)) < 0.1, y, -1)
    labels[:300] = -1
    gm = GaussianMixture(3, algorithm="online", batch_size=100, max_iter=1, random_state=0,
                         unlabeled_weight=1.0).fit(X, labels)
    assert (gm.predict(X) == y).mean() > 0.99


def test_a_first_mini_batch_smaller_than_the_parameters_is_warned_of():
    """The first batch sets online EM's running statistics outright: 5 rows for 19 free
    parameters (2 components in 3-D, full) ended one pass far from exact EM, silent."""
    import warnings

    from bigem.errors import ComponentReseededWarning, SmallBatchWarning

    rng = np.random.default_rng(2)
    X = np.r_[rng.normal(size=(3000, 3)), rng.normal(size=(3000, 3)) + 5]
    rng.shuffle(X)
    with pytest.warns(SmallBatchWarning, match=r"first mini-batch of 5 rows, fewer than the model's 10 free "
                                               r"parameters per component.*raise batch_size to 10 rows or more"), \
            pytest.warns(ComponentReseededWarning):  # a component starved by the first batches, re-seeded
        small = GaussianMixture(2, algorithm="online", batch_size=5, max_iter=1, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallBatchWarning)
        enough = GaussianMixture(2, algorithm="online", batch_size=20, max_iter=1, random_state=0).fit(X)
        exact = GaussianMixture(2, random_state=0).fit(X)
        GaussianMixture(2, random_state=0).partial_fit(X[:10])
        # the default batch of a larger model: one component's parameters, not the model's (13,259 here)
        GaussianMixture(10, algorithm="online", max_iter=1, random_state=0).fit(rng.normal(size=(10_000, 50)))
    assert small.score(X) < exact.score(X) - 0.1 and enough.score(X) == pytest.approx(exact.score(X), abs=0.02)
    with pytest.warns(SmallBatchWarning, match=r"first mini-batch of 6 rows.*give the first partial_fit call 10 "
                                               r"rows or more") as caught:
        GaussianMixture(2, random_state=0).partial_fit(X[:6])
    assert caught[0].filename == __file__  # the user's line, not bigem's
