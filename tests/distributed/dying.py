"""One process of a pair fitting with engine='torch' whose second process dies (SIGKILL)
or freezes (SIGSTOP) at iteration 3. The survivor writes what it raised, and how long
after its own iteration 3 it raised it, to OUT/survivor.json.

    RANK=r WORLD_SIZE=2 MASTER_ADDR=... MASTER_PORT=... python -m tests.distributed.dying OUT kill|stop TIMEOUT
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import sys
import time
import warnings

import torch.distributed as dist

from .cases import blobs


def main(out: str, how: str, timeout: float) -> None:
    # a generous timeout to meet (a busy machine starts processes slowly), then the test's
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=120))
    dist.barrier()
    dist.group.WORLD.set_timeout(datetime.timedelta(seconds=timeout))
    rank = dist.get_rank()
    from bigem import GaussianMixture

    reached: list[float] = []

    def step(info) -> None:
        if info.iteration == 3:
            if rank == 1:
                os.kill(os.getpid(), signal.SIGKILL if how == "kill" else signal.SIGSTOP)
            reached.append(time.monotonic())

    record = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            GaussianMixture(3, max_iter=1000, tol=0.0, random_state=0, engine="torch").fit(blobs(n_per=2000),
                                                                                           callback=step)
        record = {"raised": None}
    except Exception as exc:
        record = {"raised": type(exc).__name__, "message": str(exc),
                  "seconds": time.monotonic() - reached[0] if reached else None}
    if rank == 0:
        with open(os.path.join(out, "survivor.json"), "w") as f:
            json.dump(record, f)
    os._exit(0)  # no teardown with a lost peer


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
