"""`bigem demo` through the real entry point."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

BIGEM = [sys.executable, "-c", "import sys; from bigem.cli import main; sys.exit(main())"]


def test_demo_prints_iterations_and_writes_a_picture(tmp_path):
    out = tmp_path / "fit.png"
    proc = subprocess.run([*BIGEM, "demo", "--rows", "20000", "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "converged=True" in text
    assert "component 1: weight 0.5007  mean 4.9919  variance 0.2422" in text  # = scikit-learn's answer
    assert "rows assigned to their true component" in text
    assert "timed after an untimed warm-up fit on 20,000 rows" in text  # the first fit's start-up is not timed
    assert "did not converge" not in proc.stderr + text  # the short warm-up fit's warning is not shown
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert not [p for p in os.listdir(tmp_path) if "partial" in p]


def test_demo_image_shows_both_components(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    from matplotlib import image

    del matplotlib
    out = tmp_path / "fit.png"
    subprocess.run([*BIGEM, "demo", "--rows", "2000", "--out", str(out)], check=True, capture_output=True)
    img = image.imread(out)
    assert img.shape[0] > 300 and img.shape[1] > 600
    # coloured (non-grey) pixels exist: the component curves were drawn
    rgb = img[..., :3]
    assert (np.ptp(rgb, axis=2) > 0.3).sum() > 500


def test_cli_errors_are_one_line_without_traceback():
    proc = subprocess.run([*BIGEM, "demo", "--device", "nonsense"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("bigem demo: error:") and "Traceback" not in proc.stderr
    assert "device" in proc.stderr


def test_a_picture_that_cannot_be_written_is_refused_before_the_demo_runs(tmp_path):
    """--out was checked when the picture was drawn, after the first part had run."""
    pytest.importorskip("matplotlib")
    proc = subprocess.run([*BIGEM, "demo", "--out", str(tmp_path / "nowhere" / "fit.png")], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    assert proc.stderr.startswith("bigem demo: error: picture") and "does not exist; create it first" in proc.stderr
    # a type the picture writer does not take (.pdf passed the check, then failed after part 1)
    proc = subprocess.run([*BIGEM, "demo", "--out", str(tmp_path / "fit.pdf")], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    assert "unsupported file type '.pdf'; use .png, .svg" in proc.stderr
