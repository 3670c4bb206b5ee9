"""`make test-deferred`: every Python process of the run takes the GPU's strategy on the CPU.

Found on PYTHONPATH at start-up (by the test process, and the processes it starts:
torchrun's ranks, Dask's workers, the command line), it makes ``numerics.defers_reads``
answer True for every device once bigem imports it (not before: importing bigem stays
light). Checks then stay on the device and are read once a pass, the gap kernels take
every block, and so on, as on a GPU: the CPU runs the code paths a GPU takes, so their
logic is tested without one (a run found a NaN named as "zero density" when predictions
were written, and a crash of the full Gaussian's gap path on a block without gaps).
Tests of what only the CPU's own strategy gives are marked ``cpu_strategy`` and skipped
(see tests/conftest.py).
"""

import importlib.abc
import importlib.util
import sys

_NAME = "bigem._core.numerics"


class _Deferring(importlib.abc.MetaPathFinder):
    """Finds ``bigem._core.numerics`` as usual, and patches it once it has run."""

    def find_spec(self, name, path, target=None):
        if name != _NAME:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            module.defers_reads = lambda device: True

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Deferring())
