"""Weighted tree averages over the stacked client axis (axis 0)."""

import jax
import jax.numpy as jnp

from jaxlab.core.types import PyTree

EPS = 1e-12


def normalise(weights: jax.Array, mode: str = "n_k") -> jax.Array:
  """Aggregation weights p f32[S] from raw weights (0 marks a padding client).

  Args:
    weights: raw weights f32[S] (n_k for real clients, 0 for padding).
    mode: ``"n_k"`` (p_k = n_k / sum n) or ``"uniform"`` (1/|S| over real clients).
  """
  w = weights.astype(jnp.float32)
  if mode == "uniform":
    w = (w > 0).astype(jnp.float32)
  return w / jnp.maximum(w.sum(), EPS)


def weighted_mean(tree: PyTree, p: jax.Array) -> PyTree:
  """``sum_k p_k leaf_k`` per leaf; leaves are stacked [S, ...]."""
  def one(leaf):
    out = jnp.tensordot(p, leaf.astype(jnp.float32), axes=1)
    return out.astype(leaf.dtype) if jnp.issubdtype(leaf.dtype, jnp.floating) else out
  return jax.tree.map(one, tree)


def masked_sum(tree: PyTree, mask: jax.Array) -> PyTree:
  """``sum_k mask_k leaf_k`` per leaf (e.g. SCAFFOLD's sum of control deltas)."""
  return weighted_mean(tree, mask.astype(jnp.float32))
