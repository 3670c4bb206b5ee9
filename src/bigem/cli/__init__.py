"""The ``bigem`` command line. The only layer that prints."""

from .main import main

__all__ = ["main"]
