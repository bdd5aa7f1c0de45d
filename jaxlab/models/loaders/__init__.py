"""Checkpoint loaders: Hugging Face safetensors and GGUF into jaxlab's decoder layout."""

import os
import re

import jax

from jaxlab.core.errors import AssetMissingError
from jaxlab.models.loaders.gguf_file import load_gguf, load_smollm2, smollm2_path
from jaxlab.models.loaders.hf import SUPPORTED, config_from_hf, load_hf
from jaxlab.models.loaders.hub import hub_cache_dir, resolve_hub_id

BUNDLED = ("smollm2-135m-instruct",)
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")

__all__ = ["load_hf", "load_gguf", "load_smollm2", "load_model", "config_from_hf",
           "smollm2_path", "resolve_hub_id", "hub_cache_dir", "SUPPORTED", "BUNDLED"]


def load_model(name_or_path: str, dtype: str | None = None,
               mesh: jax.sharding.Mesh | None = None):
  """A bundled model by name, an HF checkpoint directory, a .gguf file, or a hub id.

  A hub id ("org/name") is resolved from the local Hugging Face cache only (never
  downloaded). With `mesh`, parameters load straight into shards (`decoder_sharding`).

  Returns:
    (DecoderConfig, params, Tokenizer or None).
  """
  if name_or_path.lower() in BUNDLED:
    return load_smollm2(dtype or "float32", mesh=mesh)
  if name_or_path.endswith(".gguf") and os.path.isfile(name_or_path):
    return load_gguf(name_or_path, dtype or "float32", mesh=mesh)
  if os.path.isdir(name_or_path):
    return load_hf(name_or_path, dtype, mesh=mesh)
  if _HUB_ID.match(name_or_path) and not os.path.exists(name_or_path):
    return load_hf(resolve_hub_id(name_or_path), dtype, mesh=mesh)
  raise AssetMissingError(f"model {name_or_path!r} not found: use one of {list(BUNDLED)}, an "
                          "HF checkpoint directory, a .gguf file or a cached hub id 'org/name'.")
