"""The sequential reference engine: one jitted client at a time.

It shares ``client_init/step/final``, the sampler and the key plan with the
vmapped engine, so its results are the ground truth in tests; it is also the
low-memory fallback (only one client's carry is ever live).
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core.errors import ConfigError

from jaxlab.core import rng
from jaxlab.federated import engine as eng_lib
from jaxlab.federated.types import ClientMeta, SimState


class _Fns:
  def __init__(self, eng):
    alg, sampler = eng.alg, eng.sampler
    self.init = jax.jit(alg.client_init)
    self.prepare = jax.jit(sampler.prepare)

    def step(carry, data, meta, sstate, t, key):
      batch = sampler.batch(data, meta, sstate, t)
      return alg.client_step(carry, batch, jax.random.fold_in(key, t))

    self.step = jax.jit(step)
    self.final = jax.jit(alg.client_final)
    self.aggregate = jax.jit(alg.aggregate)
    self.server_update = jax.jit(alg.server_update)
    self.keys = jax.jit(eng_lib.client_keys)


def _fns(eng) -> _Fns:
  if not hasattr(eng, "_seq_fns"):
    eng._seq_fns = _Fns(eng)
  return eng._seq_fns


def run_round(eng, sim: SimState, ids: np.ndarray, key: jax.Array, debug: bool = False):
  """One round over the real ``ids`` in order, one client after another.

  Args:
    eng: an ``Engine`` (its algorithm, sampler, config and data are used).
    sim: the simulation state (not donated).
    ids: sampled client ids.
    key: the root key (the same every round).
    debug: run under ``jax.disable_jit()``.
  """
  if getattr(eng, "table_mode", "replicated") == "host":
    raise ConfigError("the sequential engine needs the client table on device; use the"
                      " vmapped engine for client_table='host'")
  if debug:
    with jax.disable_jit():
      return run_round(eng, sim, ids, key)
  f, data = _fns(eng), eng.data
  server, clients = sim
  _, groups = eng.plan(ids)
  meta_all = jax.tree.map(lambda *xs: np.concatenate(xs), *groups)
  real = meta_all.weight > 0
  meta_all = jax.tree.map(lambda v: v[real], meta_all)
  keys = f.keys(key, server.round, jnp.asarray(meta_all.id))
  ups, rows, msum, nsteps = [], [], None, 0
  for i in range(len(meta_all.id)):
    meta = ClientMeta(*[jnp.asarray(v[i]) for v in meta_all])
    row = jax.tree.map(lambda t: t[meta_all.id[i]], clients)
    carry = f.init(server, row, meta, rng.purpose(keys[i], rng.INIT))
    sstate = f.prepare(data, meta, rng.purpose(keys[i], rng.DATA))
    skey = rng.purpose(keys[i], rng.STEP)
    for t in range(int(meta_all.steps[i])):
      carry, m = f.step(carry, data, meta, sstate, jnp.int32(t), skey)
      msum = m if msum is None else jax.tree.map(jnp.add, msum, m)
    nsteps += int(meta_all.steps[i])
    up, row = f.final(server, carry, meta)
    ups.append(up), rows.append(row)
  uploads = jax.tree.map(lambda *xs: jnp.stack(xs), *ups)
  new_rows = jax.tree.map(lambda *xs: jnp.stack(xs), *rows)
  clients = eng_lib.scatter(clients, jnp.asarray(meta_all.id), new_rows)
  agg = f.aggregate(server, uploads, jnp.asarray(meta_all.weight))
  server, sm = f.server_update(server, agg, eng_lib.server_key(key, server.round))
  denom = max(nsteps, 1)
  metrics = {**jax.tree.map(lambda v: v / denom, msum or {}), **sm, "real_steps": nsteps}
  return SimState(server, clients), metrics
