"""Run named cases of ``cases.py`` in this process of a torchrun group (engine='torch').

    python -m torch.distributed.run --standalone --nproc_per_node=2 -m tests.distributed.run_cases OUT name ...

Each process works in OUT/rank<r> and writes <name>.npz there (or <name>.error with the
exception, should a case fail unexpectedly).
"""

from __future__ import annotations

import os
import sys
import traceback

import numpy as np

from .cases import CASES


def main(out: str, names: list[str]) -> int:
    rank = int(os.environ["RANK"])
    here = os.path.join(out, f"rank{rank}")
    os.makedirs(here, exist_ok=True)
    os.chdir(here)
    for name in names:
        try:
            result = CASES[name]("torch")
        except Exception:
            with open(f"{name}.error", "w") as f:
                f.write(traceback.format_exc())
            continue
        np.savez(f"{name}.npz", **result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
