"""The math of each model family: parameters, additive statistics, E-step, M-step. No I/O."""
