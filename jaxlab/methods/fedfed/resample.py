"""Phase-2 batches: raw local rows plus class-balanced rows of both shared copies.

Each local epoch, client k draws n_k rows from each shared copy (spec §4.2): q =
n_k // C rows of every class without replacement, then n_k - q·C rows uniformly
without replacement from the whole pool. Item i of the local data is paired with
item i of each drawn subset; a step takes B raw + B + B shared rows (3B in all).
"""

import jax
import jax.numpy as jnp

from jaxlab.core import rng
from jaxlab.federated import pool as pool_lib
from jaxlab.federated.types import ClientMeta, FedData, Sampler
from jaxlab.methods.fedfed import augment


def pool_labels(data: FedData) -> jax.Array:
  """Labels int32[K·n_max] of the compacted pool rows (``fl.pool.build`` puts client k's
  n_k rows after those of clients < k, in index-table order; padding rows get 0)."""
  k, width = data.idx.shape
  valid = (jnp.arange(width)[None] < data.n[:, None]).reshape(-1)
  order = jnp.argsort(~valid, stable=True)
  return jnp.where(jnp.sort(~valid), 0, data.y[data.idx.reshape(-1)[order]]).astype(jnp.int32)


def balanced_indices(u_class: jax.Array, u_rest: jax.Array, labels: jax.Array,
                     count: jax.Array, n: jax.Array, num_classes: int, width: int) -> jax.Array:
  """Pool row ids int32[width] of a class-balanced draw of n rows (positions >= n unused).

  Position i < q·C (q = n // C) is rank i % q of class i // q in the order of
  ``u_class`` within that class; position i >= q·C is rank i - q·C of all valid rows
  in the order of ``u_rest``. Ranks past a class's size wrap around.

  Args:
    u_class, u_rest: uniform draws f32[P], one per pool row (the randomness).
    labels: int32[P] pool labels; rows >= ``count`` are padding.
  """
  p = labels.shape[0]
  valid = jnp.arange(p) < count
  lab = jnp.where(valid, labels, num_classes)
  by_class = jnp.lexsort((u_class, lab))                    # class, then u_class
  sizes = jnp.bincount(lab, length=num_classes + 1)[:num_classes]
  start = jnp.cumsum(sizes) - sizes
  q = n // num_classes
  i = jnp.arange(width)
  qs = jnp.maximum(q, 1)
  c = jnp.minimum(i // qs, num_classes - 1)
  pick_c = by_class[start[c] + (i % qs) % jnp.maximum(sizes[c], 1)]
  rest = jnp.argsort(jnp.where(valid, u_rest, jnp.inf))
  pick_r = rest[(i - q * num_classes) % jnp.maximum(count, 1)]
  return jnp.where(i < q * num_classes, pick_c, pick_r).astype(jnp.int32)


def draw(key: jax.Array, labels, count, n, num_classes: int, width: int) -> jax.Array:
  """``balanced_indices`` with uniform draws from ``key``."""
  kc, kr = jax.random.split(key)
  p = labels.shape[0]
  return balanced_indices(jax.random.uniform(kc, (p,)), jax.random.uniform(kr, (p,)), labels,
                          count, n, num_classes, width)


def sampler(batch_size: int, epochs: int, num_classes: int, preprocess, crop_pad: int,
            flip: bool) -> Sampler:
  """The phase-2 ``Sampler``: batch ``{"x": [3B, ...], "y": [3B]}`` (raw, copy 1, copy 2).

  Needs the shared pool in ``FedData.extra`` (``Engine.add_pool`` / ``Sweep.add_pool``).
  """
  def prepare(data: FedData, meta: ClientMeta, key: jax.Array):
    width = data.idx.shape[1]
    labels = pool_labels(data)
    count = data.extra[pool_lib.POOL_N]
    row = jnp.take(data.idx, meta.id, axis=0, mode="fill", fill_value=0)
    valid = jnp.arange(width) < meta.n

    def epoch(e):
      ke = jax.random.fold_in(key, e)
      slots = jnp.argsort(jnp.where(valid, jax.random.uniform(ke, (width,)), jnp.inf))
      sel = [draw(jax.random.fold_in(ke, 1 + j), labels, count, meta.n, num_classes, width)
             for j in range(2)]
      return slots, sel[0], sel[1]

    slots, s1, s2 = jax.vmap(epoch)(jnp.arange(epochs))
    return row, slots, s1, s2, labels, rng.purpose(key, rng.SAMPLE)

  def batch(data: FedData, meta: ClientMeta, state, t: jax.Array) -> dict:
    row, slots, s1, s2, labels, akey = state
    pool = data.extra[pool_lib.POOL]
    n = jnp.maximum(meta.n, 1)
    spe = (n + batch_size - 1) // batch_size
    e = jnp.minimum(t // spe, epochs - 1)
    pos = ((t % spe) * batch_size + jnp.arange(batch_size)) % n
    local = slots[e, pos]                                   # local slots of this step
    ids = row[local]
    i1, i2 = s1[e, local], s2[e, local]                     # paired shared rows
    k = jax.random.fold_in(akey, t)
    aug = lambda j, x: augment.crop_flip(jax.random.fold_in(k, j), x, crop_pad, flip)
    x = jnp.concatenate([aug(0, preprocess(data.x[ids])), aug(1, pool[i1, 0]),
                         aug(2, pool[i2, 1])])
    y = jnp.concatenate([data.y[ids], labels[i1], labels[i2]])
    return {"x": x, "y": y}

  return Sampler(prepare, batch)
