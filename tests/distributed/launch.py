"""Start groups of processes for the tests, and never leave one behind.

Every launch runs in a new session (process group) of its own; on a timeout or any
error the whole session is killed, torchrun's agent and its workers alike.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import bigem

ROOT = Path(__file__).resolve().parents[2]


def environment(**extra: str) -> dict[str, str]:
    """This process's environment with the bigem under test and the tests importable, one
    thread per process (the group shares the machine's cores)."""
    env = dict(os.environ)
    src = str(Path(bigem.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src, str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore")
    env.update(extra)
    return env


def run(args: list[str], timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``args`` in a session of its own; kill the session on timeout or error."""
    proc = subprocess.Popen(args, cwd=ROOT, env=env or environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except BaseException:
        kill(proc)
        raise
    return subprocess.CompletedProcess(args, proc.returncode, out, None)


def kill(proc: subprocess.Popen) -> None:
    """End ``proc``'s whole session (its children too) and reap ``proc``."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def torchrun(n: int, module: str, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --standalone --nproc_per_node=n -m module args``,
    with ``env`` added to the environment."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
           "-m", module, *args]
    return run(cmd, timeout, environment(**env))
