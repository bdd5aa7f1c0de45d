"""Checkpoint loaders: Hugging Face safetensors and GGUF into jaxlab's decoder layout."""

import os

from jaxlab.core.errors import AssetMissingError
from jaxlab.models.loaders.gguf_file import load_gguf, load_smollm2, smollm2_path
from jaxlab.models.loaders.hf import SUPPORTED, config_from_hf, load_hf

BUNDLED = ("smollm2-135m-instruct",)

__all__ = ["load_hf", "load_gguf", "load_smollm2", "load_model", "config_from_hf",
           "smollm2_path", "SUPPORTED", "BUNDLED"]


def load_model(name_or_path: str, dtype: str | None = None):
  """A bundled model by name, an HF checkpoint directory, or a .gguf file.

  Returns:
    (DecoderConfig, params, Tokenizer or None).
  """
  if name_or_path.lower() in BUNDLED:
    return load_smollm2(dtype or "float32")
  if name_or_path.endswith(".gguf") and os.path.isfile(name_or_path):
    return load_gguf(name_or_path, dtype or "float32")
  if os.path.isdir(name_or_path):
    return load_hf(name_or_path, dtype)
  raise AssetMissingError(f"model {name_or_path!r} not found: use one of {list(BUNDLED)}, an "
                          "HF checkpoint directory or a .gguf file.")
