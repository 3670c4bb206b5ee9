"""Model files across machines (issue #15): a model fitted on a GPU loads on a machine
without one, on the device it has, with a warning; ``load(path, device=...)`` chooses."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from bigem import GaussianHMM, GaussianMixture, load
from bigem._core.errors import DeviceWarning, ParameterError
from bigem.cli import main
from bigem.io import read_model_file, write_model_file

X = np.random.default_rng(0).normal(size=(200, 2))


@pytest.fixture
def gpu_here(monkeypatch):
    """Pretend this machine has one CUDA device (nothing is computed on it)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


@pytest.fixture
def model_from_gpu(tmp_path):
    """A model file as a GPU machine writes it: its device hyper-parameter 'cuda' (forged:
    fitted and saved here, the device rewritten in the file's metadata)."""

    def save(kind=GaussianMixture, device="cuda"):
        est = kind(2, random_state=0).fit(X)
        path = tmp_path / f"{kind.__name__}.bigem"
        est.save(path)
        tensors, meta = read_model_file(path)
        meta["hyper_parameters"]["device"] = device
        write_model_file(path, tensors, meta)
        return path, est

    return save


@pytest.mark.parametrize("kind", [GaussianMixture, GaussianHMM])
def test_a_model_fitted_on_a_gpu_loads_on_the_cpu_with_a_warning(model_from_gpu, kind):
    path, fitted = model_from_gpu(kind)
    with pytest.warns(DeviceWarning, match=rf"{path}: the model was fitted on device 'cuda', which this machine does "
                                           r"not have; it is loaded on 'cpu' \(pass load\(path, device=\.\.\.\) to choose\)"):
        est = load(path)
    assert est.device == "cpu"
    np.testing.assert_array_equal(est.predict(X), fitted.predict(X))


@pytest.mark.parametrize("kind", [GaussianMixture, GaussianHMM])
def test_load_on_a_chosen_device_says_nothing(model_from_gpu, kind):
    path, _ = model_from_gpu(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load(path, device="cpu").device == "cpu"
    with pytest.raises(ParameterError, match=r"^device 'cuda' requested but CUDA is not available here; use device='cpu'"):
        load(path, device="cuda")
    with pytest.raises(ParameterError, match=r"^device 'meta' is not supported"):
        load(path, device="meta")


def test_on_a_gpu_machine_the_saved_device_is_kept_or_mapped_to_one_present(model_from_gpu, gpu_here):
    path, _ = model_from_gpu()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load(path).device == "cuda"
    path, _ = model_from_gpu(device="cuda:3")
    with pytest.warns(DeviceWarning, match="fitted on device 'cuda:3', which this machine does not have; it is loaded on 'cuda'"):
        assert load(path).device == "cuda"


@pytest.mark.parametrize("command", ["info", "predict", "score"])
def test_the_command_line_reads_a_gpu_model_on_the_cpu(model_from_gpu, tmp_path, capsys, command):
    path, _ = model_from_gpu()
    data = tmp_path / "x.npy"
    np.save(data, X)
    argv = {"info": ["info", path], "predict": ["predict", path, data, "-o", tmp_path / "p.npy"],
            "score": ["score", path, data]}[command]
    assert main([str(a) for a in argv]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"bigem {command}: warning: ") and "it is loaded on 'cpu'" in err
