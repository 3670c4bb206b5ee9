"""Files bigem writes and reads: outputs written whole or not at all (``files``), and
model files, safetensors tensors + JSON metadata read without running code."""

from .files import Partial, check_model_path, check_output_path, is_url, local_path, write_atomically
from .safetensors import read_model_file, write_model_file

__all__ = ["Partial", "check_model_path", "check_output_path", "is_url", "local_path", "read_model_file",
           "write_atomically", "write_model_file"]
