"""Model files: ``est.save(path)`` / ``bigem.load(path)``.

A model file is safetensors (8-byte header length, JSON header, raw little-endian
tensors) with bigem's metadata as JSON in ``__metadata__``. It round-trips exactly,
opens with the ``safetensors`` library, holds no pickle, is written atomically, and
every defect of a damaged or forged file is a ModelFileError saying what and where.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import pickle
import re
import struct

import numpy as np
import pytest
import torch

import bigem
from bigem import GaussianMixture
from bigem._core.errors import ModelFileError, NotFittedError, OutputPathError
from bigem.engines import dask as dask_engine
from bigem.io import read_model_file, write_model_file

COV_TYPES = ("full", "tied", "diag", "spherical")


def _blobs(seed: int = 0, n: int = 30) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(0.0, 1.0, (n, 3)), rng.normal(6.0, 0.7, (n, 3))])
    return X[rng.permutation(len(X))]


@pytest.fixture(scope="module")
def fitted() -> dict[str, GaussianMixture]:
    X = _blobs()
    return {ct: GaussianMixture(2, covariance_type=ct, random_state=0).fit(X) for ct in COV_TYPES}


@pytest.fixture
def saved(fitted, tmp_path):
    """A fresh model file of the 'full' estimator's parameters and its bytes (without
    partial_fit's running state, which a fitted estimator's file also holds: the tests
    below forge the parameters' byte layout)."""
    path = tmp_path / "model.bigem"
    est = copy.deepcopy(fitted["full"])
    est._online_ = None
    est.save(path)
    return path, path.read_bytes()


def test_a_fitted_estimators_file_holds_its_running_state_too(fitted, tmp_path):
    path = tmp_path / "model.bigem"
    fitted["full"].save(path)
    tensors, meta = bigem.io.read_model_file(path)
    assert {"covariances", "means", "weights"} < set(tensors)
    assert all(name.startswith("online.") for name in set(tensors) - {"covariances", "means", "weights"})
    assert meta["online"]["steps"] == 1  # 60 rows: one mini-batch of an online pass


def _split(raw: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _join(header: dict, body: bytes, signed: bool = True) -> bytes:
    """A file of this header and body. ``signed``: with the checksum of what it holds, as
    a forger would write it, so that the checks behind the checksum are reached."""
    extra = header.get("__metadata__")
    if signed and isinstance(extra, dict) and isinstance(extra.get("bigem"), str) and "sha256" in extra:
        extra["sha256"] = hashlib.sha256(extra["bigem"].encode() + body).hexdigest()
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + body


def _write(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)
    return path


def _load_raises(path, match: str) -> ModelFileError:
    with pytest.raises(ModelFileError, match=match) as info:
        bigem.load(path)
    assert isinstance(info.value, ValueError)
    return info.value


def _where(path) -> str:
    return re.escape(os.fspath(path))


# ---------------------------------------------------------------------- round trip


_PARAMS = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_round_trip_gives_equal_parameters_and_identical_answers(fitted, tmp_path, covariance_type):
    est = fitted[covariance_type]
    path = tmp_path / f"{covariance_type}.bigem"
    est.save(path)
    loaded = bigem.load(path)
    assert type(loaded) is GaussianMixture
    for name in _PARAMS:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(est, name), err_msg=name)
    for name in ("n_features_in_", "converged_", "n_iter_", "lower_bound_", "lower_bounds_"):
        assert getattr(loaded, name) == getattr(est, name), name
    assert type(loaded.lower_bound_) is type(est.lower_bound_) is np.float64  # scikit-learn's type, both ways
    assert loaded.get_params() == est.get_params()
    assert not hasattr(loaded, "feature_names_in_")
    X = _blobs(seed=1, n=10)
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(loaded.score_samples(X), est.score_samples(X))
    assert loaded.score(X) == est.score(X)
    assert loaded.bic(X) == est.bic(X)


@pytest.mark.parametrize("kind", ["GaussianMixture", "BayesianGaussianMixture"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("edited", ["precisions_cholesky_", "covariances_"])
def test_precisions_set_apart_from_the_covariances_survive_the_file(tmp_path, kind, covariance_type, edited):
    """scikit-learn scores with precisions_cholesky_ and draws with covariances_, each as
    set; a file held the covariances alone, so a model whose user had set one apart from
    the other scored otherwise once loaded (-4.47 against -3.88). The file holds the
    factors then, and only then."""
    X = _blobs()
    est = getattr(bigem, kind)(n_components=2, covariance_type=covariance_type, random_state=0).fit(X)
    est.save(tmp_path / "plain.bigem")
    assert "precisions_cholesky" not in read_model_file(tmp_path / "plain.bigem")[0]
    setattr(est, edited, getattr(est, edited) * 0.5)
    est.save(tmp_path / "m.bigem")
    assert "precisions_cholesky" in read_model_file(tmp_path / "m.bigem")[0]
    loaded = bigem.load(tmp_path / "m.bigem")
    for name in ("covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(est, name), err_msg=name)
    np.testing.assert_array_equal(loaded.score_samples(X), est.score_samples(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(loaded.sample(20)[0], est.sample(20)[0])


def test_round_trip_keeps_initial_parameters_and_float64(tmp_path):
    X = _blobs()
    inits = dict(weights_init=[0.4, 0.6], means_init=[[0.0, 0.0, 0.0], [6.0, 6.0, 6.0]], precisions_init=np.ones((2, 3)))
    est = GaussianMixture(2, covariance_type="diag", dtype="float64", random_state=3, **inits).fit(X)
    est.save(tmp_path / "m.bigem")
    loaded = bigem.load(tmp_path / "m.bigem")
    for name, value in inits.items():
        np.testing.assert_array_equal(getattr(loaded, name), value)
    assert loaded.dtype == "float64" and loaded.random_state == 3
    np.testing.assert_array_equal(loaded.score_samples(X), est.score_samples(X))


def test_load_accepts_a_str_path_and_saving_twice_overwrites(fitted, tmp_path):
    path = tmp_path / "m.bigem"
    fitted["diag"].save(str(path))
    fitted["full"].save(str(path))
    loaded = bigem.load(str(path))
    assert loaded.covariance_type == "full"
    assert sorted(os.listdir(tmp_path)) == ["m.bigem"]


def test_feature_names_survive(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(_blobs(), columns=["height", "width", "depth"])
    est = GaussianMixture(2, random_state=0).fit(frame)
    est.save(tmp_path / "m.bigem")
    loaded = bigem.load(tmp_path / "m.bigem")
    np.testing.assert_array_equal(loaded.feature_names_in_, ["height", "width", "depth"])
    assert loaded.feature_names_in_.dtype == object
    np.testing.assert_array_equal(loaded.predict(frame), est.predict(frame))
    with pytest.raises(ValueError, match="The feature names should match those that were passed during fit"):
        loaded.predict(frame[["width", "height", "depth"]])


# ---------------------------------------------------------------------- the format


def test_file_opens_with_the_safetensors_library(fitted, saved):
    st_numpy = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    path, _ = saved
    est = fitted["full"]
    tensors = st_numpy.load_file(str(path))
    assert sorted(tensors) == ["covariances", "means", "weights"]
    np.testing.assert_array_equal(tensors["weights"], est.weights_)
    np.testing.assert_array_equal(tensors["means"], est.means_)
    np.testing.assert_array_equal(tensors["covariances"], est.covariances_)
    assert all(t.dtype == np.float64 for t in tensors.values())
    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()["bigem"])
    assert meta["format"] == "bigem-model" and meta["format_version"] == 1
    assert meta["kind"] == "GaussianMixture" and meta["bigem_version"] == bigem.__version__
    assert meta["hyper_parameters"]["covariance_type"] == "full"
    assert meta["fitted"]["n_features_in_"] == 3


def test_file_holds_no_pickle(saved):
    path, raw = saved
    header, body = _split(raw)
    # the file opens with its header's length and the JSON header, not a pickle stream (whose
    # first byte, 0x80, the length's first byte can equal by chance: that alone proves nothing)
    (n,) = struct.unpack("<Q", raw[:8])
    assert raw[8:9] == b"{" and 8 + n <= len(raw)
    for marker in (b"numpy.core", b"_reconstruct", b"torch._utils", b"cnumpy", b"ctorch", b"PK\x03\x04"):
        assert marker not in raw
    meta = header.pop("__metadata__")
    assert set(meta) == {"bigem", "sha256"} and isinstance(json.loads(meta["bigem"]), dict)
    assert re.fullmatch(r"[0-9a-f]{64}", meta["sha256"])
    for name, info in header.items():
        assert set(info) == {"dtype", "shape", "data_offsets"}, name
        assert info["dtype"] == "F64", name
    assert sum(end - start for start, end in (i["data_offsets"] for i in header.values())) == len(body)


def test_load_runs_no_unpickler(saved, monkeypatch):
    path, _ = saved

    def forbidden(*args, **kwargs):
        raise AssertionError("bigem.load must not unpickle")

    for owner, name in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load"), (np, "load")]:
        monkeypatch.setattr(owner, name, forbidden)
    assert bigem.load(path).n_components == 2


# ---------------------------------------------------------------------- unreadable files


def test_missing_file(tmp_path):
    path = tmp_path / "nope.bigem"
    _load_raises(path, rf"^{_where(path)}: no such model file; check the path$")


def test_folder_instead_of_a_file(tmp_path):
    _load_raises(tmp_path, rf"^{_where(tmp_path)}: is a folder, not a model file$")


def test_empty_file(tmp_path):
    path = _write(tmp_path / "empty.bigem", b"")
    _load_raises(path, rf"^{_where(path)}: not a valid bigem model file \(only 0 bytes; truncated or empty\)$")


@pytest.mark.parametrize(
    "where", ["in the length", "after the length", "in the header", "end of header", "in the data", "last byte"]
)
def test_truncated_file(saved, tmp_path, where):
    path, raw = saved
    (n,) = struct.unpack("<Q", raw[:8])
    cut, expected = {
        "in the length": (5, r"\(only 5 bytes; truncated or empty\)"),
        "after the length": (8, rf"\(header length {n} exceeds the file size 8; truncated or not safetensors\)"),
        "in the header": (8 + n // 2, rf"\(header length {n} exceeds the file size {8 + n // 2}; truncated or not "
                                     r"safetensors\)"),
        "end of header": (8 + n, r"\(tensor 'covariances': shape \(2, 3, 3\) does not match bytes 0\.\.144 of 0; "
                                 r"the file is truncated or was modified\)"),
        "in the data": (8 + n + 150, r"\(tensor 'means': shape \(2, 3\) does not match bytes 144\.\.192 of 150; "
                                     r"the file is truncated or was modified\)"),
        "last byte": (len(raw) - 1, r"\(tensor 'weights': shape \(2,\) does not match bytes 192\.\.208 of 207; "
                                    r"the file is truncated or was modified\)"),
    }[where]
    _write(path, raw[:cut])
    _load_raises(path, rf"^{_where(path)}: not a valid bigem model file {expected}$")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_garbage(tmp_path, seed):
    path = _write(tmp_path / "garbage.bigem", np.random.default_rng(seed).bytes(600))
    _load_raises(path, rf"^{_where(path)}: not a valid bigem model file \(header length \d+ exceeds the file size 600")


def test_garbage_after_a_plausible_length(tmp_path):
    path = _write(tmp_path / "garbage.bigem", struct.pack("<Q", 16) + b"\xff\xfe" * 8 + b"\x00" * 16)
    _load_raises(path, rf"^{_where(path)}: not a valid bigem model file \(unreadable header: 'utf-8' codec can't")


@pytest.mark.parametrize("header", [b"123", b'"text"', b"null", b"[1, 2]", b"{not json}"])
def test_header_that_is_not_a_json_object(tmp_path, header):
    path = _write(tmp_path / "m.bigem", _join_raw(header))
    _load_raises(path, rf"^{_where(path)}: not a valid bigem model file \((header is not a JSON object|unreadable header)")


def _join_raw(head: bytes, body: bytes = b"") -> bytes:
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + body


def test_safetensors_file_that_is_not_a_bigem_model(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "other.safetensors"
    st_numpy.save_file({"weight": np.ones((2, 2))}, str(path))
    _load_raises(
        path,
        rf"^{_where(path)}: not a valid bigem model file \(no bigem metadata in the header; write model files with "
        r"the estimator's save\)$",
    )


# ---------------------------------------------------------------------- forged headers: valid JSON, wrong layout


def _tamper_offsets(h):
    h["means"]["data_offsets"][1] += 8


def _tamper_shape(h):
    h["means"]["shape"] = [4, 3]


def _swap_offsets(h):
    h["means"]["data_offsets"], h["weights"]["data_offsets"] = h["weights"]["data_offsets"], h["means"]["data_offsets"]


def _negative_offset(h):
    h["weights"]["data_offsets"] = [-16, 0]


def _huge_shape(h):  # 2**32 * 2**32 * 8 bytes overflows int64 to 0 bytes; Python ints do not
    h["weights"] = {"dtype": "F64", "shape": [2**32, 2**32], "data_offsets": [0, 0]}


def _float_shape(h):
    h["weights"]["shape"] = [2.0]


def _unknown_dtype(h):
    h["means"]["dtype"] = "F16"


def _missing_field(h):
    del h["means"]["data_offsets"]


@pytest.mark.parametrize(
    "tamper, expected",
    [
        (_tamper_offsets, r"tensor 'means': shape \(2, 3\) does not match bytes 144\.\.200 of 208; the file is "
                          r"truncated or was modified"),
        (_tamper_shape, r"tensor 'means': shape \(4, 3\) does not match bytes 144\.\.192 of 208"),
        (_swap_offsets, r"tensor 'means': shape \(2, 3\) does not match bytes 192\.\.208 of 208"),
        (_negative_offset, r"tensor 'weights': shape \(2,\) does not match bytes -16\.\.0 of 208"),
        (_huge_shape, r"tensor 'weights': shape \(4294967296, 4294967296\) does not match bytes 0\.\.0 of 208"),
        (_float_shape, r"tensor 'weights': malformed entry 2\.0 is not an integer"),
        (_unknown_dtype, r"tensor 'means': malformed entry 'F16'"),
        (_missing_field, r"tensor 'means': malformed entry 'data_offsets'"),
    ],
    ids=["offsets", "shape", "swapped", "negative offset", "overflowing shape", "float shape", "dtype", "missing"],
)
def test_forged_offsets_and_shapes(saved, tamper, expected):
    path, raw = saved
    header, body = _split(raw)
    tamper(header)
    _write(path, _join(header, body))
    _load_raises(path, rf"^{_where(path)}: not a valid bigem model file \({expected}")


def test_trailing_bytes(saved):
    path, raw = saved
    _write(path, raw + b"\x00" * 8)
    _load_raises(path, rf"^{_where(path)}: not a valid bigem model file \(8 trailing bytes; the file was modified\)$")


def test_consistent_layout_with_shapes_that_do_not_fit_the_model(saved):
    path, raw = saved
    header, body = _split(raw)
    header["means"]["shape"] = [1, 6]  # same 48 bytes, wrong number of components
    _write(path, _join(header, body))
    _load_raises(path, rf"^{_where(path)}: tensor shapes do not match n_components=2; the file is damaged$")


# ---------------------------------------------------------------------- damaged bytes
@pytest.mark.parametrize("where", ["a parameter", "a hyper-parameter"])
def test_a_flipped_bit_is_a_defect_not_another_model(saved, where):
    # one bit of a mean loaded without complaint (3.9458 became 3.8208)
    path, raw = saved
    header, body = _split(raw)
    if where == "a parameter":
        start = header["means"]["data_offsets"][0]
        body = body[:start + 6] + bytes([body[start + 6] ^ 0x04]) + body[start + 7:]
    else:
        text = header["__metadata__"]["bigem"]
        assert '"max_iter": 100' in text
        header["__metadata__"]["bigem"] = text.replace('"max_iter": 100', '"max_iter": 900')
    _write(path, _join(header, body, signed=False))
    _load_raises(path, rf"^{_where(path)}: not a valid bigem model file \(its bytes do not match the checksum "
                       r"written with them: the file was damaged or modified after it was written; save the model again\)$")


def test_a_file_without_a_checksum_is_read_as_before(saved):
    path, raw = saved
    header, body = _split(raw)
    del header["__metadata__"]["sha256"]  # as earlier versions wrote them
    loaded = bigem.load(_write(path, _join(header, body)))
    np.testing.assert_array_equal(loaded.means_, bigem.load(_write(path, raw)).means_)


# ---------------------------------------------------------------------- forged metadata


def _tamper_meta(saved, edit) -> os.PathLike:
    path, raw = saved
    header, body = _split(raw)
    meta = json.loads(header["__metadata__"]["bigem"])
    edit(meta)
    header["__metadata__"]["bigem"] = json.dumps(meta)
    return _write(path, _join(header, body))


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("kind", "KMeans", r"unknown model kind 'KMeans'; known: \[('\w+', )*'GaussianMixture'(, '\w+')*\]$"),
        ("kind", None, r"unknown model kind None; known: \[('\w+', )*'GaussianMixture'(, '\w+')*\]$"),
        ("format_version", 99, r"model file format version 99 is not supported by bigem \S+ \(expects 1\); "
                               r"upgrade bigem$"),
        ("format_version", "1", r"model file format version '1' is not supported"),
        ("format", "other", r"not a bigem model file \(format 'other'\)$"),
    ],
)
def test_forged_kind_or_version(saved, key, value, expected):
    path = _tamper_meta(saved, lambda m: m.__setitem__(key, value))
    _load_raises(path, rf"^{_where(path)}: {expected}")


def test_unknown_hyper_parameter(saved):
    path = _tamper_meta(saved, lambda m: m["hyper_parameters"].__setitem__("banana", 1))
    _load_raises(path, rf"^{_where(path)}: unknown hyper-parameters \['banana'\]$")


def test_a_newer_bigems_hyper_parameter_says_to_upgrade(saved):
    def newer(m):
        m["hyper_parameters"]["banana"] = 1
        m["bigem_version"] = "99.0.0"

    path = _tamper_meta(saved, newer)
    _load_raises(path, rf"^{_where(path)}: unknown hyper-parameters \['banana'\] \(written by bigem 99.0.0, this is "
                       rf"bigem {re.escape(bigem.__version__)}: upgrade bigem to read it\)$")


def test_an_estimator_without_model_files_is_no_kind(saved):
    """StepMix and StepMixClassifier pickle but have no save: a file naming them is
    refused by kind, not with an AttributeError."""
    path = _tamper_meta(saved, lambda m: m.update(kind="StepMix", hyper_parameters={}))
    _load_raises(path, rf"^{_where(path)}: unknown model kind 'StepMix'; known: ")


@pytest.mark.parametrize("name, named", [("x.npy", "a .npy array"), ("x.parquet", "a Parquet file"),
                                         ("x.csv", r"a text file \(CSV\?\)"), ("h.csv", r"a text file \(CSV\?\)")])
def test_a_data_file_given_as_the_model_is_named(tmp_path, name, named):
    """Model and data swapped on the command line: the data file is named for what it
    is (it was "header length 379676406402707 exceeds the file size")."""
    path = tmp_path / name
    if name == "x.npy":
        np.save(path, np.zeros((40, 2)))
    elif name == "x.parquet":
        __import__("pandas").DataFrame({"x": [1.0, 2.0]}).to_parquet(path)
    else:
        path.write_text("x,y\n1,2\n" if name == "x.csv" else "x,y\n")  # 4 bytes: too short for a length
    _load_raises(path, rf"^{_where(path)}: not a valid bigem model file: it is {named}, not a model file \(a model "
                       r"file is what an estimator's save or `bigem fit -o` writes; on the command line the model "
                       r"comes before the data\)$")


def test_invalid_hyper_parameter_value(saved):
    path = _tamper_meta(saved, lambda m: m["hyper_parameters"].__setitem__("covariance_type", "banana"))
    _load_raises(
        path,
        rf"^{_where(path)}: invalid model contents \(ParameterError: The 'covariance_type' parameter of "
        r"GaussianMixture must be a str among",
    )


def test_missing_metadata_section(saved):
    path = _tamper_meta(saved, lambda m: m.pop("fitted"))
    _load_raises(path, rf"^{_where(path)}: invalid model contents \(KeyError: 'fitted'\)$")


def test_metadata_that_is_not_json(saved):
    path, raw = saved
    header, body = _split(raw)
    header["__metadata__"]["bigem"] = "{oops"
    _write(path, _join(header, body))
    _load_raises(path, rf"^{_where(path)}: not a valid bigem model file \(unreadable bigem metadata: ")


# ---------------------------------------------------------------------- forged parameters


def _replace_tensors(fitted, tmp_path, covariance_type, **replace):
    path = tmp_path / "forged.bigem"
    fitted[covariance_type].save(path)
    tensors, meta = read_model_file(path)
    for name, value in replace.items():
        tensors[name] = torch.as_tensor(np.asarray(value, dtype=np.float64))
    write_model_file(path, tensors, meta)
    return path


_NOT_PD = [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]  # eigenvalues 3, 1, -1


@pytest.mark.parametrize(
    "covariance_type, covariances, expected",
    [
        ("full", [np.eye(3), _NOT_PD], r"covariance of component 1 is not symmetric positive definite"),
        ("full", [np.eye(3), np.full((3, 3), np.nan)], r"covariance of component 1 is not symmetric positive definite"),
        ("tied", _NOT_PD, r"tied covariance 0 is not symmetric positive definite"),
        ("diag", [[1.0, 1.0, 1.0], [1.0, -1.0, 1.0]], r"variance of component 1 is not positive"),
        ("diag", [[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]], r"variance of component 0 is not positive"),
        ("spherical", [1.0, -2.0], r"variance of component 1 is not positive"),
        ("spherical", [np.inf, 1.0], r"variance of component 0 is not positive"),
    ],
    ids=["full", "full NaN", "tied", "diag negative", "diag zero", "spherical negative", "spherical inf"],
)
def test_covariances_that_are_not_positive_definite(fitted, tmp_path, covariance_type, covariances, expected):
    path = _replace_tensors(fitted, tmp_path, covariance_type, covariances=covariances)
    _load_raises(path, rf"^{_where(path)}: invalid parameters: ({expected}|covariances contain NaN or infinity)")


def test_asymmetric_covariance_is_refused(fitted, tmp_path):
    asymmetric = np.array([np.eye(3), [[2.0, 0.5, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]]])
    path = _replace_tensors(fitted, tmp_path, "full", covariances=asymmetric)
    _load_raises(path, rf"^{_where(path)}: .*symmetric")


@pytest.mark.parametrize(
    "weights",
    [[0.5, 0.8], [0.2, 0.2], [1.5, -0.5]],
    ids=["sum 1.3", "sum 0.4", "negative"],
)
def test_weights_that_are_not_a_distribution(fitted, tmp_path, weights):
    path = _replace_tensors(fitted, tmp_path, "full", weights=weights)
    _load_raises(path, rf"^{_where(path)}: invalid parameters: (weights must be non-negative and sum to 1|means contain NaN or infinity).*the file is damaged$")


@pytest.mark.parametrize("weights", [[np.nan, np.nan], [np.nan, 1.0]], ids=["all NaN", "one NaN"])
def test_nan_weights_are_refused(fitted, tmp_path, weights):
    path = _replace_tensors(fitted, tmp_path, "full", weights=weights)
    _load_raises(path, rf"^{_where(path)}: invalid parameters")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_means(fitted, tmp_path, bad):
    means = fitted["diag"].means_.copy()
    means[1, 2] = bad
    path = _replace_tensors(fitted, tmp_path, "diag", means=means)
    _load_raises(path, rf"^{_where(path)}: invalid parameters: (weights must be non-negative and sum to 1|means contain NaN or infinity).*the file is damaged$")


# ---------------------------------------------------------------------- saving


def test_saving_an_unfitted_estimator(tmp_path):
    with pytest.raises(
        NotFittedError,
        match=r"^This GaussianMixture instance is not fitted yet\. Call 'fit' with appropriate arguments",
    ):
        GaussianMixture().save(tmp_path / "m.bigem")
    assert os.listdir(tmp_path) == []


def test_a_model_or_checkpoint_is_never_written_over_data(fitted, tmp_path):
    """A slip of the path wrote the model over a data set (save("holdout.parquet") or a
    checkpoint at "train.csv"); a path that names data is refused, the data untouched."""
    from bigem import GaussianMixture
    from bigem.errors import OutputPathError

    data = tmp_path / "holdout.csv"
    data.write_text("a,b\n1,2\n")
    with pytest.raises(OutputPathError, match=r"a model file would be written to a path that names data \(\.csv\)"):
        fitted["full"].save(data)
    for name in ("x.parquet", "x.npy", "x.csv.gz"):
        with pytest.raises(OutputPathError, match="names data"):
            fitted["full"].save(tmp_path / name)
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(OutputPathError, match=r"checkpoint .*x\.npy: a checkpoint file would be written"):
        GaussianMixture(2, random_state=0).fit(X, checkpoint=tmp_path / "x.npy")
    assert data.read_text() == "a,b\n1,2\n" and sorted(os.listdir(tmp_path)) == ["holdout.csv"]
    fitted["full"].save(tmp_path / "m.model")  # any other extension is the user's choice


def test_saving_into_a_missing_folder(fitted, tmp_path):
    path = tmp_path / "missing" / "m.bigem"
    with pytest.raises(
        FileNotFoundError,
        match=rf"the folder '{_where(path.parent)}' does not exist; create it first",
    ):
        fitted["full"].save(path)
    assert os.listdir(tmp_path) == []


class _Boom(OSError):
    pass


def _boom(*args, **kwargs):
    raise _Boom("disk full")


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    "target, effect, raised",
    # an OS error about the temporary names the output instead
    [("replace", _boom, OutputPathError), ("fsync", _boom, OutputPathError), ("fsync", _interrupt, KeyboardInterrupt)],
    ids=["rename fails", "write fails", "interrupted"],
)
def test_failed_save_leaves_no_file_and_no_temporary(fitted, tmp_path, monkeypatch, target, effect, raised):
    monkeypatch.setattr(os, target, effect)
    with pytest.raises(raised):
        fitted["full"].save(tmp_path / "m.bigem")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "target, effect, raised",
    # an OS error about the temporary names the output instead
    [("replace", _boom, OutputPathError), ("fsync", _boom, OutputPathError), ("fsync", _interrupt, KeyboardInterrupt)],
    ids=["rename fails", "write fails", "interrupted"],
)
def test_failed_save_leaves_the_existing_model_unchanged(fitted, tmp_path, monkeypatch, target, effect, raised):
    path = tmp_path / "m.bigem"
    fitted["diag"].save(path)
    before = path.read_bytes()
    monkeypatch.setattr(os, target, effect)
    with pytest.raises(raised):
        fitted["full"].save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["m.bigem"]
    assert path.read_bytes() == before
    assert bigem.load(path).covariance_type == "diag"


def test_saved_file_has_ordinary_permissions(fitted, tmp_path):
    path = tmp_path / "m.bigem"
    fitted["full"].save(path)
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)


# ---------------------------------------------------------------------- a model file is data, never instructions


_MACHINE = {"client": "tcp://192.0.2.1:8786", "engine": "dask", "chunk_size": 1, "memory_budget": "900GB",
            "cache_budget": "900GB"}


def test_saved_file_holds_no_execution_settings(fitted, tmp_path):
    path = tmp_path / "m.bigem"
    GaussianMixture(2, engine="local", chunk_size=7, memory_budget="64MB", cache_budget=0, random_state=0).fit(
        _blobs()).save(path)
    _, meta = read_model_file(path)
    assert not set(_MACHINE) & set(meta["hyper_parameters"])


def test_a_file_cannot_make_a_fit_connect_anywhere(saved, monkeypatch):
    path = _tamper_meta(saved, lambda m: m["hyper_parameters"].update(_MACHINE))
    loaded = bigem.load(path)
    defaults = GaussianMixture().get_params()
    assert {name: getattr(loaded, name) for name in _MACHINE} == {name: defaults[name] for name in _MACHINE}

    def reach(*args, **kwargs):
        raise AssertionError("a model file made a fit reach a Dask cluster")

    monkeypatch.setattr(dask_engine, "session", reach)
    loaded.fit(_blobs())  # locally, in chunks of the default size
    assert loaded.converged_


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("max_iter", 10**12, r"'max_iter' parameter of GaussianMixture must be at most 1000000, far beyond any "
                             r"real fit\. Got 1000000000000 instead\.\)$"),
        ("max_iter", 1e12, r"'max_iter' parameter of GaussianMixture must be an int in the range \[0, inf\)"),
        ("n_init", 10**9, r"'n_init' parameter of GaussianMixture must be at most 1000, far beyond any real fit"),
        ("tol", "0.1", r"'tol' parameter of GaussianMixture must be a float"),
        ("tol", 10**400, r"'tol' parameter of GaussianMixture must be a float in the range \[0\.0, inf\)\. Got 1000"),
    ],
)
def test_hyper_parameters_in_a_file_have_the_constructors_bounds(saved, name, value, expected):
    path = _tamper_meta(saved, lambda m: m["hyper_parameters"].__setitem__(name, value))
    _load_raises(path, rf"^{_where(path)}: invalid model contents \(ParameterError: The {expected}")


def test_hmm_iterations_in_a_file_are_bounded(tmp_path):
    hmm = bigem.GaussianHMM(2, n_iter=2, random_state=0).fit(_blobs())
    path = tmp_path / "h.bigem"
    hmm.save(path)
    path = _tamper_meta((path, path.read_bytes()), lambda m: m["hyper_parameters"].__setitem__("n_iter", 10**12))
    _load_raises(path, r"'n_iter' parameter of GaussianHMM must be at most 1000000, far beyond any real fit")


@pytest.mark.parametrize(
    "make, name, limit",
    [
        (lambda v: GaussianMixture(2, max_iter=v), "max_iter", 10**6),
        (lambda v: GaussianMixture(2, n_init=v), "n_init", 1000),
        (lambda v: GaussianMixture(2, chunk_size=v), "chunk_size", 2**31 - 1),
        (lambda v: GaussianMixture(2, algorithm="online", batch_size=v), "batch_size", 2**31 - 1),
        (lambda v: bigem.GaussianHMM(2, n_iter=v), "n_iter", 10**6),
    ],
    ids=["max_iter", "n_init", "chunk_size", "batch_size", "hmm n_iter"],
)
def test_the_constructor_has_the_same_sanity_bounds(make, name, limit):
    X = _blobs()
    make(limit)._settings()  # the bound itself is allowed
    with pytest.raises(ValueError, match=rf"^The '{name}' parameter of \w+ must be at most {limit}, far beyond any "
                                         rf"real fit\. Got {limit + 1} instead\.$"):
        make(limit + 1).fit(X)


# ---------------------------------------------------------------------- files that are not files, and bounded reads


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    import threading

    fifo = tmp_path / "m.bigem"
    os.mkfifo(fifo)
    outcome = []

    def load():
        try:
            bigem.load(fifo)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            outcome.append(exc)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=30)
    if thread.is_alive():  # unblock the reader before failing: a writer opens, then closes
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout=30)
        pytest.fail("load blocked on a FIFO")
    assert len(outcome) == 1 and isinstance(outcome[0], ModelFileError), outcome
    assert re.match(rf"^{_where(fifo)}: is a FIFO \(named pipe\), not a model file; give the path of a file written "
                    r"by save$", str(outcome[0]))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_link_to_an_endless_device_is_refused(tmp_path):
    link = tmp_path / "m.bigem"
    link.symlink_to("/dev/zero")
    _load_raises(link, rf"^{_where(link)}: is a character device, not a model file")


def test_reads_no_more_than_the_header_declares(saved):
    import tracemalloc

    path, raw = saved
    with open(path, "r+b") as f:  # 128 MB of trailing zeros, sparse: nothing to read for the reader
        f.truncate(len(raw) + (128 << 20))
    tracemalloc.start()
    try:
        _load_raises(path, rf"^{_where(path)}: not a valid bigem model file \({128 << 20} trailing bytes; the file was "
                           r"modified\)$")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"read {peak} bytes"


@pytest.mark.parametrize("where", ["header", "bigem metadata"])
def test_deeply_nested_json(saved, where):
    path, raw = saved
    header, body = _split(raw)
    deep = "[" * 100_000 + "]" * 100_000
    if where == "header":
        data = _join_raw(json.dumps(header).encode()[:-1] + b', "x": ' + deep.encode() + b"}", body)
    else:
        header["__metadata__"]["bigem"] = header["__metadata__"]["bigem"][:-1] + ', "x": ' + deep + "}"
        data = _join(header, body)
    _write(path, data)
    _load_raises(path, rf"^{_where(path)}: not a valid bigem model file \(unreadable {where}: nested too deeply\)$")


# ---------------------------------------------------------------------- the fitted state, field by field


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda f: f.pop("converged_"), r"field 'converged_' of the fitted state is missing"),
        (lambda f: f.update(converged_="no"), r"field 'converged_' of the fitted state must be true or false, got 'no'"),
        (lambda f: f.update(n_iter_="abc"), r"field 'n_iter_' of the fitted state must be an integer in \[0, 1000000\], "
                                            r"got 'abc'"),
        (lambda f: f.update(n_iter_=-1), r"field 'n_iter_' of the fitted state must be an integer in \[0, 1000000\], got -1"),
        (lambda f: f.update(n_iter_=2.5), r"field 'n_iter_' .* got 2\.5"),
        (lambda f: f.update(n_iter_=10**400), r"field 'n_iter_' .* got 1000000000000000000000000000000000000000000000000"),
        (lambda f: f.update(lower_bound_=[1, 2]), r"field 'lower_bound_' of the fitted state must be a number, got \[1, 2\]"),
        (lambda f: f.update(lower_bound_=True), r"field 'lower_bound_' of the fitted state must be a number, got True"),
        (lambda f: f.update(lower_bound_=-(10**400)), r"field 'lower_bound_' of the fitted state must be a number, got -1000"),
        (lambda f: f.update(lower_bounds_=[1.0, "x"]), r"field 'lower_bounds_' .* must be a list of numbers"),
        (lambda f: f.update(history_=[1]), r"the fitted state's history_\[0\] is not a JSON object, got 1"),
        (lambda f: f.update(history_=[{"log_likelihood": [1.0], "converged": True, "n_iter": "7"}]),
         r"field 'n_iter' of the fitted state's history_\[0\] must be an integer in \[0, 1000000\], "
         r"got '7'"),
        (lambda f: f.update(n_features_in_=0), r"field 'n_features_in_' of the fitted state must be an integer >= 1"),
        (lambda f: f.update(n_features_in_=5), r"n_features_in_ is 5 but the parameters have 3 features"),
        (lambda f: f.update(feature_names_in_=["a", "b"]), r"feature_names_in_ has 2 names but n_features_in_ is 3"),
        (lambda f: f.update(feature_names_in_=[1, 2, 3]), r"field 'feature_names_in_' .* must be a list of strings"),
    ],
    ids=["missing", "converged str", "n_iter str", "n_iter negative", "n_iter float", "n_iter huge", "bound list",
         "bound bool", "bound beyond float", "bounds str", "history int", "history n_iter str", "no features", "features mismatch",
         "names mismatch", "names ints"],
)
def test_fitted_fields_are_checked_by_type(saved, edit, expected):
    path = _tamper_meta(saved, lambda m: edit(m["fitted"]))
    _load_raises(path, rf"^{_where(path)}: invalid model contents \({expected}.*\); the file is damaged$")


@pytest.mark.parametrize("section", ["fitted", "hyper_parameters"])
def test_sections_that_are_not_objects(saved, section):
    path = _tamper_meta(saved, lambda m: m.__setitem__(section, [1, 2]))
    _load_raises(path, rf"^{_where(path)}: invalid model contents \(the '{section}' section is not a JSON object\)$")


def test_a_kind_that_is_not_a_name(saved):
    path = _tamper_meta(saved, lambda m: m.__setitem__("kind", ["GaussianMixture"]))
    _load_raises(path, rf"^{_where(path)}: unknown model kind \['GaussianMixture'\]")


def _hmms() -> dict:
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0.0, 1.0, (60, 2)), rng.normal(5.0, 1.0, (60, 2))])
    counts = rng.poisson(3.0, (120, 2))
    return {
        "GaussianHMM": (bigem.GaussianHMM(2, n_iter=2, random_state=0), X),
        "GMMHMM": (bigem.GMMHMM(2, n_mix=2, n_iter=2, random_state=0), X),
        "PoissonHMM": (bigem.PoissonHMM(2, n_iter=2, random_state=0), counts),
        "CategoricalHMM": (bigem.CategoricalHMM(2, n_iter=2, random_state=0), counts[:, :1]),
        "MultinomialHMM": (bigem.MultinomialHMM(2, n_trials=6, n_iter=2, random_state=0), np.c_[counts[:, :1] % 7, 6 - counts[:, :1] % 7]),
    }


@pytest.fixture(scope="module")
def hmm_files(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("hmms")
    out = {}
    for kind, (est, X) in _hmms().items():
        est.fit(X).save(d / f"{kind}.bigem")
        out[kind] = (d / f"{kind}.bigem").read_bytes()
    return out


@pytest.mark.parametrize("kind", ["GaussianHMM", "GMMHMM", "PoissonHMM", "CategoricalHMM", "MultinomialHMM"])
@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda f: f.update(n_features="2"), r"field 'n_features' of the fitted state must be an integer >= 1, got '2'"),
        (lambda f: f.update(n_features=7), r"n_features is 7 but the emission parameters have \d+"),
        (lambda f: f.update(iter=-3), r"field 'iter' of the fitted state must be an integer in \[0, 1000000\], got -3"),
        (lambda f: f.update(history={"a": 1}), r"field 'history' of the fitted state must be a list of numbers"),
        (lambda f: f.update(converged="yes"), r"field 'converged' of the fitted state must be true or false, got 'yes'"),
    ],
    ids=["n_features str", "n_features mismatch", "iter negative", "history object", "converged str"],
)
def test_hmm_fitted_fields_are_checked_by_type(hmm_files, tmp_path, kind, edit, expected):
    path = tmp_path / "h.bigem"
    path = _tamper_meta((path, hmm_files[kind]), lambda m: edit(m["fitted"]))
    _load_raises(path, rf"^{_where(path)}: invalid model contents \({expected}.*\); the file is damaged$")


_ODD = [None, True, -1, 2.5, float("nan"), 10**400, "x", [], [1, [2]], {"a": 1}]


@pytest.mark.parametrize("kind", ["GaussianMixture", "GaussianHMM", "GMMHMM", "PoissonHMM", "CategoricalHMM", "MultinomialHMM"])
def test_any_odd_metadata_value_loads_or_is_a_model_file_error(fitted, hmm_files, tmp_path, kind):
    if kind == "GaussianMixture":
        fitted["diag"].save(tmp_path / "m.bigem")
        raw = (tmp_path / "m.bigem").read_bytes()
    else:
        raw = hmm_files[kind]
    header, body = _split(raw)
    meta = json.loads(header["__metadata__"]["bigem"])
    fields = [(None, k) for k in meta] + [(s, k) for s in ("hyper_parameters", "fitted") for k in meta[s]]
    for section, key in fields:
        for value in _ODD:
            edited = json.loads(json.dumps(meta))
            (edited if section is None else edited[section])[key] = value
            header["__metadata__"]["bigem"] = json.dumps(edited)
            path = _write(tmp_path / "odd.bigem", _join(header, body))
            try:
                bigem.load(path)
            except ModelFileError:
                pass
            except Exception as exc:  # noqa: BLE001
                pytest.fail(f"{section}.{key} = {value!r}: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------- parameters beyond the arithmetic


def _scaled(t: dict, name: str, factor: float = 1.0, value: float | None = None) -> None:
    t[name] = t[name] * factor if value is None else torch.full_like(t[name], value)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda t: _scaled(t, "covariances", 1e-300), r"variances of (component 0|the tied covariance) reach [0-9.]+e-30[01], "
                                                     r"outside the \[1e-250, 1e\+250\] that float64 arithmetic can carry"),
        (lambda t: _scaled(t, "covariances", 1e300), r"variances of (component 0|the tied covariance) reach [0-9.]+e\+(299|300)"),
        (lambda t: _scaled(t, "means", value=1e300), r"means of component 0 reach 1e\+300, beyond the 1e\+150 that float64 "
                                                     r"arithmetic can square"),
        (lambda t: _scaled(t, "means", value=-1e200), r"means of component 0 reach -1e\+200"),
    ],
    ids=["covariance 1e-300", "covariance 1e300", "means 1e300", "means -1e200"],
)
def test_parameters_beyond_float64_are_refused(fitted, tmp_path, covariance_type, edit, expected):
    path = tmp_path / "m.bigem"
    fitted[covariance_type].save(path)
    tensors, meta = read_model_file(path)
    edit(tensors)
    write_model_file(path, tensors, meta)
    _load_raises(path, rf"^{_where(path)}: invalid parameters: {expected}.*; the file is damaged")


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_means_beyond_float32_are_refused_in_a_float32_model(fitted, tmp_path, covariance_type):
    path = tmp_path / "m.bigem"
    fitted[covariance_type].save(path)  # dtype float32
    tensors, meta = read_model_file(path)
    tensors["means"] = tensors["means"] + 1e100
    write_model_file(path, tensors, meta)
    _load_raises(path, rf"^{_where(path)}: invalid parameters: the components' log-densities at their own means are "
                       r"not finite in float32 \(at mean 0: nan")
    meta["hyper_parameters"]["dtype"] = "float64"  # the same parameters in float64: fine, and every score finite
    write_model_file(path, tensors, meta)
    loaded = bigem.load(path)
    assert np.isfinite(loaded.score_samples(loaded.means_)).all()


def _hmm_case(kind, covariance_type=None):
    est, X = _hmms()[kind]
    if covariance_type is not None:
        est.set_params(covariance_type=covariance_type)
    return est.fit(X)


@pytest.mark.parametrize(
    "kind, covariance_type, name, factor, value, expected",
    [
        *[(kind, ct, "_covars_" if kind == "GaussianHMM" else "covars_", 1e-300, None,
           r"variances of (state 0|the tied covariance) reach [0-9.]+e-30[01]")
          for kind in ("GaussianHMM", "GMMHMM") for ct in COV_TYPES],
        *[(kind, ct, "means_", 1.0, 1e300, r"means of state 0 reach 1e\+300")
          for kind in ("GaussianHMM", "GMMHMM") for ct in COV_TYPES],
        ("PoissonHMM", None, "lambdas_", 1.0, 1e300, r"rates of state 0 reach 1e\+300, beyond the 1e\+250"),
        ("PoissonHMM", None, "lambdas_", 1.0, 1e100, r"the states' log-densities at their own means are not finite in "
                                                     r"float32"),
        ("GaussianHMM", "diag", "means_", 1.0, 1e100, r"the states' log-densities at their own means are not finite in "
                                                      r"float32"),
        ("CategoricalHMM", None, "emissionprob_", 1.0, 0.7, r"row 0 of emissionprob_ sums to"),
        ("CategoricalHMM", None, "transmat_", -1.0, None, r"transmat_ has negative entries"),
    ],
)
def test_hmm_parameters_beyond_the_arithmetic_are_refused(tmp_path, kind, covariance_type, name, factor, value, expected):
    path = tmp_path / "h.bigem"
    _hmm_case(kind, covariance_type).save(path)
    tensors, meta = read_model_file(path)
    _scaled(tensors, name, factor, value)
    write_model_file(path, tensors, meta)
    _load_raises(path, rf"^{_where(path)}: invalid parameters \({expected}.*\); the file is damaged$")


def test_a_scalar_tensor_comes_back_a_scalar(tmp_path):
    """numpy's ascontiguousarray made a 0-d tensor (1,): a spherical
    BayesianGaussianMixture's prior came back of another shape, and its file was refused."""
    from bigem.io.safetensors import read_model_file, write_model_file

    path = tmp_path / "t.bigem"
    write_model_file(path, {"s": torch.tensor(1.5, dtype=torch.float64), "v": torch.ones(2)}, {"kind": "x"})
    tensors, _ = read_model_file(path)
    assert tensors["s"].shape == () and float(tensors["s"]) == 1.5 and tensors["v"].shape == (2,)


@pytest.mark.parametrize("family", ["GaussianMixture", "BernoulliMixture"])
def test_a_model_file_holds_no_row_of_the_data(tmp_path, family):
    """partial_fit's running state kept the K worst-explained rows, which (plus the
    stored shift) were rows of X: a file one shares held training data. They are left
    out, and partial_fit after load goes on as in the estimator saved."""
    import bigem
    from bigem.io.safetensors import read_model_file

    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 3)) if family == "GaussianMixture" else (rng.random((400, 3)) < 0.3).astype(float)
    model = getattr(bigem, family)(3, random_state=0, dtype="float64").fit(X)
    path = tmp_path / "m.bigem"
    model.save(path)
    tensors, _ = read_model_file(path)
    rows = {name: t for name, t in tensors.items() if name.endswith("worst.rows")}
    assert rows and all(t.shape[0] == 0 for t in rows.values())
    stored = np.concatenate([t.reshape(-1).numpy() for t in tensors.values() if t.is_floating_point()])
    assert not np.isin(X[:, 0], stored).any() or family == "BernoulliMixture"  # 0/1 values are everywhere
    batch = X[:100]
    back = bigem.load(path)
    np.testing.assert_allclose(back.partial_fit(batch).means_ if family == "GaussianMixture" else
                               back.partial_fit(batch).probabilities_,
                               model.partial_fit(batch).means_ if family == "GaussianMixture" else
                               model.partial_fit(batch).probabilities_, rtol=0, atol=1e-12)


def test_online_statistics_of_rows_with_gaps_survive_a_model_file_and_older_files_lack_them(tmp_path):
    """A diagonal fit with gaps keeps its observed-value moments and the mass that missed
    each feature (GaussianStats.unseen, gap_x, gap_xx) through a file; a file written
    before those fields existed loads them as 0 (its moments completed the gaps)."""
    import bigem

    rng = np.random.default_rng(5)
    X = rng.normal(size=(600, 3)) + rng.integers(0, 2, 600)[:, None] * 4
    X[rng.random(X.shape) < 0.2] = np.nan
    X = X[~np.isnan(X).all(1)]
    model = bigem.GaussianMixture(2, covariance_type="diag", missing_values="fiml", random_state=0,
                                  dtype="float64").fit(X)
    path = tmp_path / "m.bigem"
    model.save(path)
    batch = X[:150]
    ours = model.partial_fit(batch).means_
    np.testing.assert_allclose(bigem.load(path).partial_fit(batch).means_, ours, rtol=0, atol=1e-12)
    old = _tamper_meta((path, path.read_bytes()), lambda m: [
        m["online"]["running"]["fields"]["component"]["fields"].pop(name) for name in ("unseen", "gap_x", "gap_xx")])
    back = bigem.load(old)
    assert back._online_.running.component.unseen == 0.0
    assert np.isfinite(back.partial_fit(batch).means_).all()


@pytest.mark.parametrize("classes", [[[1], [2]], [1, None], [1]])
def test_a_classifier_file_whose_class_labels_are_not_labels_is_refused(tmp_path, classes):
    """Nested lists loaded and predicted lists ([[2], [2], ...])."""
    import bigem
    from bigem.errors import ModelFileError
    from bigem.io.safetensors import read_model_file, write_model_file

    X = np.random.default_rng(0).normal(size=(200, 3))
    path = tmp_path / "c.bigem"
    bigem.MixtureClassifier(n_components=2).fit(X, (X[:, 0] > 0).astype(int)).save(path)
    tensors, meta = read_model_file(path)
    meta["fitted"]["classes_"] = classes
    write_model_file(path, tensors, meta)
    with pytest.raises(ModelFileError, match="classes_ must list at least two distinct class labels"):
        bigem.load(path)


@pytest.mark.parametrize("kind", ["GaussianMixture", "BayesianGaussianMixture", "GaussianHMM"])
@pytest.mark.parametrize("state", [np.random.RandomState(0), np.random.default_rng(0)])
def test_a_random_state_object_is_saved_as_none_with_a_warning(tmp_path, state, kind):
    est = getattr(bigem, kind)(n_components=2, random_state=state).fit(_blobs())
    with pytest.warns(UserWarning, match=r"random_state is a numpy \w+, which a model file cannot hold") as got:
        est.save(tmp_path / "m.bigem")
    assert got[0].filename == __file__  # the user's line
    assert bigem.load(tmp_path / "m.bigem").random_state is None


def test_a_parts_random_state_object_warns_once(tmp_path):
    X = _blobs()
    model = bigem.StructuralModel(GaussianMixture(2, random_state=np.random.RandomState(0)), "gaussian")
    model.fit(X[:, :2], X[:, 2:])
    with pytest.warns(UserWarning, match="random_state is a numpy RandomState") as got:
        model.save(tmp_path / "m.bigem")
    assert len(got) == 1 and got[0].filename == __file__


def test_a_model_set_by_hand_with_its_precision_factors_alone_is_saved(tmp_path):
    """scikit-learn's hand-set model may give precisions_cholesky_ without covariances_;
    its file holds the covariances they give (save raised an AttributeError)."""
    est = GaussianMixture(2, covariance_type="diag")
    est.weights_, est.means_, est.precisions_cholesky_ = np.array([.5, .5]), np.zeros((2, 3)), np.full((2, 3), 2.0)
    X = _blobs(seed=2, n=5)
    est.save(tmp_path / "m.bigem")
    loaded = bigem.load(tmp_path / "m.bigem")
    np.testing.assert_array_equal(loaded.covariances_, np.full((2, 3), 0.25))
    np.testing.assert_array_equal(loaded.score_samples(X), est.score_samples(X))


def test_a_pre_release_version_reads_as_its_release():
    from bigem.estimators.persistence import _release

    assert _release("0.2.0rc1") == _release("0.2.0") == (0, 2, 0) and _release("1.3") == (1, 3, 0)
    assert _release("nonsense") == _release(None) == ()


@pytest.mark.parametrize("covariance_type", ["VVV", "VVI", "VII"])
@pytest.mark.parametrize("prior", ["default", {"shrinkage": 0.1, "mean": [1.0, 2.0, 3.0], "dof": 5.0}])
def test_the_resolved_prior_is_kept(tmp_path, covariance_type, prior):
    """prior_ (the values the fit resolved from the data) is a documented fitted attribute."""
    est = GaussianMixture(2, covariance_type=covariance_type, prior=prior, random_state=0).fit(_blobs())
    est.save(tmp_path / "m.bigem")
    loaded = bigem.load(tmp_path / "m.bigem")
    assert set(loaded.prior_) == set(est.prior_)
    for key, value in est.prior_.items():
        assert type(loaded.prior_[key]) is type(value)
        np.testing.assert_array_equal(loaded.prior_[key], value, err_msg=key)
    plain = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(_blobs())
    plain.save(tmp_path / "p.bigem")
    assert not hasattr(bigem.load(tmp_path / "p.bigem"), "prior_")
