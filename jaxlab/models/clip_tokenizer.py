"""The CLIP BPE tokenizer (49408 tokens), loaded by file path from ``clip-anytorch``.

``import clip`` would import torch, so the package's ``simple_tokenizer.py`` is executed by
path with its bundled ``bpe_simple_vocab_16e6.txt.gz`` (needs ``ftfy`` and ``regex``).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence

import numpy as np

from jaxlab.core import errors

SOT = 49406
EOT = 49407
INSTALL = "pip install --no-deps clip-anytorch==2.6.0 ftfy regex"


def _asset_root() -> str:
  spec = importlib.util.find_spec("clip")
  if spec is None or not spec.submodule_search_locations:
    raise errors.AssetMissingError(f"the CLIP BPE vocabulary is not installed; run `{INSTALL}`")
  return spec.submodule_search_locations[0]


@functools.lru_cache(maxsize=2)
def _simple_tokenizer(root: str):
  path = os.path.join(root, "simple_tokenizer.py")
  bpe = os.path.join(root, "bpe_simple_vocab_16e6.txt.gz")
  for f in (path, bpe):
    if not os.path.exists(f):
      raise errors.AssetMissingError(f"{f} is missing; reinstall with `{INSTALL}`")
  spec = importlib.util.spec_from_file_location("jaxlab_clip_bpe", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.SimpleTokenizer(bpe_path=bpe)


class CLIPTokenizer:
  """Encodes text to CLIP ids: ``[SOT, ..., EOT, 0, ...]`` of a fixed context length.

  Args:
    context_length: padded length (77 for OpenAI CLIP; smaller for the stand-in models).
    root: folder holding ``simple_tokenizer.py`` and the vocabulary (default: the installed
      ``clip`` package).
  """

  def __init__(self, context_length: int = 77, root: str | None = None):
    self.context_length = context_length
    self._tok = _simple_tokenizer(root or _asset_root())
    self.vocab_size = len(self._tok.encoder)

  def encode(self, text: str) -> list[int]:
    """BPE ids without SOT/EOT."""
    return self._tok.encode(text)

  def decode(self, ids: Sequence[int]) -> str:
    return self._tok.decode([i for i in ids if i not in (0, SOT, EOT)])

  def __call__(self, texts: str | Sequence[str], context_length: int | None = None,
               truncate: bool = True) -> np.ndarray:
    """texts -> int32 [N, context_length], zero-padded after EOT.

    Raises:
      DataError: a text is too long and ``truncate`` is False.
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    n = context_length or self.context_length
    out = np.zeros((len(texts), n), np.int32)
    for i, t in enumerate(texts):
      ids = [SOT] + self.encode(t) + [EOT]
      if len(ids) > n:
        if not truncate:
          raise errors.DataError(
            f"text {t[:40]!r} needs {len(ids)} tokens > context {n}; shorten it or pass "
            "truncate=True")
        ids = ids[:n - 1] + [EOT]
      out[i, :len(ids)] = ids
    return out
