"""Shared pools: a one-shot map over every client into data that later batches draw from.

FedFed's pattern: after a first phase, each client maps its own samples to a
variable number of shared rows (distilled, noised features); the server gathers
them into one pool that every client's later batches mix in. Here a ``Pool`` is
the per-client map (padded to ``rows`` with a count), ``build`` runs it over all
K clients (``lax.map`` over chunks of clients, so memory is one chunk) and
compacts the valid rows to the front of a fixed-size pool, and ``with_pool``
wraps a sampler so that each local batch also draws ``pool_batch`` rows from it
with the client's data key. In a ``Sweep`` ``Sweep.add_pool`` does this per run.
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxlab.core import rng
from jaxlab.core.errors import ConfigError
from jaxlab.federated.types import ClientMeta, FedData, Sampler, ServerState

POOL = "pool"        # FedData.extra keys of the pool rows (pytree, leaves [K*rows, ...]) ...
POOL_N = "pool_n"    # ... and of the number of valid rows int32[]
POOL_TAG = 1003      # key -> pool map keys


class Pool(NamedTuple):
  """A one-shot per-client map into a shared pool.

  Attributes:
    rows: the most rows one client contributes (static; outputs are padded to it).
    map: ``(server, data, meta, key) -> (rows pytree, leaves [rows, ...], count int32[])``;
      only the first ``count`` rows are valid.
  """
  rows: int
  map: Callable


def build(pool: Pool, server: ServerState, data: FedData, key: jax.Array,
          chunk: int = 8) -> dict:
  """Runs ``pool.map`` over all K clients; returns ``{POOL: rows, POOL_N: count}``.

  Valid rows come first (client order, then row order); the rest are zero padding.
  Client k's key is ``fold_in(fold_in(key, POOL_TAG), k)``.
  """
  k = data.n.shape[0]
  if chunk < 1:
    raise ConfigError(f"chunk={chunk} must be >= 1")
  pad = -k % chunk
  ids = jnp.concatenate([jnp.arange(k), jnp.full(pad, k)]).astype(jnp.int32)
  n = jnp.concatenate([data.n, jnp.zeros(pad, data.n.dtype)]).astype(jnp.int32)
  metas = ClientMeta(ids, n, jnp.zeros_like(ids), n.astype(jnp.float32))
  pkey = jax.random.fold_in(key, POOL_TAG)

  def one(meta):
    out, count = pool.map(server, data, meta, jax.random.fold_in(pkey, meta.id))
    return out, jnp.where(meta.id < k, jnp.minimum(count, pool.rows), 0).astype(jnp.int32)

  chunks = jax.tree.map(lambda a: a.reshape(-1, chunk), metas)
  out, count = jax.lax.map(lambda m: jax.vmap(one)(ClientMeta(*m)), chunks)
  out = jax.tree.map(lambda a: a.reshape(-1, *a.shape[3:])[: k * pool.rows], out)
  count = count.reshape(-1)[:k]
  valid = (jnp.arange(pool.rows)[None] < count[:, None]).reshape(-1)
  order = jnp.argsort(~valid, stable=True)         # valid rows first, order kept
  mask = jnp.sort(~valid)                          # False for the valid prefix
  rows = jax.tree.map(lambda a: jnp.where(
    mask.reshape(-1, *[1] * (a.ndim - 1)), jnp.zeros_like(a), a[order]), out)
  return {POOL: rows, POOL_N: count.sum()}


def with_pool(sampler: Sampler, pool_batch: int) -> Sampler:
  """``sampler`` whose batches also hold ``batch["pool"]``: ``pool_batch`` rows drawn
  uniformly (with replacement) from ``data.extra[POOL]`` with the client's data key."""
  def prepare(data, meta, key):
    return sampler.prepare(data, meta, key), rng.purpose(key, rng.SAMPLE)

  def batch(data, meta, state, t):
    base, key = state
    out = sampler.batch(data, meta, base, t)
    if POOL not in data.extra:
      raise ConfigError("this sampler draws from a shared pool; build it first"
                        " (Engine.add_pool / Sweep.add_pool)")
    hi = jnp.maximum(data.extra[POOL_N], 1)
    pick = jax.random.randint(jax.random.fold_in(key, t), (pool_batch,), 0, hi)
    return {**out, "pool": jax.tree.map(lambda a: a[pick], data.extra[POOL])}

  return Sampler(prepare, batch)
