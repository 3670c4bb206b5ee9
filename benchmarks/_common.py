"""What every benchmark script shares: subprocess workers and their peak memory."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Unlike ru_maxrss it is not inherited
    from the parent across fork+exec, so each worker reports only its own peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(script: str, spec: dict) -> dict:
    """Run ``script --worker SPEC`` in a fresh process; its last stdout line is JSON."""
    out = subprocess.run(
        [sys.executable, script, "--worker", json.dumps(spec)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"worker {spec} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def best_seconds(fn, repeats: int = 3, clock=time.perf_counter) -> float:
    """Best time of ``fn()`` over ``repeats`` calls, after one warm-up call: wall time,
    or the process's CPU time with ``clock=time.process_time``."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        started = clock()
        fn()
        best = min(best, clock() - started)
    return best
