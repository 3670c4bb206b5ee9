"""Run every script of examples/ as a user would (``python NAME.py``), each in its own
folder ``build/examples/NAME/``: what it prints is kept in ``output.txt`` beside the
pictures it draws, for the documentation site. Stops at the first script that fails,
showing its output. ``make examples`` runs this; so does CI, through ``make docs``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 300  # seconds per script: they run on small data in a few seconds


def main(names: list[str]) -> int:
    scripts = sorted((ROOT / "examples").glob("*.py"))
    if names:
        scripts = [s for s in scripts if s.stem in names]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
           "MPLBACKEND": "Agg"}
    for script in scripts:
        out = ROOT / "build" / "examples" / script.stem
        shutil.rmtree(out, ignore_errors=True)  # a run starts from an empty folder (scripts write folders too)
        out.mkdir(parents=True)
        started = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, str(script)], cwd=out, env=env, capture_output=True, text=True,
                                  timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            print(f"examples/{script.name} ran past {TIMEOUT}s: make it smaller")
            return 1
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            print(f"examples/{script.name} failed (status {proc.returncode}):\n{proc.stdout}{proc.stderr}")
            return 1
        (out / "output.txt").write_text(proc.stdout, encoding="utf-8")
        pictures = ", ".join(p.name for p in sorted(out.glob("*.png")))
        print(f"examples/{script.name}: ok in {seconds:.1f}s" + (f" ({pictures})" if pictures else ""))
        if proc.stderr.strip():
            print("  stderr: " + proc.stderr.strip().replace("\n", "\n  "))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
