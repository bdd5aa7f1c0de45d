"""R federated simulations as one compiled program: the one way to sweep.

A ``Sweep`` runs R runs of one algorithm side by side (``jax.vmap`` over a leading
[R] axis of the simulation state). Runs may differ in

* every swept scalar in ``ServerState.hparams``: the client optimizer's
  (``learning_rate``, ``momentum`` = FedNova's rho, ``weight_decay``), the
  baseline's (FedProx ``mu``), the server optimizer's (``server_learning_rate``)
  and a plug-in's (``Plugin.hparams``);
* the data partition (Dirichlet alpha x partition seed: one partition per run,
  with per-run extras such as class counts) and the init/training key.

What changes shapes or code (the algorithm, the model, B, E, the plug-in's static
config) is a separate ``Sweep`` and compile: asking ``init`` to sweep such a name is
a one-line error listing the sweepable names.

Every run samples the same client ids each round (round-seeded sampling); each
run's clients take their own step counts, padded to the scan length of the
longest client of all runs (``groups`` > 1 sorts each run's clients by steps and
cuts them into equal groups, each with its own scan length). ``client_chunk``
bounds the round memory as in the engine. With a ``mesh`` that has a ``sweep``
axis, the runs axis of the state, round inputs, per-run data and keys is sharded
over it (R divisible by the axis size): each device holds R / devices runs.
"""

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxlab.core import axes, sharding
from jaxlab.core.errors import ConfigError
from jaxlab.federated import engine as eng_lib
from jaxlab.federated import schedule
from jaxlab.federated.data import index_table
from jaxlab.federated.types import ClientMeta, FedAlgorithm, FedData, SimState


def grid(**values) -> dict:
  """Cartesian product of scalar lists as {name: f32[R]} (row-major, last name fastest)."""
  mesh = np.meshgrid(*[np.asarray(v, np.float32) for v in values.values()], indexing="ij")
  return {k: jnp.asarray(m.reshape(-1)) for k, m in zip(values, mesh)}


def sweep_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
  """A 1-D mesh over the ``sweep`` axis (all devices by default)."""
  return sharding.make_mesh({axes.SWEEP: -1}, jax.devices()[: num_devices or len(jax.devices())])


class Sweep:
  """R runs of ``alg`` that differ in swept scalars, partitions and keys.

  Args:
    alg: the FedAlgorithm (one compile for all runs).
    config: static engine settings (B, E, buckets, ``groups`` with
      ``grouping="equal"``, ``client_chunk``).
    x: raw inputs [N, ...], shared by all runs.
    y: labels [N].
    parts: one partition per run (a list of K index arrays each), or one
      partition shared by every run (then pass ``num_runs``).
    extra: ``partition -> {name: array}``: per-run ``FedData.extra`` (e.g. class
      counts [K, C]) computed from that run's partition.
    num_runs: R when ``parts`` is a single shared partition.
    sampler: batch sampler (default ``schedule.epoch_wrap``).
    preprocess: uint8 rows -> model inputs, for the default sampler.
    mesh: a mesh with a ``sweep`` axis; the runs axis is sharded over it.
  """

  def __init__(self, alg: FedAlgorithm, config: eng_lib.EngineConfig, x, y,
               parts: Sequence, *, extra: Callable[[list], dict] | None = None,
               num_runs: int | None = None, sampler=None,
               preprocess=schedule.default_preprocess, mesh: jax.sharding.Mesh | None = None):
    if config.groups > 1 and config.grouping != "equal":
      raise ConfigError("a Sweep cuts each run's clients into equal groups; set"
                        " grouping='equal' (or groups=1)")
    shared = len(parts) > 0 and isinstance(parts[0], np.ndarray)
    if shared:
      if num_runs is None:
        raise ConfigError("one shared partition was given; pass num_runs=R (or one"
                          " partition per run)")
      part_list = [list(parts)]
    else:
      part_list = [list(p) for p in parts]
      if not part_list or len({len(p) for p in part_list}) != 1:
        raise ConfigError("parts must hold one partition per run, all with the same K")
      if num_runs is not None and num_runs != len(part_list):
        raise ConfigError(f"num_runs={num_runs} but {len(part_list)} partitions were given")
    self.num_runs = num_runs if shared else len(part_list)
    self.shared = shared
    self.alg, self.config, self.mesh = alg, config, mesh
    self.sampler = sampler or schedule.epoch_wrap(config.batch_size, config.local_epochs,
                                                  preprocess)
    if mesh is not None and self.num_runs % mesh.shape[axes.SWEEP]:
      raise ConfigError(f"R={self.num_runs} runs do not split over {mesh.shape[axes.SWEEP]}"
                        f" '{axes.SWEEP}' devices; use a multiple of the axis size")
    width = max(max(len(a) for a in p) for p in part_list)
    tables = [index_table(p, width) for p in part_list]
    extras = [{k: np.asarray(v) for k, v in (extra(p) if extra else {}).items()}
              for p in part_list]
    idx = np.stack([t[0] for t in tables])
    n = np.stack([t[1] for t in tables])                              # [P, K]
    ex = {k: np.stack([e[k] for e in extras]) for k in extras[0]}
    if idx.max() >= len(x):
      raise ConfigError(f"partition index {int(idx.max())} >= N={len(x)}")
    self.num_clients = n.shape[1]
    # Host plan: per run steps and weights [R, K] (the algorithm's ``work`` hook).
    work = [eng_lib.client_work(alg, config, FedData(None, None, None, n[i],
                                                     {k: v[i] for k, v in ex.items()}))
            for i in range(len(part_list))]
    rep = lambda a: np.broadcast_to(a, (self.num_runs, *a.shape))
    pick = (lambda a: rep(a[0])) if shared else (lambda a: a)
    self.n_host = pick(n)
    self.steps_host = pick(np.stack([w[0] for w in work]))
    self.weight_host = pick(np.stack([w[1] for w in work]))
    per_run = FedData(None, None, idx if not shared else idx[0], n if not shared else n[0],
                      {k: (v if not shared else v[0]) for k, v in ex.items()})
    self._by_run = {"idx": not shared, "n": not shared, **{k: not shared for k in ex}}
    self.data = FedData(self._put(np.asarray(x), False), self._put(np.asarray(y, np.int32), False),
                        self._put(per_run.idx, not shared), self._put(per_run.n, not shared),
                        {k: self._put(v, not shared) for k, v in per_run.extra.items()})
    self._fns = {}

  # ---- placement ----------------------------------------------------------------
  def _sharding(self, by_run: bool):
    return NamedSharding(self.mesh, P(axes.SWEEP) if by_run else P())

  def _put(self, a, by_run: bool):
    a = jnp.asarray(a)
    return a if self.mesh is None else jax.device_put(a, self._sharding(by_run))

  def _data_flags(self) -> FedData:
    """Which data leaves carry the runs axis (x and y never do)."""
    b = self._by_run
    return FedData(False, False, b["idx"], b["n"], {k: b[k] for k in self.data.extra})

  @property
  def _data_axes(self) -> FedData:
    return jax.tree.map(lambda f: 0 if f else None, self._data_flags())

  def add_pool(self, pool, sims: SimState, keys: jax.Array, chunk: int = 8) -> "Sweep":
    """This sweep plus a per-run shared pool (``fl.pool.build`` with each run's server
    and data, vmapped over runs); pair it with a ``fl.pool.with_pool`` sampler."""
    import copy
    from jaxlab.federated import pool as pool_lib
    fn = jax.vmap(functools.partial(pool_lib.build, pool, chunk=chunk),
                  in_axes=(0, self._data_axes, 0))
    extra = jax.jit(fn)(sims.server, self.data, self._put(keys, True))
    new = copy.copy(self)
    new._by_run = {**self._by_run, **{k: True for k in extra}}
    new.data = self.data._replace(extra={**self.data.extra, **{
      k: jax.tree.map(lambda a: self._put(a, True), v) for k, v in extra.items()}})
    new._fns = {}
    return new

  def _jit(self, fn, in_by_run, out_by_run, donate=()):
    if self.mesh is None:
      return jax.jit(fn, donate_argnums=donate)
    sh = lambda flags: jax.tree.map(self._sharding, flags)
    return jax.jit(fn, in_shardings=sh(in_by_run), out_shardings=sh(out_by_run),
                   donate_argnums=donate)

  # ---- init ---------------------------------------------------------------------
  def init(self, keys: jax.Array, hparams: dict | None = None) -> SimState:
    """R initial states (leading [R] axis on every leaf).

    Args:
      keys: typed keys [R] (init seeds).
      hparams: {name: values [R]} for any sweepable scalar (``grid`` builds a
        product); unknown names raise a ConfigError listing the sweepable ones.
    """
    hparams = {k: jnp.asarray(v, jnp.float32) for k, v in (hparams or {}).items()}
    for k, v in {"keys": keys, **hparams}.items():
      if jnp.shape(v)[:1] != (self.num_runs,):
        raise ConfigError(f"{k} has shape {jnp.shape(v)}; the sweep has R={self.num_runs}"
                          " runs, so pass one value per run")
    fn = functools.partial(eng_lib.init_sim, self.alg, self.num_clients)
    vm = jax.vmap(fn, in_axes=(0, 0, self._data_axes))
    key = ("init", tuple(sorted(hparams)))
    if key not in self._fns:
      out = jax.eval_shape(vm, keys, hparams, self.data)
      self._fns[key] = self._jit(vm, (True, {k: True for k in hparams}, self._data_flags()),
                                 jax.tree.map(lambda _: True, out))
    return self._fns[key](self._put(keys, True), hparams, self.data)

  # ---- rounds -------------------------------------------------------------------
  def plan(self, ids: np.ndarray) -> tuple[tuple[int, ...], tuple[ClientMeta, ...]]:
    """Scan lengths and round inputs per group (every leaf [R, S_g]) for ``ids``."""
    ids = eng_lib.check_ids(ids, self.num_clients)
    cfg = self.config
    steps = self.steps_host[:, ids]                                     # [R, S]
    order = (np.argsort(-steps, axis=1, kind="stable") if cfg.groups > 1
             else np.broadcast_to(np.arange(len(ids)), steps.shape))
    rid = np.arange(self.num_runs)[:, None]
    sid = ids[order]                                                    # [R, S]
    chunk = cfg.client_chunk or 1
    ts, inputs = [], []
    for cols in np.array_split(np.arange(len(ids)), min(cfg.groups, len(ids))):
      g_ids = sid[:, cols]
      pad = -len(cols) % chunk
      metas = [eng_lib.round_inputs(g_ids[r], self.n_host[r, g_ids[r]],
                                    self.steps_host[r, g_ids[r]], self.weight_host[r, g_ids[r]],
                                    pad, self.num_clients) for r in range(self.num_runs)]
      inputs.append(ClientMeta(*[np.stack(f) for f in zip(*metas)]))
      ts.append(schedule.bucket(int(self.steps_host[rid, g_ids].max()), cfg.step_bucket,
                                cfg.min_bucket))
    return tuple(ts), tuple(inputs)

  def waste(self, ids: np.ndarray) -> float:
    """Fraction of scanned client-steps (all runs) that are padding."""
    ts, inputs = self.plan(ids)
    total = sum(t * m.id.size for t, m in zip(ts, inputs))
    return 1.0 - sum(int(m.steps.sum()) for m in inputs) / total

  def round_fn(self, steps: tuple[int, ...]):
    """The jitted R-run round for these group scan lengths (cached)."""
    if steps not in self._fns:
      fn = eng_lib.make_round(self.alg, self.sampler, steps, None, self.config.client_chunk)
      vm = jax.vmap(fn, in_axes=(0, 0, self._data_axes, 0))
      in_flags = (True, tuple(ClientMeta(True, True, True, True) for _ in steps),
                  self._data_flags(), True)
      if self.mesh is None:
        self._fns[steps] = jax.jit(vm, donate_argnums=0)
      else:
        self._fns[steps] = _LazyJit(self, vm, in_flags)
    return self._fns[steps]

  def run_round(self, sims: SimState, ids: np.ndarray, keys: jax.Array):
    """One round of all R runs for sampled ``ids`` (``sims`` donated).

    Args:
      sims: stacked states from ``init``.
      ids: the sampled client ids (the same for every run).
      keys: root training keys [R] (the same every round).

    Returns:
      ``(sims, metrics)``, every metric [R].
    """
    steps, inputs = self.plan(ids)
    inputs = tuple(jax.tree.map(lambda a: self._put(a, True), m) for m in inputs)
    return self.round_fn(steps)(sims, inputs, self.data, self._put(keys, True))


class _LazyJit:
  """jit with run-sharded in/out shardings; the output structure is read on first call."""

  def __init__(self, sweep: Sweep, fn, in_flags):
    self.sweep, self.fn, self.in_flags, self.jitted = sweep, fn, in_flags, None

  def __call__(self, sims, inputs, data, keys):
    if self.jitted is None:
      sh = lambda flags: jax.tree.map(self.sweep._sharding, flags)
      sim_flags = jax.tree.map(lambda _: True, sims)
      out = jax.eval_shape(self.fn, sims, inputs, data, keys)
      out_flags = (sim_flags, jax.tree.map(lambda _: True, out[1]))
      self.jitted = jax.jit(self.fn, in_shardings=(sh(sim_flags), *map(sh, self.in_flags[1:])),
                            out_shardings=sh(out_flags), donate_argnums=0)
    return self.jitted(sims, inputs, data, keys)
