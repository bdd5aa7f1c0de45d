"""A word-level tokenizer and a tiny random decoder for smoke runs and tests.

Tokens are single digits, words, single punctuation marks and single spaces, so
every digit is one token and ``" +" -> " @"`` / ``" plus" -> " nothing"`` keep the
token count (as with SmolLM2). Ids are stable (crc32), not learned.
"""

import re
import zlib
from collections.abc import Sequence

import jax

from jaxlab.models import decoder as dec

_TOKEN = re.compile(r"\d|[A-Za-z']+|\s|[^\sA-Za-z\d]")


class WordTokenizer:
  """Deterministic word-level tokenizer with ``encode`` / ``decode`` / ``chat``."""

  def __init__(self, vocab_size: int = 96):
    self.vocab_size = vocab_size
    self.bos_id, self.pad_id, self.eos_ids = 1, 0, (2,)
    self._names: dict[int, str] = {}

  def _id(self, tok: str) -> int:
    if tok.isdigit():
      return 3 + int(tok)
    i = 13 + zlib.crc32(tok.encode()) % (self.vocab_size - 13)
    self._names.setdefault(i, tok)
    return i

  def encode(self, text: str) -> list[int]:
    return [self._id(t) for t in _TOKEN.findall(text)]

  def decode(self, ids: Sequence[int]) -> str:
    return "".join(str(i - 3) if 3 <= i < 13 else self._names.get(int(i), "?") for i in ids)

  def chat(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
    text = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
    return text + ("assistant: " if add_generation_prompt else "")


def tiny_decoder(vocab_size: int = 96, seed: int = 0):
  """(cfg, params): a 3-layer, 4-head GQA decoder (H_kv 2), random weights x4."""
  cfg = dec.DecoderConfig(vocab_size=vocab_size, d_model=32, n_layers=3, n_heads=4,
                          n_kv_heads=2, d_ff=64, max_positions=256)
  params = dec.init_params(cfg, jax.random.key(seed))
  return cfg, jax.tree.map(lambda x: x * (4.0 if x.ndim >= 2 else 1.0), params)
