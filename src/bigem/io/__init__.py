"""Model files: safetensors tensors + JSON metadata, written atomically, read without running code."""

from .safetensors import read_model_file, write_model_file

__all__ = ["read_model_file", "write_model_file"]
