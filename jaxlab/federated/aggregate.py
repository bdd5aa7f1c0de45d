"""Weighted tree averages over the stacked client axis (axis 0), and the
streaming form of aggregation: per-chunk ``Partial`` sums that add up.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxlab.core.types import PyTree

EPS = 1e-12


class Totals(NamedTuple):
  """Round-level normalisers, known before any client runs.

  Attributes:
    w: f32[] sum of raw weights over the round's real clients.
    count: f32[] number of real clients (raw weight > 0).
  """
  w: jax.Array
  count: jax.Array


class Partial(NamedTuple):
  """A chunk of clients' contribution to the round aggregate.

  Attributes:
    sums: pytree of weighted sums; the partial of a union of disjoint chunks is
      the leafwise sum of their partials (so chunks can be streamed).
    stacked: pytree of per-client arrays [s, ...] (small: normalised weights,
      plug-in uploads); chunks are concatenated.
  """
  sums: PyTree
  stacked: PyTree


def totals(weights: jax.Array) -> Totals:
  """``Totals`` of raw weights f32[S] (0 marks a padding client)."""
  w = weights.astype(jnp.float32)
  return Totals(w.sum(), (w > 0).astype(jnp.float32).sum())


def normalise_with(weights: jax.Array, tot: Totals, mode: str = "n_k") -> jax.Array:
  """Normalised weights of a chunk, given the whole round's ``Totals``."""
  w = weights.astype(jnp.float32)
  if mode == "uniform":
    return (w > 0).astype(jnp.float32) / jnp.maximum(tot.count, 1.0)
  return w / jnp.maximum(tot.w, EPS)


def combine(a: Partial | None, b: Partial) -> Partial:
  """The partial of two disjoint chunks (``a`` may be None)."""
  if a is None:
    return b
  return Partial(jax.tree.map(jnp.add, a.sums, b.sums),
                 jax.tree.map(lambda x, y: jnp.concatenate([x, y]), a.stacked, b.stacked))


def normalise(weights: jax.Array, mode: str = "n_k") -> jax.Array:
  """Aggregation weights p f32[S] from raw weights (0 marks a padding client).

  Args:
    weights: raw weights f32[S] (n_k for real clients, 0 for padding).
    mode: ``"n_k"`` (p_k = n_k / sum n) or ``"uniform"`` (1/|S| over real clients).
  """
  return normalise_with(weights, totals(weights), mode)


def weighted_mean(tree: PyTree, p: jax.Array) -> PyTree:
  """``sum_k p_k leaf_k`` per leaf; leaves are stacked [S, ...]."""
  def one(leaf):
    out = jnp.tensordot(p, leaf.astype(jnp.float32), axes=1)
    return out.astype(leaf.dtype) if jnp.issubdtype(leaf.dtype, jnp.floating) else out
  return jax.tree.map(one, tree)


def masked_sum(tree: PyTree, mask: jax.Array) -> PyTree:
  """``sum_k mask_k leaf_k`` per leaf (e.g. SCAFFOLD's sum of control deltas)."""
  return weighted_mean(tree, mask.astype(jnp.float32))
