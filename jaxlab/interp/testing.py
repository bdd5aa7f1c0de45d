"""Tiny random decoders and prompt pairs for tests (used by interp, tuning, methods)."""

import jax
import numpy as np

from jaxlab.interp.patching import Pair
from jaxlab.models import decoder as dec


def tiny_model(gqa: bool = False, seed: int = 0, layers: int = 3):
  """A 3-layer, 4-head (GQA: 2 KV heads) random decoder with weights scaled x6."""
  cfg = dec.DecoderConfig(vocab_size=40, d_model=32, n_layers=layers, n_heads=4,
                          n_kv_heads=2 if gqa else 4, d_ff=48, max_positions=32)
  params = dec.init_params(cfg, jax.random.key(seed))
  # Larger weights than the 0.02 init so heads matter and logits spread out.
  params = jax.tree.map(lambda x: x * (6.0 if x.ndim >= 2 else 1.0), params)
  return cfg, params


def random_pair(b: int = 3, t: int = 7, seed: int = 1, pad: bool = True) -> Pair:
  """Random prompts and a counterfactual differing at two positions; row 0 left-padded."""
  rng = np.random.default_rng(seed)
  ids_r = rng.integers(3, 40, (b, t))
  ids_c = ids_r.copy()
  ids_c[:, t - 3] = rng.integers(3, 40, b)  # a counterfactual token two before the end
  ids_c[:, 1] = rng.integers(3, 40, b)
  mask = np.ones((b, t), np.int32)
  if pad:
    mask[0, :2] = 0  # left padding in the first row
  return Pair.make(ids_r, mask, ids_c, mask)
