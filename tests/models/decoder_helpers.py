"""Tiny decoder configs, random parameters and left-padded batches for tests."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.models import decoder

CFG = decoder.DecoderConfig(vocab_size=41, d_model=32, n_layers=3, n_heads=4, n_kv_heads=2,
                            d_ff=48, rope_theta=100.0)
GPT2 = decoder.DecoderConfig(arch="gpt2", vocab_size=41, d_model=32, n_layers=2, n_heads=4,
                             d_ff=64, norm="layer", pos="learned", max_positions=32,
                             mlp="gelu_tanh", qkv_bias=True, o_bias=True, mlp_bias=True)
TOL = dict(atol=1e-5, rtol=1e-5)


def random_params(cfg, seed=0):
  """Larger random weights, norms (mean 1) and biases than init, so mistakes show."""
  shapes = decoder.param_shapes(cfg)
  leaves, tdef = jax.tree.flatten(shapes, is_leaf=lambda s: isinstance(s, tuple))
  paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(
    shapes, is_leaf=lambda s: isinstance(s, tuple))[0]]
  rng = np.random.default_rng(seed)
  new = [jnp.asarray(("norm_scale" in p) + 0.3 * rng.standard_normal(s), jnp.float32)
         for p, s in zip(paths, leaves)]
  return jax.tree.unflatten(tdef, new)


def batch(b=3, t=8, seed=2, pads=(0, 2, 5)):
  ids = np.array(jax.random.randint(jax.random.key(seed), (b, t), 1, 41), np.int32)
  mask = np.ones((b, t), np.int32)
  for row, p in enumerate(pads[:b]):
    mask[row, :p] = 0
    ids[row, :p] = 0
  return jnp.asarray(ids), jnp.asarray(mask)
