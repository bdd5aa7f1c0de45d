"""Host-stepped rounds: one client per device, the local-step loop in Python.

Why a third engine: on XLA:CPU a convolution's weight gradient runs ~60x slower
inside a while loop (``lax.scan``) than at the top level of a program (jax#12868),
and ``vmap`` over clients turns a convolution with per-client kernels into a
grouped convolution, which is slow too. Convolutional models on CPU are fastest
when every call is one plain training step of one client per device: this engine
runs the clients of a round in chunks of D (the ``clients`` mesh size; 1 without a
mesh), each chunk ``start`` -> T jitted ``step`` calls -> ``end``, one client on
each device via ``jax.shard_map``, with no loop and no vmap inside a step.

It shares ``client_init/step/final``, the sampler, the key plan and the streaming
aggregation (``alg.reduce``/``alg.finish``) with the vmapped engine, so its rounds
equal the vmapped and sequential engines' (tests). Clients are sorted by local
steps, so a chunk's padded steps are only the differences between D neighbours.
Nothing is recompiled when step counts change (T is a host loop), and memory is one
chunk's clients plus the running aggregate.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxlab.core import axes, rng
from jaxlab.core.errors import ConfigError
from jaxlab.federated import aggregate as agg_lib
from jaxlab.federated import engine as eng_lib
from jaxlab.federated import schedule
from jaxlab.federated.types import ClientMeta, SimState


def _zeros(tree):
  return jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), tree)


def per_device(fn, mesh, batched: tuple[bool, ...]):
  """``fn`` over one client -> a function over D clients, one per ``clients`` device.

  Args:
    fn: a per-client function (arguments without a clients axis).
    mesh: a mesh with a ``clients`` axis of size D, or None (D = 1).
    batched: per positional argument, whether it carries the leading clients axis
      (the others are replicated).

  Returns:
    A function whose batched arguments and every output have a leading [D] axis.
  """
  def body(*args):
    args = [jax.tree.map(lambda a: a[0], x) if b else x for x, b in zip(args, batched)]
    return jax.tree.map(lambda a: a[None], fn(*args))

  if mesh is None:
    return body
  in_specs = tuple(P(axes.CLIENTS) if b else P() for b in batched)
  return jax.shard_map(body, mesh=mesh, in_specs=in_specs, out_specs=P(axes.CLIENTS))


class _Fns:
  """The jitted pieces of a stepped round for one engine (compiled once each)."""

  def __init__(self, eng):
    alg, sampler, mesh = eng.alg, eng.sampler, eng.mesh
    if alg.reduce is None or alg.finish is None:
      raise ConfigError("the stepped engine needs an algorithm with reduce/finish"
                        " (fl.algorithms.*); use the vmap or sequential engine instead")
    self.devices = 1 if mesh is None else mesh.shape[axes.CLIENTS]
    self.by_client = None if mesh is None else NamedSharding(mesh, P(axes.CLIENTS))

    def start(server, row, meta, data, key):
      ck = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, server.round),
                                                 eng_lib.CLIENTS_TAG), meta.id)
      carry = alg.client_init(server, row, meta, rng.purpose(ck, rng.INIT))
      sstate = sampler.prepare(data, meta, rng.purpose(ck, rng.DATA))
      return carry, sstate, rng.purpose(ck, rng.STEP)

    def step(carry, msum, data, meta, sstate, skey, t):
      batch = sampler.batch(data, meta, sstate, t)
      new, m = alg.client_step(carry, batch, jax.random.fold_in(skey, t))
      active = t < meta.steps
      return (eng_lib.tree_where(active, new, carry),
              jax.tree.map(lambda s, v: s + v * active, msum, m))

    def metrics_of(carry, data, meta, sstate, skey):
      return alg.client_step(carry, sampler.batch(data, meta, sstate, jnp.int32(0)), skey)[1]

    self._metrics_of = metrics_of
    start_d = per_device(start, mesh, (False, True, True, False, False))
    step_d = per_device(step, mesh, (True, True, False, True, True, True, False))
    final_d = per_device(alg.client_final, mesh, (False, True, True))

    def start_chunk(server, clients, meta, data, key):
      return start_d(server, eng_lib.gather(clients, meta.id), meta, data, key)

    def end_chunk(server, clients, sums, carry, meta, tot):
      up, rows = final_d(server, carry, meta)
      part = alg.reduce(server, up, meta.weight, tot)
      return (eng_lib.scatter(clients, meta.id, rows),
              jax.tree.map(jnp.add, sums, part.sums), part.stacked)

    def server_step(server, sums, stacked, tot, key):
      agg = alg.finish(server, agg_lib.Partial(sums, stacked), tot)
      return alg.server_update(server, agg, eng_lib.server_key(key, server.round))

    self.start = jax.jit(start_chunk)
    self.step = jax.jit(step_d, donate_argnums=(0, 1))
    self.end = jax.jit(end_chunk, donate_argnums=(1, 2))
    self.server = jax.jit(server_step)
    self._final_d, self._reduce = final_d, alg.reduce
    self._zeros = None

  def zeros(self, server, carry, data, meta, sstate, skey, tot, with_sums: bool):
    """Zero metric sums [D] and (if ``with_sums``) zero aggregate sums."""
    if self._zeros is None:
      one = lambda tree: jax.tree.map(lambda x: x[0], tree)
      m = jax.eval_shape(self._metrics_of, one(carry), data, one(meta), one(sstate), one(skey))
      up, _ = jax.eval_shape(self._final_d, server, carry, meta)
      part = jax.eval_shape(self._reduce, server, up, meta.weight, tot)
      self._zeros = (m, part.sums)
    m, sums = self._zeros
    msum = jax.tree.map(lambda a: jnp.zeros((self.devices, *a.shape), a.dtype), m)
    if self.by_client is not None:
      msum = jax.device_put(msum, self.by_client)
    return msum, (_zeros(sums) if with_sums else None)


def _fns(eng) -> _Fns:
  if "_stepped_fns" not in eng.__dict__:
    eng._stepped_fns = _Fns(eng)
  return eng._stepped_fns


def plan(eng, ids: np.ndarray) -> tuple[ClientMeta, np.ndarray]:
  """Sampled clients sorted by local steps (descending), padded to a multiple of D.

  Returns:
    ``(meta, chunk_steps)``: host ``ClientMeta`` arrays [S_pad] and the real step
    count of each chunk of D (its first, longest client).
  """
  ids = np.asarray(ids, np.int64)
  if len(set(ids.tolist())) != len(ids) or ids.min() < 0 or ids.max() >= eng.num_clients:
    raise ConfigError(f"client ids must be distinct and in [0, {eng.num_clients})")
  d = _fns(eng).devices
  cfg = eng.config
  steps = schedule.local_steps(eng.n_host[ids], cfg.batch_size, cfg.local_epochs)
  order = np.argsort(-steps, kind="stable")
  ids, steps = ids[order], steps[order]
  pad = -len(ids) % d
  n = eng.n_host[ids]
  meta = ClientMeta(
    id=np.concatenate([ids, np.full(pad, eng.num_clients)]).astype(np.int32),
    n=np.concatenate([n, np.zeros(pad)]).astype(np.int32),
    steps=np.concatenate([steps, np.zeros(pad)]).astype(np.int32),
    weight=np.concatenate([n, np.zeros(pad)]).astype(np.float32))
  return meta, meta.steps[::d].copy()


def waste(eng, ids: np.ndarray) -> float:
  """Fraction of executed client-steps that are padding, for ``ids``."""
  meta, chunk_steps = plan(eng, ids)
  total = int(chunk_steps.sum()) * _fns(eng).devices
  return 1.0 - int(meta.steps.sum()) / max(total, 1)


def run_round(eng, sim: SimState, ids: np.ndarray, key: jax.Array):
  """One round for sampled ``ids``, D clients at a time (``sim`` is consumed).

  Args:
    eng: an ``Engine`` (algorithm, sampler, config, data and mesh are used; the
      stepped pieces are compiled once per engine and reused by ``with_data``
      copies of it).
    sim: the simulation state.
    ids: sampled client ids.
    key: the root key (the same every round).

  Returns:
    ``(sim, metrics)`` as ``Engine.run_round``.
  """
  f = _fns(eng)
  d = f.devices
  meta_all, chunk_steps = plan(eng, ids)
  server, clients = sim
  tot = agg_lib.totals(jnp.asarray(meta_all.weight))
  put = (lambda a: jnp.asarray(a)) if f.by_client is None else (
    lambda a: jax.device_put(a, f.by_client))
  sums, msum_total, stacked = None, None, []
  for c, t_max in enumerate(chunk_steps):
    meta = ClientMeta(*[put(v[c * d:(c + 1) * d]) for v in meta_all])
    carry, sstate, skey = f.start(server, clients, meta, eng.data, key)
    msum, zero_sums = f.zeros(server, carry, eng.data, meta, sstate, skey, tot, sums is None)
    sums = zero_sums if sums is None else sums
    for t in range(int(t_max)):
      carry, msum = f.step(carry, msum, eng.data, meta, sstate, skey, np.int32(t))
    clients, sums, part = f.end(server, clients, sums, carry, meta, tot)
    stacked.append(part)
    msum = jax.tree.map(lambda v: v.sum(0), msum)
    msum_total = msum if msum_total is None else jax.tree.map(jnp.add, msum_total, msum)
  stacked = jax.tree.map(lambda *xs: jnp.concatenate(xs), *stacked)
  server, sm = f.server(server, sums, stacked, tot, key)
  nsteps = int(meta_all.steps.sum())
  metrics = {**jax.tree.map(lambda v: v / max(nsteps, 1), msum_total), **sm,
             "real_steps": jnp.int32(nsteps)}
  return SimState(server, clients), metrics
