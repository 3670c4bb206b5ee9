"""An output written where a later read of the input would take it as data (inside the
input folder, or matched by the input pattern) is refused before any work, in Python and
on the command line: the next fit on that folder would read predictions or imputed rows
as more rows without a word."""

from __future__ import annotations

import glob
import os

import numpy as np
import pandas as pd
import pytest

import bigem
from bigem.cli import main
from bigem.errors import DataError
from bigem.sources.paths import read_later


@pytest.fixture()
def folder(tmp_path):
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (100, 2)), rng.normal(5, 1, (100, 2))]
    d = tmp_path / "data"
    (d / "sub").mkdir(parents=True)
    pd.DataFrame(X, columns=["a", "b"]).to_csv(d / "part0.csv", index=False)
    model = bigem.GaussianMixture(2, random_state=0).fit(str(d))
    model.save(str(tmp_path / "m.bigem"))
    return d, model


def test_read_later_follows_the_rules_of_folder_and_pattern_reads(folder):
    d, _ = folder
    assert read_later(str(d / "labels.csv"), str(d))
    assert read_later(str(d / "sub" / "labels.parquet"), str(d))  # folders are walked at any depth
    assert not read_later(str(d / "labels.png"), str(d))  # not a format bigem reads
    assert read_later(str(d / "labels.png"), str(d), every=True)  # Files(format=) reads every file
    for hidden in ("_labels.csv", ".labels.csv", os.path.join("_tmp", "labels.csv")):
        assert not read_later(str(d / hidden), str(d))
    assert not read_later(str(d.parent / "labels.csv"), str(d))
    assert not read_later(str(d) + "2/labels.csv", str(d))  # a folder beside it, named alike
    pattern = str(d / "*.csv")
    assert read_later(str(d / "labels.csv"), pattern)
    assert read_later(str(d / "_labels.csv"), pattern)  # a glob does not skip '_'
    assert not read_later(str(d / ".labels.csv"), pattern)  # nor matches a leading '.' with '*'
    assert not read_later(str(d / "labels.parquet"), pattern)
    assert not read_later(str(d / "sub" / "labels.csv"), pattern)  # '*' stays within a name
    assert not read_later(str(d / "plot.png"), str(d / "*"))  # matched, but a type no read takes (it stops there)
    assert not read_later(str(d / "labels.csv"), str(d / "part0.csv"))  # a file is read as itself only


def test_read_later_takes_recursive_globs_and_links_as_glob_reads_them(folder, tmp_path):
    d, _ = folder
    for pattern, inside, outside in [
        ("**/*.csv", ["filled.csv", "_x.csv", "sub/x.csv", "a/b/c.csv"], [".x.csv", ".cache/p.csv", "a/.p.csv"]),
        ("**/sub*/x.csv", ["sub/x.csv", "a/sub2/x.csv"], ["sub/deep/x.csv", "x.csv"]),
        ("**/x*.csv", ["x.csv", "a/x1.csv"], ["a/y.csv"]),
        ("[a-p]*.csv", ["labels.csv"], ["x.csv"]),
    ]:
        for name in inside + outside:
            (d / name).parent.mkdir(parents=True, exist_ok=True)
            (d / name).write_text("a,b\n1,2\n")
        read = {os.path.relpath(f, d) for f in glob.glob(str(d / pattern), recursive=True)}
        for name in inside + outside:  # against glob itself
            assert read_later(str(d / name), str(d / pattern)) == (name in read) == (name in inside), (pattern, name)
            (d / name).unlink()
    (tmp_path / "link").symlink_to(d)
    assert read_later(str(tmp_path / "link" / "p.csv"), str(d / "*.csv"))  # an output through a link
    assert read_later(str(d / "p.csv"), str(tmp_path / "link" / "*.csv"))  # an input through a link
    assert read_later(str(d / "p.csv"), str(tmp_path / "link"))


@pytest.mark.parametrize("call", ["predict", "predict_proba", "impute"])
def test_python_outputs_into_the_input_folder_are_refused_before_any_work(folder, call):
    d, model = folder
    before = sorted(os.listdir(d))
    with pytest.raises(DataError, match=r"is inside the input folder .*a later run on that data would read it as "
                                        r"data too; write it elsewhere, or under a name starting with '\.' or '_'"):
        getattr(model, call)(str(d), out=str(d / "out.parquet"))
    with pytest.raises(DataError, match=r"matched by the input pattern .*a name the pattern does not match"):
        getattr(model, call)([str(d / "*.csv")], out=str(d / "out.csv"))
    assert sorted(os.listdir(d)) == before
    getattr(model, call)(str(d), out=str(d / "_out.parquet"))  # a hidden name: folder reads skip it
    assert model.predict(str(d)).shape == (200,)  # and the folder reads as before


def test_cli_never_writes_over_a_file_the_input_folder_links_to(folder, tmp_path, capsys):
    """An input folder's file may be a link to a file elsewhere, which the folder's reads
    take: writing to that file, by its own path, is refused as writing to the input is."""
    d, _ = folder
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_text((d / "part0.csv").read_text())
    (d / "part1.csv").symlink_to(elsewhere)
    before = elsewhere.read_text()
    assert main(["predict", str(d.parent / "m.bigem"), str(d), "-o", str(elsewhere)]) == 2
    assert "is the input file" in capsys.readouterr().err and elsewhere.read_text() == before


@pytest.mark.parametrize("argv", [
    ["predict", "{m}", "{d}", "-o", "{d}/labels.csv"],
    ["impute", "{m}", "{d}", "-o", "{d}/sub/filled.parquet"],
    ["select", "{d}", "-k", "1..2", "-o", "{t}/s.bigem", "--table", "{d}/table.csv"],
    ["predict", "{m}", "{d}/*.csv", "-o", "{d}/labels.csv"],
])
def test_cli_outputs_into_the_input_are_refused_and_nothing_is_written(folder, argv, capsys):
    d, _ = folder
    t = d.parent
    before = sorted(os.listdir(t)), sorted(os.listdir(d))
    argv = [a.format(m=t / "m.bigem", d=d, t=t) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "a later run on that data would read it as data too" in err and err.count("\n") == 1
    assert (sorted(os.listdir(t)), sorted(os.listdir(d))) == before
