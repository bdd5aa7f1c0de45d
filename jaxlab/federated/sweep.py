"""Hyper-parameter and seed sweeps: R runs as one compiled, vmapped program.

Swept scalars live in ``ServerState.hparams`` (f32[] each), so R runs differ only
in array values: ``sims`` carries a leading [R] axis, the round inputs and the
data are shared (every run samples the same clients: round-seeded sampling).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.federated import engine as eng_lib
from jaxlab.federated.types import SimState


def init(eng: eng_lib.Engine, keys: jax.Array, hparams: dict | None = None) -> SimState:
  """R initial states; ``keys`` [R] typed keys, ``hparams`` {name: f32[R]}."""
  fn = functools.partial(eng_lib.init_sim, eng.alg, eng.num_clients)
  if hparams is None:
    return jax.jit(jax.vmap(fn))(keys)
  return jax.jit(jax.vmap(lambda k, hp: fn(k, hparams=hp)))(keys, hparams)


def grid(**values) -> dict:
  """Cartesian product of scalar lists as {name: f32[R]} (row-major)."""
  mesh = np.meshgrid(*[np.asarray(v, np.float32) for v in values.values()], indexing="ij")
  return {k: jnp.asarray(m.reshape(-1)) for k, m in zip(values, mesh)}


def run_round(eng: eng_lib.Engine, sims: SimState, ids: np.ndarray, keys: jax.Array):
  """One round of all R runs (``sims`` donated); ``keys`` [R] root keys.

  """
  steps, inputs = eng.plan(ids)
  cache = eng.__dict__.setdefault("_sweep_fns", {})
  if steps not in cache:
    fn = eng_lib.make_round(eng.alg, eng.sampler, steps)
    cache[steps] = jax.jit(jax.vmap(fn, in_axes=(0, None, None, 0)), donate_argnums=0)
  return cache[steps](sims, jax.tree.map(jnp.asarray, inputs), eng.data, keys)
