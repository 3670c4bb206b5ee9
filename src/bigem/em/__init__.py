"""The EM driver: initialisation, iterations, convergence, restarts, history."""
