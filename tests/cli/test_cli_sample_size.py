"""`bigem sample -n 99999999999999` (issue #15) tried to allocate petabytes; it is now
refused in one line before any allocation, and no output file appears."""

from __future__ import annotations

import numpy as np
import pytest

from bigem import GaussianHMM, GaussianMixture
from bigem.cli import main


@pytest.mark.parametrize("kind", [GaussianMixture, GaussianHMM])
def test_a_sample_beyond_memory_is_refused_in_one_line(tmp_path, capsys, kind):
    kind(2, random_state=0).fit(np.random.default_rng(0).normal(size=(100, 2))).save(tmp_path / "m.bigem")
    rc = main(["sample", str(tmp_path / "m.bigem"), "-n", "99999999999999", "-o", str(tmp_path / "s.npy")])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("bigem sample: error: n_samples=99,999,999,999,999 draws of 2 value(s) and a label would need")
    assert not (tmp_path / "s.npy").exists()
