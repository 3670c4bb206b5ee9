"""Missing values (#17): the gap E-step's scratch lives in workspaces reused from one
chunk and one E-step to the next (a fresh large array can map its pages afresh every
time: page faults, the spread of the gaps' cost). Reuse must change nothing:
the statistics of a chunk are bit for bit those of a fresh model and of a fresh process,
whatever ran in between, and a pass's parameters whose pattern stores another pass took
meanwhile start again rather than read another's factors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from bigem._core.types import Chunk
from bigem.models.gaussian import gaussian_mixture

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")


def make_case(d, covariance_type, k=3):
    """(model, params, other params (other means and covariances), two chunks of rows
    with gaps), the same in any process."""
    rng = np.random.default_rng(d)
    model = gaussian_mixture(k, covariance_type, 1e-6, torch.float32, gaps=True)
    a = rng.normal(size=(k, d, d))
    covs = a @ a.transpose(0, 2, 1) / d + np.eye(d)
    means = rng.normal(0, 2, (k, d))
    w = np.array([0.3, 0.3, 0.4])

    def params(shift):
        c = (covs if covariance_type == "full" else covs[0]) * (1 + shift)  # other patterns' factors
        return model.make_params(torch.tensor(w), torch.tensor(means + shift), torch.tensor(c))

    chunks = []
    low = {16: 0.15, 30: 0.08}.get(d, 0.03)  # every row its own pattern beyond 62 features: few gaps
    for n, rate in ((1000, low), (1500, 2 * low)):
        x = means[rng.integers(0, k, n)] + rng.normal(size=(n, d))
        x[rng.random(x.shape) < rate] = np.nan
        x[np.isnan(x).all(1), 0] = 0.5
        chunks.append(Chunk(torch.tensor(x, dtype=torch.float32), None, 0))
    return model, params(0.0), params(0.7), chunks


def parts(stats):
    s = stats.component
    return [s.n_k, s.sum_x, s.sum_xx, stats.loglik.reshape(1)]


def small_blocks(model, monkeypatch):
    # many blocks a chunk, runs cut across blocks
    monkeypatch.setattr(model.component, "block_rows", lambda K, D, device: 128)


def assert_same(a, b):
    for x, y in zip(parts(a), parts(b)):
        assert torch.equal(x, y), (x - y).abs().max()


@pytest.mark.parametrize("d", [16, 30, 70])  # patterns found by a table, by a search, per block
@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_gap_statistics_are_identical_when_the_workspace_is_reused(d, covariance_type, monkeypatch):
    model, p, q, (first, second) = make_case(d, covariance_type)
    small_blocks(model, monkeypatch)
    once = model.e_step(p, first)
    model.e_step(p, second)  # a larger chunk, more gaps, in the same buffers
    model.e_step(q, second)  # other parameters: another pass's pattern stores
    again = model.e_step(p, first)
    assert_same(again, once)
    fresh, *_ = make_case(d, covariance_type)
    small_blocks(fresh, monkeypatch)
    assert_same(fresh.e_step(p, first), once)


def test_parameters_held_across_another_pass_factor_their_patterns_again(monkeypatch):
    """Prepared parameters kept while other parameters' pass took the workspace's pattern
    stores (their table still says where each pattern was) read their own factors."""
    model, p, q, (first, second) = make_case(16, "full")
    small_blocks(model, monkeypatch)
    truth = model.e_step(p, first)
    held = model._inputs(p, torch.device("cpu"))
    model.e_step(q, first)  # same patterns, other factors, same buffers
    monkeypatch.setattr(model, "_inputs", lambda params, device: held)
    assert_same(model.e_step(p, first), truth)


def test_gap_statistics_equal_a_fresh_process():
    model, p, q, (first, second) = make_case(16, "full")
    model.e_step(p, second)
    model.e_step(q, first)
    mine = model.e_step(p, first)
    script = textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
        from test_missing_workspace import make_case, parts
        model, p, q, (first, second) = make_case(16, "full")
        torch.save(parts(model.e_step(p, first)), sys.argv[1])
    """)
    out = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"bigem_fresh_{os.getpid()}.pt")
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        subprocess.run([sys.executable, "-c", script, out], check=True, env=env, timeout=120)
        theirs = torch.load(out)
    finally:
        if os.path.exists(out):
            os.remove(out)
    for x, y in zip(parts(mine), theirs):
        assert torch.equal(x, y)


FAULTS = """
import resource, sys, numpy as np, torch
from bigem._core.types import Chunk
from bigem.models.gaussian import gaussian_mixture
n, d, k = 200_000, 16, 8
rng = np.random.default_rng(0)
means = rng.normal(0, 2, (k, d))
a = rng.normal(size=(k, d, d))
covs = a @ a.transpose(0, 2, 1) / d + np.eye(d)
x = (means[rng.integers(0, k, n)] + rng.normal(size=(n, d))).astype(np.float32)
gappy = x.copy()
gappy[rng.random(x.shape) < 0.1] = np.nan
faults = []
for data, gaps in ((x, False), (gappy, True)):
    model = gaussian_mixture(k, "full", 1e-6, torch.float32, gaps=gaps)
    ps = [model.make_params(torch.full((k,), 1 / k, dtype=torch.float64), torch.tensor(means + s),
                            torch.tensor(covs * (1 + s))) for s in (0.0, 0.1)]
    chunk = Chunk(torch.tensor(data), None, 0)
    for i in range(2):
        model.e_step(ps[i % 2], chunk)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for i in range(4):
        model.e_step(ps[i % 2], chunk)  # new parameters each time, as in a fit
    faults.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 4)
print(faults[0], faults[1])
"""


def test_gap_e_step_maps_few_more_pages_than_the_complete_one():
    """Minor page faults per E-step (ru_minflt) on 2e5 x 16 rows, K=8, 10% of entries
    missing, against the same rows complete, in a process whose C allocator maps every
    allocation from 128 kB up afresh (glibc's M_MMAP_THRESHOLD pinned, which also stops its
    threshold from moving: the count is then the same every run). The complete E-step
    keeps its scratch in workspaces; so must the gap E-step (it faulted 15x as many
    pages as the complete one with chunk- and pattern-sized temporaries; 1.2x now)."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072",
               PYTHONPATH=os.path.abspath(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", FAULTS], check=True, env=env, timeout=300, capture_output=True, text=True)
    complete, gaps = map(float, done.stdout.split())
    assert complete > 0  # the allocator was pinned: the complete path's per-block results fault too
    assert gaps <= 2 * complete, (gaps, complete)
