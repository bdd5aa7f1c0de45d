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
run's clients take their own step counts. ``packing="jobs"`` (the default, see
``fl.packed``) sorts the R·S (run, client) jobs of a round together into
``groups`` equal groups with traced trip counts: little padding, one compiled
program for every round. ``packing="runs"`` (the default with ``client_chunk``,
which it honours as the engine does) aligns runs by rank: each run's clients are
sorted and cut at the same ranks, padded to the longest client of that rank over
all runs, one compile per tuple of scan lengths. With a ``mesh`` that has a ``sweep``
axis, the runs axis of the state, round inputs, per-run data and keys is sharded
over it (R divisible by the axis size): each device holds R / devices runs. A 2-D
mesh ``("sweep", "clients")`` (``sweep_mesh(runs=..., clients=...)``) also splits
each run's persistent client table over ``clients`` (``[R, K_pad, ...]`` on
``P("sweep", "clients")``, gathered and scattered as in ``fl.shard``) and each
run's sampled clients; it uses ``packing="runs"``.
"""

import functools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxlab.core import axes, sharding
from jaxlab.core.errors import ConfigError
from jaxlab.federated import engine as eng_lib
from jaxlab.federated import packed, schedule
from jaxlab.federated import shard as shard_lib
from jaxlab.federated.data import index_table
from jaxlab.federated.types import ClientMeta, FedAlgorithm, FedData, SimState


def grid(**values) -> dict:
  """Cartesian product of scalar lists as {name: f32[R]} (row-major, last name fastest)."""
  mesh = np.meshgrid(*[np.asarray(v, np.float32) for v in values.values()], indexing="ij")
  return {k: jnp.asarray(m.reshape(-1)) for k, m in zip(values, mesh)}


def sweep_mesh(num_devices: int | None = None, *, clients: int | None = None
               ) -> jax.sharding.Mesh:
  """A mesh over the ``sweep`` axis (all devices by default), or with ``clients=C``
  a 2-D ``("sweep", "clients")`` mesh: runs over devices / C, each run's clients
  over C."""
  devices = jax.devices()[: num_devices or len(jax.devices())]
  if clients is None:
    return sharding.make_mesh({axes.SWEEP: -1}, devices)
  return sharding.make_mesh({axes.SWEEP: -1, axes.CLIENTS: clients}, devices)


PACKINGS = ("jobs", "runs")
PACK_MAX_BYTES = 8 << 20   # default packing "jobs" only while per-run extras stay this small


def check_options(config: eng_lib.EngineConfig, packing: str | None,
                  mesh: jax.sharding.Mesh | None = None) -> str:
  """The packing a Sweep uses, or a one-line ConfigError for settings it cannot honour."""
  two_d = mesh is not None and axes.CLIENTS in mesh.shape
  if two_d and packing == "jobs":
    raise ConfigError("packing='jobs' shards runs only; on a ('sweep', 'clients') mesh use"
                      " packing='runs' (or None)")
  if mesh is not None and axes.SWEEP not in mesh.shape:
    raise ConfigError(f"a Sweep's mesh needs a '{axes.SWEEP}' axis; it has {tuple(mesh.shape)}"
                      " (use fl.sweep.sweep_mesh(clients=...))")
  if two_d:
    packing = "runs"
  if packing is not None and packing not in PACKINGS:
    raise ConfigError(f"packing={packing!r}; use one of {PACKINGS} (or None for the default)")
  if config.groups > 1 and config.grouping != "equal":
    raise ConfigError(f"grouping={config.grouping!r} is not supported by a Sweep (its groups"
                      " have fixed sizes so that every round shares one program); set"
                      " grouping='equal' (or groups=1)")
  if packing == "jobs" and config.client_chunk is not None:
    raise ConfigError(f"packing='jobs' keeps every upload of the round and cannot bound"
                      f" memory with client_chunk={config.client_chunk}; use packing='runs'"
                      " (or client_chunk=None)")
  return packing or ("runs" if config.client_chunk is not None else "jobs")


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
    packing: ``"jobs"`` (the default unless ``client_chunk`` is set or a per-run
      ``FedData.extra`` leaf, such as a shared pool, exceeds 8 MB per run): every run's sampled
      clients are sorted together by step count and cut into ``config.groups``
      equal groups of (run, client) jobs, each with its own trip count, which is a
      traced scalar, so all rounds share one compiled program (``fl.packed``);
      ``"runs"`` (default with ``client_chunk``): each run's clients are sorted
      and cut at the same ranks, the scan length of a rank is the longest over
      all runs, and each tuple of scan lengths compiles once.
  """

  def __init__(self, alg: FedAlgorithm, config: eng_lib.EngineConfig, x, y,
               parts: Sequence, *, extra: Callable[[list], dict] | None = None,
               num_runs: int | None = None, sampler=None,
               preprocess=schedule.default_preprocess, mesh: jax.sharding.Mesh | None = None,
               packing: str | None = None):
    self._packing = packing
    check_options(config, packing, mesh)
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
    self.packing = self._resolve_packing()

  def _resolve_packing(self) -> str:
    """The explicit packing, else "jobs" unless ``client_chunk`` is set or a per-run
    data leaf besides ``idx``/``n`` is large (a job gathers its run's leaves, so a
    per-run pool would be copied once per job; rank alignment vmaps over runs)."""
    packing = check_options(self.config, self._packing, self.mesh)
    if self._packing is None and packing == "jobs":
      per_run = [a.nbytes // self.num_runs for k, v in self.data.extra.items()
                 if self._by_run[k] for a in jax.tree.leaves(v)]
      if per_run and max(per_run) > PACK_MAX_BYTES:
        return "runs"
    return packing

  # ---- placement ----------------------------------------------------------------
  @property
  def _client_devices(self) -> int:
    """Size of the mesh's ``clients`` axis (1 without one)."""
    return 1 if self.mesh is None else dict(self.mesh.shape).get(axes.CLIENTS, 1)

  def _sharding(self, by_run):
    """``by_run``: False (replicated), True (runs over ``sweep``) or ``"clients"``
    (runs over ``sweep`` and the next axis over ``clients``)."""
    if by_run == "clients" and self._client_devices > 1:
      return NamedSharding(self.mesh, P(axes.SWEEP, axes.CLIENTS))
    return NamedSharding(self.mesh, P(axes.SWEEP) if by_run else P())

  def _sim_flags(self, sims) -> SimState:
    """Sharding flags of R stacked states: the client table also over ``clients``."""
    return SimState(jax.tree.map(lambda _: True, sims.server),
                    jax.tree.map(lambda _: "clients", sims.clients))

  @property
  def table_rows(self) -> int:
    """Rows of each run's client table (K padded to the ``clients`` axis)."""
    return shard_lib.padded_rows(self.num_clients, self._client_devices)

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

  @property
  def width(self) -> int:
    """The index table's width (the largest client), as ``fl.runs.Runs.width``."""
    return self.data.idx.shape[-1]

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
    new.packing = new._resolve_packing()
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
    fn = functools.partial(eng_lib.init_sim, self.alg, self.table_rows)
    vm = jax.vmap(fn, in_axes=(0, 0, self._data_axes))
    key = ("init", tuple(sorted(hparams)))
    if key not in self._fns:
      out = jax.eval_shape(vm, keys, hparams, self.data)
      self._fns[key] = self._jit(vm, (True, {k: True for k in hparams}, self._data_flags()),
                                 self._sim_flags(out))
    return self._fns[key](self._put(keys, True), hparams, self.data)

  # ---- rounds -------------------------------------------------------------------
  def plan(self, ids: np.ndarray) -> tuple[tuple[int, ...], tuple[ClientMeta, ...]]:
    """Scan lengths and round inputs per group (every leaf [R, S_g]) for ``ids``."""
    ids = eng_lib.check_ids(ids, self.num_clients)
    cfg = self.config
    if self._client_devices > len(ids) // min(cfg.groups, len(ids)):
      raise ConfigError(
        f"the '{axes.CLIENTS}' mesh axis has {self._client_devices} devices but a round"
        f" samples {len(ids)} clients in {min(cfg.groups, len(ids))} group(s); use"
        f" sweep_mesh(clients=c) with c <= {len(ids) // min(cfg.groups, len(ids))}, fewer"
        " groups, or more clients per round")
    steps = self.steps_host[:, ids]                                     # [R, S]
    order = (np.argsort(-steps, axis=1, kind="stable") if cfg.groups > 1
             else np.broadcast_to(np.arange(len(ids)), steps.shape))
    rid = np.arange(self.num_runs)[:, None]
    sid = ids[order]                                                    # [R, S]
    chunk = math.lcm(cfg.client_chunk or 1, self._client_devices)
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
    if self.packing == "jobs":
      jobs = self.packed_plan(ids)[1]
      return packed.waste(jobs)
    ts, inputs = self.plan(ids)
    total = sum(t * m.id.size for t, m in zip(ts, inputs))
    return 1.0 - sum(int(m.steps.sum()) for m in inputs) / total

  def round_fn(self, steps: tuple[int, ...]):
    """The jitted R-run round for these group scan lengths (cached)."""
    if steps not in self._fns:
      two_d = self._client_devices > 1
      table = ((shard_lib.make_gather(self.mesh, self.num_clients),
                shard_lib.make_scatter(self.mesh, self.num_clients)) if two_d
               else (eng_lib.gather, eng_lib.scatter))
      fn = eng_lib.make_round(self.alg, self.sampler, steps, None, self.config.client_chunk,
                              table)
      # spmd_axis_name: inside the table's shard_map the runs axis stays split over
      # ``sweep`` (each device gathers its own runs' rows only).
      vm = jax.vmap(fn, in_axes=(0, 0, self._data_axes, 0),
                    spmd_axis_name=axes.SWEEP if two_d else None)
      flag = "clients" if two_d else True
      in_flags = (True, tuple(ClientMeta(flag, flag, flag, flag) for _ in steps),
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
    if self.packing == "jobs":
      meta, jobs = self.packed_plan(ids)
      put = lambda tree: jax.tree.map(lambda a: self._put(a, True), tree)
      return self.packed_fn()(sims, put(meta), put(jobs), self.data, self._put(keys, True))
    steps, inputs = self.plan(ids)
    flag = "clients" if self._client_devices > 1 else True
    inputs = tuple(jax.tree.map(lambda a: self._put(a, flag), m) for m in inputs)
    return self.round_fn(steps)(sims, inputs, self.data, self._put(keys, True))

  # ---- packed rounds (packing="jobs") ----------------------------------------------
  def _blocks(self) -> int:
    return 1 if self.mesh is None else self.mesh.shape[axes.SWEEP]

  def packed_plan(self, ids: np.ndarray) -> tuple[ClientMeta, packed.Jobs]:
    """Run-major round inputs (leaves [R, S], sampled order) and the packed jobs of
    each device's block of runs (leaves [D, G, J], trips [D, G])."""
    ids = eng_lib.check_ids(ids, self.num_clients)
    r = np.arange(self.num_runs)[:, None]
    meta = ClientMeta(np.broadcast_to(ids, (self.num_runs, len(ids))).astype(np.int32),
                      self.n_host[r, ids].astype(np.int32),
                      self.steps_host[r, ids].astype(np.int32),
                      self.weight_host[r, ids].astype(np.float32))
    blocks = [packed.plan_jobs(jax.tree.map(lambda a: a[rows], meta), self.config.groups,
                               self.num_clients)
              for rows in np.split(np.arange(self.num_runs), self._blocks())]
    return meta, jax.tree.map(lambda *xs: np.stack(xs), *blocks)

  def packed_fn(self):
    """The jitted packed round (one compile for every round of this sweep)."""
    if "packed" not in self._fns:
      fn = packed.make_round(self.alg, self.sampler, self._data_flags())
      local = lambda sims, meta, jobs, data, keys: fn(
        sims, meta, jax.tree.map(lambda a: a[0], jobs), data, keys)
      if self.mesh is not None:
        run_spec = P(axes.SWEEP)
        data_specs = jax.tree.map(lambda f: run_spec if f else P(), self._data_flags())
        local = jax.shard_map(local, mesh=self.mesh,
                              in_specs=(run_spec, run_spec, run_spec, data_specs, run_spec),
                              out_specs=run_spec, check_vma=False)
      self._fns["packed"] = jax.jit(local, donate_argnums=0)
    return self._fns["packed"]


class _LazyJit:
  """jit with run-sharded in/out shardings; the output structure is read on first call."""

  def __init__(self, sweep: Sweep, fn, in_flags):
    self.sweep, self.fn, self.in_flags, self.jitted = sweep, fn, in_flags, None

  def __call__(self, sims, inputs, data, keys):
    if self.jitted is None:
      sh = lambda flags: jax.tree.map(self.sweep._sharding, flags)
      sim_flags = self.sweep._sim_flags(sims)
      out = jax.eval_shape(self.fn, sims, inputs, data, keys)
      out_flags = (sim_flags, jax.tree.map(lambda _: True, out[1]))
      self.jitted = jax.jit(self.fn, in_shardings=(sh(sim_flags), *map(sh, self.in_flags[1:])),
                            out_shardings=sh(out_flags), donate_argnums=0)
    return self.jitted(sims, inputs, data, keys)
