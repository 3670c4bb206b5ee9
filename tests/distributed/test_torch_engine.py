"""engine='torch': a torchrun group of gloo processes on the CPU fits what one process fits.

Two launches serve the module (each a few seconds: every case is small): a group of two
processes runs every case of ``cases.py``, a group of three a few of them (other cuts
through the same rows). Each process's results are compared with the same case run here
with engine='local', and with the other processes' (which must hold the very same bits).
Two more launches kill or freeze one process of a pair in the middle of a fit.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("torch.distributed")
pytest.importorskip("pyarrow")

from . import launch  # noqa: E402
from .cases import CASES, COV_TYPES  # noqa: E402


def torch_cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


EQUAL = [f"gmm_{ct}" for ct in COV_TYPES] + ["gmm_npy", "gmm_parquet", "gmm_one_row_group", "gmm_restarts",
                                               "hmm_diag", "hmm_full", "hmm_parquet", "hmm_pieces", "select", "mixed_labelled",
                                               "bayesian_parquet", "multinomial", "families_gaps", "discrete_ties"]
VARIATIONAL = ["vhmm_diag", "vhmm_full", "vhmm_categorical"]
EQUAL += VARIATIONAL
THREE = ["gmm_full", "gmm_parquet", "hmm_diag", "hmm_parquet", "hmm_pieces", "vhmm_full", "multinomial",
         "discrete_ties"]


def _group(tmp_path_factory, n: int, names: list[str]) -> str:
    out = str(tmp_path_factory.mktemp(f"group{n}"))
    done = launch.torchrun(n, "tests.distributed.run_cases", out, *names, timeout=240)
    assert done.returncode == 0, done.stdout[-4000:]
    return out


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    return _group(tmp_path_factory, 2, list(CASES))


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    return _group(tmp_path_factory, 3, THREE)


def _results(out: str, name: str) -> list[dict]:
    ranks = sorted(d for d in os.listdir(out) if d.startswith("rank"))
    found = []
    for r in ranks:
        error = os.path.join(out, r, f"{name}.error")
        assert not os.path.exists(error), open(error).read()
        with np.load(os.path.join(out, r, f"{name}.npz")) as z:
            found.append({k: z[k] for k in z.files})
    return found


@pytest.fixture(autouse=True)
def _one_thread():
    """The reference fits are tiny: one thread, as each process of the groups has (two
    threads' spinning made them 40x slower on a busy 2-core machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _local(name: str, tmp_path, monkeypatch) -> dict:
    monkeypatch.chdir(tmp_path)
    return {k: np.asarray(v) for k, v in CASES[name]("local").items()}


def _assert_close(got: dict, want: dict, keys=None) -> None:
    for key in keys or want:
        a, b = got[key], want[key]
        if b.dtype.kind == "f":
            scale = max(1.0, float(np.abs(b).max())) if b.size else 1.0
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-8 * scale, err_msg=key)
        else:
            np.testing.assert_array_equal(a, b, err_msg=key)


def _assert_same_everywhere(results: list[dict], keys=None) -> None:
    for other in results[1:]:
        for key in keys or results[0]:
            np.testing.assert_array_equal(other[key], results[0][key], err_msg=f"{key} differs between processes")


@pytest.mark.parametrize("name", EQUAL)
def test_two_processes_fit_what_one_fits(two, name, tmp_path, monkeypatch):
    """Every covariance type, .npy row ranges, Parquet row groups with a weight column, a
    process without rows, restarts in lockstep with SQUAREM, GaussianHMM (in memory and
    from Parquet with sequence ids), the variational HMMs, select, the multinomial from every kind of count
    source: equal to the local fit to 1e-8 in float64,
    and the very same bits on every process."""
    results = _results(two, name)
    _assert_same_everywhere(results)
    _assert_close(results[0], _local(name, tmp_path, monkeypatch))


@pytest.mark.parametrize("name", THREE)
def test_three_processes_cut_the_rows_elsewhere_and_fit_the_same(three, name, tmp_path, monkeypatch):
    results = _results(three, name)
    assert len(results) == 3
    _assert_same_everywhere(results)
    _assert_close(results[0], _local(name, tmp_path, monkeypatch))


@pytest.mark.parametrize("name", VARIATIONAL)
def test_the_variational_bound_never_falls_in_a_group(two, name):
    """Coordinate ascent on the bound summed over the processes' sequences: it rises every
    iteration (beyond rounding), as one process's does."""
    history = _results(two, name)[0]["history"]
    assert len(history) == 8
    assert (np.diff(history) > -1e-10 * np.abs(history[1:])).all()


GPU_CASES = ["gmm_full", "gmm_npy", "gmm_parquet"]


@pytest.mark.cuda
@pytest.mark.skipif(not torch_cuda_devices() >= 2, reason="needs two CUDA devices")
def test_two_gpus_over_nccl_fit_what_one_cpu_process_fits(tmp_path_factory, tmp_path, monkeypatch):
    """The same code over NCCL: each process on its own GPU (LOCAL_RANK), the statistics
    summed on the GPUs; equal to the CPU's one-process fit to 1e-8 in float64."""
    out = str(tmp_path_factory.mktemp("gpus"))
    done = launch.torchrun(2, "tests.distributed.run_cases", out, *GPU_CASES, timeout=240,
                           BIGEM_CASES_DEVICE="cuda")
    assert done.returncode == 0, done.stdout[-4000:]
    for name in GPU_CASES:
        results = _results(out, name)
        _assert_same_everywhere(results)
        _assert_close(results[0], _local(name, tmp_path, monkeypatch))


def test_the_primary_writes_the_checkpoint_and_every_process_resumes_from_it(two, tmp_path, monkeypatch):
    """Each process ran in a directory of its own: only rank 0's holds the checkpoint, yet
    every process resumed from it (it read rank 0's copy) to the uninterrupted fit."""
    results = _results(two, "checkpoint")
    assert [bool(r["written"]) for r in results] == [True, False]
    assert not any(bool(r["left"]) for r in results)  # removed when the fit completed
    mixture_keys = ["weights", "means", "covariances", "lower_bound", "n_iter", "history"]
    for r in results:
        _assert_close({k: r[f"resumed_{k}"] for k in mixture_keys}, {k: r[f"whole_{k}"] for k in mixture_keys})
    local = _local("checkpoint", tmp_path, monkeypatch)
    _assert_close(results[0], local, [f"resumed_{k}" for k in mixture_keys])


def test_the_primary_alone_prints_and_writes_files(two, tmp_path, monkeypatch):
    results = _results(two, "writes_and_prints")
    primary, other = results
    assert "Iteration 5" in str(primary["printed"]) and primary["saved"] and primary["predicted"]
    assert str(other["printed"]) == "" and not other["saved"] and not other["predicted"]
    assert primary["imputed"] and not other["imputed"]  # impute(out=) was written by every process
    assert all(r["path_returned"] and r["imputed_path"] for r in results)
    local = _local("writes_and_prints", tmp_path, monkeypatch)
    assert str(local["printed"]) == str(primary["printed"]) and local["saved"] and local["predicted"]
    _assert_same_everywhere(results, ["labels"])
    np.testing.assert_array_equal(primary["labels"], local["labels"])


def test_online_em_takes_the_same_steps_on_every_process(two, tmp_path, monkeypatch):
    """Each mini-batch holds rows of every process, so the steps differ from one process's
    (not its batches), but every process takes the same ones, to the same optimum."""
    results = _results(two, "online")
    _assert_same_everywhere(results)
    local = _local("online", tmp_path, monkeypatch)
    assert results[0]["n_steps"] == local["n_steps"]  # as many mini-batches of about 90 rows
    # partly labelled (a ClusterError before: each process started from its own first rows);
    # three partial_fit calls of 300 rows take 12 steps only, so their means are further apart
    for key, atol in (("means", 0.1), ("partial_means", 0.1), ("labelled_means", 0.1),
                      ("labelled_partial_means", 0.2)):
        np.testing.assert_allclose(np.sort(results[0][key], 0), np.sort(local[key], 0), atol=atol)
    assert results[0]["score"] == pytest.approx(local["score"], abs=1e-3)


def test_an_error_in_one_process_is_raised_by_every_process(two):
    results = _results(two, "nan_in_a_part")
    for r in results:
        assert str(r["error"]).startswith("DataError: Input nan.npy contains NaN. (1 NaN; first at row 598, column 1)")


def test_online_em_runs_when_a_process_holds_no_rows(two, tmp_path, monkeypatch):
    """One row group: one process holds every row, the other takes part in each step's
    exchange with none. 600 rows in steps of 100 are the one-process fit's own batches,
    so the fit equals it to rounding."""
    results = _results(two, "online_with_an_empty_process")
    _assert_same_everywhere(results)
    _assert_close(results[0], _local("online_with_an_empty_process", tmp_path, monkeypatch))


def test_a_process_that_cannot_open_its_data_fails_every_process_at_once(two):
    results = _results(two, "missing_file_on_one")
    for r in results:
        assert str(r["error"]).startswith("DataError: nope.npy: no such file or folder"), r["error"]
        assert r["seconds"] < 60  # not the group's timeout (30 minutes)


def test_processes_given_other_data_are_refused_by_every_process(two):
    for r in _results(two, "other_files_per_process"):
        for error in (r["error"], r["hmm_error"]):
            assert str(error).startswith("ClusterError: the 2 processes opened different data: process 0 has 603 "
                                         "rows of 3 columns (a, b, c)"), error
            assert "process 1 has 500 rows of 3 columns (p, q, r)" in str(error)


def test_processes_with_other_settings_are_refused_in_words(two, tmp_path, monkeypatch):
    """Every process names the setting that differs and both values, before the first
    exchange; settings that say only how a process computes (memory_budget) may differ."""
    said = {"components": "n_components=2 on process 0 and n_components=3 on process 1",
            "restarts": "n_init=1 on process 0 and n_init=2 on process 1",
            "iterations": "max_iter=3 on process 0 and max_iter=5 on process 1",
            "regularised": "reg_covar=1e-06 on process 0 and reg_covar=0.001 on process 1",
            "hmm": "n_iter=3 on process 0 and n_iter=4 on process 1"}
    for r in _results(two, "other_settings_per_process"):
        for name, words in said.items():
            assert str(r[name]) == (f"ClusterError: the 2 processes were given different settings: {words}; every "
                                    "process must run the same script with the same settings (only device, "
                                    "memory_budget, chunk_size, cache_budget and verbose may differ)"), r[name]
        assert str(r["budget"]) == ""
    assert all(str(e) == "" for e in _local("other_settings_per_process", tmp_path, monkeypatch).values())


def test_processes_given_other_values_labels_or_lengths_are_told_which(two):
    said = {"values": "other values or sample weights", "lengths": "other sequence lengths",
            "labels": "other labels (y)"}
    for r in _results(two, "other_values_per_process"):
        for name, what in said.items():
            assert str(r[name]).startswith("ClusterError: the 2 processes opened different data: process 0 has "), \
                r[name]
            assert ", as does process 1, but process 1 has " in str(r[name]), r[name]
            assert f", but process 1 has {what}; every process must run the same script" in str(r[name]), r[name]


def test_without_a_random_state_the_primary_seeds_every_process(two):
    """random_state=None, an unseeded RandomState, partial_fit and an HMM: every process
    fits, and all hold the very same parameters."""
    results = _results(two, "seeded_by_the_primary")
    _assert_same_everywhere(results)


def test_engine_torch_outside_a_launcher_says_how_to_launch(monkeypatch):
    from bigem import GaussianMixture
    from bigem._core.errors import ClusterError

    for name in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ClusterError, match=r"launch the script with torchrun .* lacks MASTER_ADDR.*engine='local'"):
        GaussianMixture(2, engine="torch").fit(np.random.default_rng(0).normal(size=(50, 2)))
    import torch.distributed as dist

    assert not dist.is_initialized()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("how, timeout", [("kill", 30.0), ("stop", 4.0)])
def test_a_process_lost_mid_fit_is_a_clear_error_on_the_survivor(how, timeout, tmp_path):
    """Killed: gloo sees the connection close, and the survivor raises at once. Frozen:
    the survivor raises when the group's timeout runs out, not later."""
    port = _free_port()
    procs = []
    try:
        for r in (0, 1):
            env = launch.environment(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(r), WORLD_SIZE="2",
                                     LOCAL_RANK=str(r))
            procs.append(subprocess.Popen([sys.executable, "-m", "tests.distributed.dying", str(tmp_path), how,
                                           str(timeout)], cwd=launch.ROOT, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True))
        deadline = time.monotonic() + 120
        while procs[0].poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert procs[0].poll() is not None, "the survivor hung"
    finally:
        for p in procs:
            launch.kill(p)
    record = json.loads((tmp_path / "survivor.json").read_text())
    assert record["raised"] == "ClusterError"
    assert "process 0 of 2: another process stopped answering during an E-step" in record["message"]
    assert "relaunch the job (a fit given checkpoint= resumes from its last checkpoint)" in record["message"]
    if how == "kill":
        assert record["seconds"] < 10
    else:
        assert timeout - 1 <= record["seconds"] < timeout + 10
