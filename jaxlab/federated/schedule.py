"""Local step counts, bucketed scan lengths and the wrap-around batch sampler."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core import rng
from jaxlab.core.errors import ConfigError
from jaxlab.federated.types import ClientMeta, FedData, Sampler


def local_steps(n: np.ndarray, batch_size: int, epochs: int) -> np.ndarray:
  """``E·ceil(n_k/B)`` (PyTorch ``DataLoader(drop_last=False)``); 0 for n = 0."""
  n = np.asarray(n, np.int64)
  return (epochs * (-(-n // batch_size))).astype(np.int32)


def bucket(t: int, mode: str = "pow2", minimum: int = 8) -> int:
  """The scan length used for a round whose longest client needs ``t`` steps.

  Args:
    t: max real steps in the round (or group).
    mode: ``"pow2"`` (smallest power of two >= t, at least ``minimum``),
      ``"mult:M"`` (next multiple of M) or ``"exact"``.
  """
  t = max(int(t), 1)
  if mode == "exact":
    return t
  if mode == "pow2":
    return max(minimum, 1 << (t - 1).bit_length())
  if mode.startswith("mult:"):
    m = int(mode.split(":")[1])
    return m * math.ceil(t / m)
  raise ConfigError(f"step_bucket={mode!r}; use 'pow2', 'mult:M' or 'exact'")


def default_preprocess(x: jax.Array) -> jax.Array:
  """uint8 images [B, H, W] or [B, H, W, C] -> f32 in [0, 1] with a channel axis."""
  x = x.astype(jnp.float32) / 255.0
  return x[..., None] if x.ndim == 3 else x


def epoch_wrap(batch_size: int, epochs: int, preprocess=default_preprocess) -> Sampler:
  """Full batches through per-epoch permutations, wrapping inside each epoch.

  Step t of client k uses epoch ``e = min(t // spe, E-1)`` and rows
  ``idx[k, perm_e[(j·B + arange(B)) mod n_k]]`` with ``j = t % spe``,
  ``spe = ceil(n_k / B)``: every example once per epoch, the last batch topped
  up with repeats from the same permutation.
  """
  def prepare(data: FedData, meta: ClientMeta, key: jax.Array) -> jax.Array:
    n_max = data.idx.shape[1]
    valid = jnp.arange(n_max) < meta.n
    row = jnp.take(data.idx, meta.id, axis=0, mode="fill", fill_value=0)
    def perm(e):
      u = jax.random.uniform(jax.random.fold_in(key, e), (n_max,))
      return row[jnp.argsort(jnp.where(valid, u, jnp.inf))]
    return jax.vmap(perm)(jnp.arange(epochs))   # int32[E, n_max]: permuted sample ids

  def batch(data: FedData, meta: ClientMeta, order: jax.Array, t: jax.Array) -> dict:
    n = jnp.maximum(meta.n, 1)
    spe = (n + batch_size - 1) // batch_size
    e = jnp.minimum(t // spe, epochs - 1)
    j = t % spe
    pos = (j * batch_size + jnp.arange(batch_size)) % n
    ids = order[e, pos]
    return {"x": preprocess(data.x[ids]), "y": data.y[ids]}

  return Sampler(prepare, batch)


def sampler_key(client_key: jax.Array) -> jax.Array:
  """The key of a client's data order within a round."""
  return rng.purpose(client_key, rng.DATA)
