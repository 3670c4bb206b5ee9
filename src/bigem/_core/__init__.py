"""Shared contracts of every layer: chunks, statistics, numerics, errors. Imports torch only."""
