"""Execution only: fold a model's E-step over a source's chunks into one statistics object."""

from .local import LocalEngine

__all__ = ["LocalEngine"]
