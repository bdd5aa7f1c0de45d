"""Run R federated simulations (seeds x swept scalars) as one vmapped program.

A minimal adapter over ``jaxlab.federated.engine.make_round``: the engine's round is
``jax.vmap``-ed over the simulation state, the round inputs, the per-run partition
(``FedData.idx``/``n``; ``x``/``y`` are shared) and the root key. Every run samples
the same client ids (the reference's round-seeded sampling); the scan length is the
bucket of the longest client over all runs. The engine does not (yet) export such a
sweep; see docs/fedimpro.md.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core.errors import ConfigError
from jaxlab.federated import engine as engine_lib
from jaxlab.federated import schedule
from jaxlab.federated.data import index_table
from jaxlab.federated.types import ClientMeta, FedAlgorithm, FedData, SimState


class SeedSweep:
  """R runs of one algorithm that differ in partition, key and dynamic scalars.

  Args:
    alg: the FedAlgorithm.
    x: raw inputs [N, ...] (shared by all runs).
    y: labels [N].
    parts: per run, the K client index arrays (``jaxlab.federated.partition``).
    batch_size: B.
    local_epochs: E.
    preprocess: uint8 rows -> model inputs (the engine's default sampler).
    step_bucket: the engine's bucket mode.
  """

  def __init__(self, alg: FedAlgorithm, x: np.ndarray, y: np.ndarray,
               parts: list[list[np.ndarray]], *, batch_size: int, local_epochs: int = 1,
               preprocess=schedule.default_preprocess, step_bucket: str = "pow2"):
    if not parts or len({len(p) for p in parts}) != 1:
      raise ConfigError("parts must hold one partition per run, all with the same K")
    tables = [index_table(p) for p in parts]
    n_max = max(t[0].shape[1] for t in tables)
    idx = np.stack([np.pad(t[0], ((0, 0), (0, n_max - t[0].shape[1]))) for t in tables])
    self.n_host = np.stack([t[1] for t in tables])  # [R, K]
    self.num_runs, self.num_clients = self.n_host.shape
    self.data = FedData(jnp.asarray(x), jnp.asarray(y, jnp.int32), jnp.asarray(idx),
                        jnp.asarray(self.n_host), {})
    self.alg, self.batch_size, self.local_epochs = alg, batch_size, local_epochs
    self.step_bucket = step_bucket
    self.sampler = schedule.epoch_wrap(batch_size, local_epochs, preprocess)
    self._fns = {}

  def init(self, keys: jax.Array) -> SimState:
    """Stacked SimStates [R, ...] from R typed keys."""
    init = functools.partial(engine_lib.init_sim, self.alg, self.num_clients)
    return jax.jit(jax.vmap(init))(keys)

  def plan(self, ids: np.ndarray) -> tuple[int, ClientMeta]:
    """The shared scan length and the round inputs [R, S] for sampled ``ids``."""
    ids = np.asarray(ids, np.int64)
    n = self.n_host[:, ids]  # [R, S]
    steps = schedule.local_steps(n, self.batch_size, self.local_epochs)
    t = schedule.bucket(int(steps.max()), self.step_bucket)
    meta = ClientMeta(id=np.broadcast_to(ids, n.shape).astype(np.int32), n=n.astype(np.int32),
                      steps=steps.astype(np.int32), weight=n.astype(np.float32))
    return t, meta

  def _round(self, t: int):
    if t not in self._fns:
      fn = engine_lib.make_round(self.alg, self.sampler, (t,))
      data_axes = FedData(None, None, 0, 0, None)
      self._fns[t] = jax.jit(jax.vmap(fn, in_axes=(0, 0, data_axes, 0)), donate_argnums=0)
    return self._fns[t]

  def run_round(self, sims: SimState, ids: np.ndarray, keys: jax.Array):
    """One round of all R runs; ``sims`` is donated. Returns (sims, metrics [R])."""
    t, meta = self.plan(ids)
    inputs = (jax.tree.map(jnp.asarray, meta),)
    return self._round(t)(sims, inputs, self.data, keys)
