"""The vmapped (and sharded) round: gather client rows, scan, aggregate, scatter."""

import copy
import dataclasses
import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxlab.core import axes, rng, sharding
from jaxlab.core.errors import ConfigError
from jaxlab.federated import aggregate as agg_lib
from jaxlab.federated import host_table as host_lib
from jaxlab.federated import schedule
from jaxlab.federated import shard as shard_lib
from jaxlab.federated import stream as stream_lib
from jaxlab.federated.types import ClientMeta, FedAlgorithm, FedData, Sampler, SimState

CLIENTS_TAG = 1001   # round key -> client keys
SERVER_TAG = 1002    # round key -> server_update key


@dataclasses.dataclass(frozen=True, kw_only=True)
class EngineConfig:
  """Static engine settings (they change shapes, so they are not swept).

  Attributes:
    batch_size: local batch size B.
    local_epochs: local epochs E (steps_k = E·ceil(n_k/B)).
    step_bucket: scan-length buckets: "pow2", "mult:M" or "exact".
    min_bucket: smallest pow2 bucket.
    groups: sort sampled clients by steps and run this many scans (own T each).
    grouping: how sorted clients are cut into ``groups``: ``"equal"`` (equal sizes:
      group shapes fixed across rounds, only T varies) or ``"optimal"`` (the cut
      that minimises scanned padded steps, by dynamic programming: least waste, but
      group sizes vary by round, so each new size tuple compiles).
    steps_per_call: stepped engine only: the most local steps one call runs
      (unrolled, in powers of two); more = fewer dispatches, longer compiles.
    client_chunk: run each group this many clients at a time (``lax.scan`` over
      chunks, aggregate streamed) to bound memory; None = all clients of a group
      at once.
  """
  batch_size: int
  local_epochs: int = 1
  step_bucket: str = "pow2"
  min_bucket: int = 8
  groups: int = 1
  grouping: str = "equal"
  steps_per_call: int = 4
  client_chunk: int | None = None

  def __post_init__(self):
    if self.batch_size < 1 or self.local_epochs < 1 or self.groups < 1:
      raise ConfigError(
        f"batch_size={self.batch_size}, local_epochs={self.local_epochs} and"
        f" groups={self.groups} must all be >= 1")
    schedule.bucket(1, self.step_bucket)
    if self.grouping not in ("equal", "optimal"):
      raise ConfigError(f"grouping={self.grouping!r}; use 'equal' or 'optimal'")
    if self.client_chunk is not None and self.client_chunk < 1:
      raise ConfigError(f"client_chunk={self.client_chunk} must be >= 1 or None")


def tree_where(cond: jax.Array, new, old):
  return jax.tree.map(lambda a, b: jnp.where(cond, a, b), new, old)


def client_key(key: jax.Array, round_idx: jax.Array, client_id: jax.Array) -> jax.Array:
  """One client's round key: fold_in(fold_in(fold_in(key, round), TAG), id)."""
  return jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, round_idx),
                                               CLIENTS_TAG), client_id)


def client_keys(key: jax.Array, round_idx: jax.Array, ids: jax.Array) -> jax.Array:
  """Per-client round keys [S] (``client_key`` for each id)."""
  return jax.vmap(lambda c: client_key(key, round_idx, c))(ids)


def server_key(key: jax.Array, round_idx: jax.Array) -> jax.Array:
  return jax.random.fold_in(jax.random.fold_in(key, round_idx), SERVER_TAG)


def client_update(alg: FedAlgorithm, sampler: Sampler, num_steps: int):
  """One client's round: init, ``num_steps`` gated steps, final.

  Returns:
    ``(server, row, meta, data, key) -> (upload, row, metric sums)``; metric sums
    are over real steps (padded steps contribute 0).
  """
  def run(server, row, meta: ClientMeta, data: FedData, key: jax.Array):
    carry = alg.client_init(server, row, meta, rng.purpose(key, rng.INIT))
    sstate = sampler.prepare(data, meta, rng.purpose(key, rng.DATA))
    skey = rng.purpose(key, rng.STEP)

    def body(carry, t):
      batch = sampler.batch(data, meta, sstate, t)
      new, m = alg.client_step(carry, batch, jax.random.fold_in(skey, t))
      active = t < meta.steps
      return tree_where(active, new, carry), jax.tree.map(lambda v: v * active, m)

    carry, ms = jax.lax.scan(body, carry, jnp.arange(num_steps))
    upload, row = alg.client_final(server, carry, meta)
    return upload, row, jax.tree.map(lambda v: v.sum(0), ms)

  return run


def gather(table, ids: jax.Array):
  return jax.tree.map(lambda t: t.at[ids].get(mode="fill", fill_value=0), table)


def scatter(table, ids: jax.Array, rows):
  return jax.tree.map(lambda t, r: t.at[ids].set(r, mode="drop"), table, rows)


def _vmapped(cu, server, clients, inp: ClientMeta, data: FedData, key, constrain,
             table=(gather, scatter)):
  """Runs the clients of ``inp`` side by side; returns (table, uploads, metric sums).

  ``table`` is the (gather, scatter) pair of the client table's layout (replicated:
  ``gather``/``scatter``; sharded over ``clients``: ``fl.shard.make_gather``...).
  """
  get, put = table
  rows = constrain(get(clients, inp.id))
  keys = client_keys(key, server.round, inp.id)
  up, new_rows, m = jax.vmap(cu, in_axes=(None, 0, 0, None, 0))(server, rows, inp, data, keys)
  return put(clients, inp.id, new_rows), up, jax.tree.map(lambda v: v.sum(0), m)


def _chunked(cu, alg: FedAlgorithm, server, clients, inp: ClientMeta, data: FedData, key,
             constrain, chunk: int, tot: agg_lib.Totals, table=(gather, scatter)):
  """``lax.scan`` over chunks of ``chunk`` vmapped clients, streaming the aggregate.

  Live memory is one chunk's clients plus the running ``Partial`` sums, never the
  stacked uploads of the whole round. Client i of the group runs in chunk
  ``i % n`` (``[S] -> [chunk, n]``), which keeps a ``clients``-sharded axis local.
  """
  n = inp.id.shape[0] // chunk
  xs = jax.tree.map(lambda a: a.reshape(chunk, n).T, inp)

  def one(clients, meta):
    clients, up, m = _vmapped(cu, server, clients, meta, data, key, constrain, table)
    return clients, alg.reduce(server, up, meta.weight, tot), m

  _, part0, m0 = jax.eval_shape(one, clients, jax.tree.map(lambda a: a[0], xs))
  zeros = lambda tree: jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), tree)

  def body(carry, meta):
    clients, sums, msum = carry
    clients, part, m = one(clients, ClientMeta(*meta))
    return (clients, jax.tree.map(jnp.add, sums, part.sums),
            jax.tree.map(jnp.add, msum, m)), part.stacked

  (clients, sums, msum), stacked = jax.lax.scan(body, (clients, zeros(part0.sums), zeros(m0)),
                                                xs)
  stacked = jax.tree.map(lambda a: a.reshape(n * chunk, *a.shape[2:]), stacked)
  return clients, agg_lib.Partial(sums, stacked), msum


def make_round(alg: FedAlgorithm, sampler: Sampler, steps: Sequence[int], constrain=None,
               chunk: int | None = None, table=(gather, scatter)):
  """The pure round for groups with scan lengths ``steps`` (one per group).

  Algorithms with ``reduce``/``finish`` aggregate group by group (streaming); with
  ``chunk`` each group runs ``chunk`` clients at a time under ``lax.scan`` so that
  memory stays ~ one chunk (1000 CNN clients per round fit in a few GB). ``table``
  is the client table's (gather, scatter) pair (``fl.shard`` for a sharded table).

  Returns:
    ``fl_round(sim, inputs: tuple[RoundInputs, ...], data, key) -> (sim, metrics)``.
  """
  cus = [client_update(alg, sampler, t) for t in steps]
  constrain = constrain or (lambda x: x)
  streaming = alg.reduce is not None and alg.finish is not None
  if chunk is not None and not streaming:
    raise ConfigError("client_chunk needs an algorithm with reduce/finish (streaming"
                      " aggregation); build it with fl.algorithms.* or set client_chunk=None")

  def fl_round(sim: SimState, inputs, data: FedData, key: jax.Array):
    server, clients = sim
    weights = jnp.concatenate([inp.weight for inp in inputs])
    tot = agg_lib.totals(weights)
    part, ups, msum, nsteps = None, [], None, 0.0
    for cu, inp in zip(cus, inputs):
      if chunk is None:
        clients, up, m = _vmapped(cu, server, clients, inp, data, key, constrain, table)
        if streaming:
          part = agg_lib.combine(part, alg.reduce(server, up, inp.weight, tot))
        else:
          ups.append(up)
      else:
        clients, p, m = _chunked(cu, alg, server, clients, inp, data, key, constrain, chunk, tot,
                                 table)
        part = agg_lib.combine(part, p)
      msum = m if msum is None else jax.tree.map(jnp.add, msum, m)
      nsteps = nsteps + inp.steps.sum()
    if streaming:
      agg = alg.finish(server, part, tot)
    else:
      uploads = jax.tree.map(lambda *xs: jnp.concatenate(xs), *ups) if len(ups) > 1 else ups[0]
      agg = alg.aggregate(server, uploads, weights)
    server, sm = alg.server_update(server, agg, server_key(key, server.round))
    denom = jnp.maximum(nsteps, 1).astype(jnp.float32)
    metrics = {**jax.tree.map(lambda v: v / denom, msum), **sm, "real_steps": nsteps}
    return SimState(server, clients), metrics

  return fl_round


def check_ids(ids, num_clients: int) -> np.ndarray:
  """Sampled client ids as int64, or a ConfigError if not distinct ids in [0, K)."""
  ids = np.asarray(ids, np.int64)
  if len(set(ids.tolist())) != len(ids) or ids.min() < 0 or ids.max() >= num_clients:
    raise ConfigError(f"client ids must be distinct and in [0, {num_clients})")
  return ids


def optimal_cuts(steps: np.ndarray, groups: int, cost) -> np.ndarray:
  """Cut points splitting ``steps`` (sorted descending) into <= ``groups`` runs that
  minimise ``sum cost(len(run), run[0])`` (dynamic programming, O(groups·S²)).

  Args:
    steps: real local steps per client, sorted in descending order.
    groups: the most runs allowed.
    cost: ``(group sizes int[n], longest client's steps) -> scanned client-steps [n]``.

  Returns:
    int indices for ``np.split`` (sorted, without 0 and S).
  """
  s = len(steps)
  c = np.full((s + 1, s + 1), np.inf)       # c[i, j]: cost of one group steps[i:j]
  c[np.arange(s + 1), np.arange(s + 1)] = 0.0   # an empty group costs nothing
  for i in range(s):
    c[i, i + 1:] = cost(np.arange(1, s - i + 1), int(steps[i]))
  best = np.full(s + 1, np.inf)
  best[0] = 0.0
  arg = np.zeros((groups + 1, s + 1), np.int64)
  for g in range(1, groups + 1):
    tot = best[:, None] + c                 # tot[i, j]: best with g-1 groups to i, then i:j
    arg[g] = np.argmin(tot, axis=0)
    best = tot[arg[g], np.arange(s + 1)]
  cuts, j, g = [], s, groups
  while j > 0:
    i = int(arg[g][j])
    cuts.append(i)
    j, g = i, g - 1
  return np.array(sorted({x for x in cuts if 0 < x < s}), np.int64)


def clients_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
  """A 1-D mesh over the ``clients`` axis (all devices by default)."""
  return sharding.make_mesh({axes.CLIENTS: -1}, jax.devices()[: num_devices or len(jax.devices())])


class Engine:
  """Runs rounds of ``alg`` on ``data``: vmapped clients, one compile per bucket.

  Args:
    alg: the FedAlgorithm.
    config: static settings.
    data: FedData (``make_fed_data``): device arrays, or host NumPy arrays for
      host streaming (``make_fed_data(placement="host" | "auto")``).
    sampler: batch sampler (default ``schedule.epoch_wrap``).
    preprocess: uint8 rows -> model inputs, for the default sampler.
    mesh: shard the clients axis over ``mesh``'s ``clients`` axis.
    client_table: with a mesh, ``"sharded"`` (default: each device holds K/D rows
      of the persistent table, ``fl.shard``) or ``"replicated"`` (every device
      holds all K rows; allows a ``clients`` axis larger than the round); with or
      without a mesh ``"host"``: the K rows stay in host memory (``fl.host_table``;
      only the sampled rows go to the devices each round; one process only).
    client_table_path: with ``client_table="host"``, a directory for the table's
      ``.npy`` memmaps (on disk instead of in RAM); None keeps NumPy arrays.
    data_placement: ``"device"`` (the dataset on every device) or ``"host"`` (only
      the sampled clients' rows travel each round, ``fl.stream``); None follows
      ``data`` (NumPy leaves = host).
  """

  def __init__(self, alg: FedAlgorithm, config: EngineConfig, data: FedData,
               sampler: Sampler | None = None, preprocess=schedule.default_preprocess,
               mesh: jax.sharding.Mesh | None = None, client_table: str | None = None,
               data_placement: str | None = None, client_table_path=None):
    self.alg, self.config, self.mesh = alg, config, mesh
    self.table_mode = shard_lib.check_mode(client_table, mesh)
    if client_table_path is not None and self.table_mode != "host":
      raise ConfigError(f"client_table_path={str(client_table_path)!r} needs"
                        " client_table='host'; pass both or neither")
    if self.table_mode == "host":
      host_lib.check(client_table_path)
    self.table_path = client_table_path
    self.placement = stream_lib.check_placement(data_placement, data)
    self.sampler = sampler or schedule.epoch_wrap(config.batch_size, config.local_epochs,
                                                  preprocess)
    if self.placement == "host":
      self.sampler = stream_lib.stream_sampler(self.sampler)
    self._set_data(data)
    self._fns = {}

  def _set_data(self, data: FedData):
    self.n_host = np.asarray(jax.device_get(data.n))
    self.num_clients = len(self.n_host)
    self.steps_host, self.weight_host = client_work(self.alg, self.config, data)
    if self.placement == "host":
      host = stream_lib.to_host(data)
      self.data = host._replace(extra=self._put(jax.device_get(host.extra)))
    else:
      self.data = self._put(data) if self.mesh is not None else data

  @property
  def devices(self) -> int:
    """Size of the ``clients`` mesh axis (1 without a mesh)."""
    return 1 if self.mesh is None else self.mesh.shape[axes.CLIENTS]

  @property
  def table_rows(self) -> int:
    """Rows of the persistent table: K, or K padded to a multiple of the devices."""
    if self.table_mode == "sharded":
      return shard_lib.padded_rows(self.num_clients, self.devices)
    return self.num_clients

  def with_data(self, data: FedData) -> "Engine":
    """The same engine on other data of the same shapes, sharing compiled rounds."""
    new = copy.copy(self)
    new._set_data(data)
    return new

  def add_pool(self, pool, sim: SimState, key: jax.Array, chunk: int = 8) -> "Engine":
    """This engine on its data plus a shared pool (``fl.pool.build`` over all clients
    with ``sim``'s server); pair it with a ``fl.pool.with_pool`` sampler."""
    from jaxlab.federated import pool as pool_lib
    if self.placement == "host":
      raise ConfigError("a shared pool needs the whole dataset on device; build the engine"
                        " with data_placement='device'")
    extra = jax.jit(functools.partial(pool_lib.build, pool, chunk=chunk))(sim.server, self.data,
                                                                         key)
    new = self.with_data(self.data._replace(extra={**self.data.extra, **extra}))
    new._fns = {}        # new data structure: its own compiled rounds
    return new

  # ---- host-side planning -------------------------------------------------
  def _pad_to(self) -> int:
    return math.lcm(self.devices, self.config.client_chunk or 1)

  def plan(self, ids: np.ndarray) -> tuple[tuple[int, ...], tuple[ClientMeta, ...]]:
    """Scan lengths and padded ``RoundInputs`` per group for sampled ``ids``."""
    ids = check_ids(ids, self.num_clients)
    cfg = self.config
    if self.table_mode == "sharded" and self.devices > len(ids):
      raise ConfigError(
        f"the '{axes.CLIENTS}' mesh axis has {self.devices} devices but a round samples only"
        f" {len(ids)} clients; use fl.clients_mesh({len(ids)}) (or fewer devices), sample"
        f" >= {self.devices} clients per round, or pass client_table='replicated'")
    steps = self.steps_host[ids]
    if cfg.groups > 1:
      order = np.argsort(-steps, kind="stable")
      ids, steps = ids[order], steps[order]
    if cfg.groups > 1 and cfg.grouping == "optimal":
      pad = self._pad_to()
      cost = lambda sizes, t: (sizes + (-sizes % pad)) * schedule.bucket(
        t, cfg.step_bucket, cfg.min_bucket)
      cuts = optimal_cuts(steps, cfg.groups, cost)
    else:
      cuts = np.cumsum([len(a) for a in np.array_split(ids, cfg.groups)])[:-1]
    ts, inputs = [], []
    for g_ids, g_steps in zip(np.split(ids, cuts), np.split(steps, cuts)):
      if len(g_ids) == 0:
        continue
      pad = -len(g_ids) % self._pad_to()
      inputs.append(round_inputs(g_ids, self.n_host[g_ids], g_steps,
                                 self.weight_host[g_ids], pad, self.num_clients))
      ts.append(schedule.bucket(g_steps.max(), cfg.step_bucket, cfg.min_bucket))
    return tuple(ts), tuple(inputs)

  def waste(self, ids: np.ndarray) -> float:
    """Fraction of scanned client-steps that are padding, for ``ids``."""
    ts, inputs = self.plan(ids)
    total = sum(t * len(m.id) for t, m in zip(ts, inputs))
    real = sum(int(m.steps.sum()) for m in inputs)
    return 1.0 - real / total

  # ---- device side ----------------------------------------------------------
  def _put(self, tree, spec=P()):
    """Host or device arrays -> arrays on ``spec`` over the mesh (each process fills its
    own devices from its host copy, so it works with several processes)."""
    if self.mesh is None:
      return jax.tree.map(jnp.asarray, tree)
    return sharding.put_global(tree, self.mesh, spec)

  def _place(self, tree, spec):
    return self._put(tree, spec)

  def _shardings(self, sim_abstract):
    rep = NamedSharding(self.mesh, P())
    server = jax.tree.map(lambda _: rep, sim_abstract.server)
    if self.table_mode == "host" and isinstance(sim_abstract.clients, host_lib.SubTable):
      by_client = NamedSharding(self.mesh, P(axes.CLIENTS))
      rows = jax.tree.map(lambda _: by_client, sim_abstract.clients.rows)
      return SimState(server, host_lib.SubTable(rep, rows)), rep
    if self.table_mode == "sharded":
      clients = shard_lib.table_sharding(self.mesh, sim_abstract.clients)
    else:
      clients = jax.tree.map(lambda _: rep, sim_abstract.clients)
    return SimState(server, clients), rep

  def _table_ops(self):
    if self.table_mode == "host":
      return host_lib.make_ops(self.num_clients, self.mesh)
    if self.table_mode == "sharded":
      return (shard_lib.make_gather(self.mesh, self.num_clients),
              shard_lib.make_scatter(self.mesh, self.num_clients))
    return gather, scatter

  def init(self, key: jax.Array, hparams: dict | None = None) -> SimState:
    """Server state plus the [K, ...] client table, created on its sharding (the
    table has ``table_rows`` rows: K padded to the mesh when sharded; host NumPy
    arrays or memmaps with ``client_table="host"``)."""
    if self.table_mode == "host":
      one = self._init_rows(1, key, hparams)
      row = jax.tree.map(lambda t: np.asarray(jax.device_get(t))[0], one.clients)
      return SimState(one.server, host_lib.new_table(row, self.num_clients, self.table_path))
    return self._init_rows(self.table_rows, key, hparams)

  def _init_rows(self, rows: int, key, hparams):
    fn = functools.partial(init_sim, self.alg, rows)
    data = self.data if self.placement == "device" else None
    if "init" not in self._fns:
      if self.mesh is None:
        self._fns["init"] = jax.jit(fn)
      else:
        sh, _ = self._shardings(jax.eval_shape(fn, key, hparams, data))
        self._fns["init"] = jax.jit(fn, out_shardings=sh)
    return self._fns["init"](key, hparams, data)

  def round_fn(self, steps: tuple[int, ...], sim: SimState):
    """The jitted round for these group scan lengths (cached; one compile each)."""
    if steps not in self._fns:
      fn = make_round(self.alg, self.sampler, steps, self._constrain(),
                      self.config.client_chunk, self._table_ops())
      if self.mesh is None:
        self._fns[steps] = jax.jit(fn, donate_argnums=0)
      else:
        sim_sh, rep = self._shardings(jax.eval_shape(lambda s: s, sim))
        by_client = NamedSharding(self.mesh, P(axes.CLIENTS))
        in_sh = (sim_sh, tuple(ClientMeta(*[by_client] * 4) for _ in steps), rep, rep)
        self._fns[steps] = jax.jit(fn, in_shardings=in_sh, out_shardings=(sim_sh, rep),
                                   donate_argnums=0)
    return self._fns[steps]

  def _constrain(self):
    if self.mesh is None:
      return None
    by_client = NamedSharding(self.mesh, P(axes.CLIENTS))
    return lambda tree: jax.tree.map(
      lambda x: jax.lax.with_sharding_constraint(x, by_client), tree)

  def device_inputs(self, inputs):
    """Round inputs on device; on a mesh split over ``clients``.

    Every host computes the same global inputs (round-seeded sampling), so each
    process fills its addressable shards from them (multi-host ready).
    """
    if self.mesh is None:
      return jax.tree.map(jnp.asarray, inputs)
    sh = NamedSharding(self.mesh, P(axes.CLIENTS))
    return jax.tree.map(
      lambda a: jax.make_array_from_callback(a.shape, sh, lambda i: a[i]), inputs)

  def round_data(self, inputs) -> FedData:
    """The data a round reads: the device data, or (host mode) the sampled clients'
    rows streamed from the host (``fl.stream.round_data``)."""
    if self.placement == "device":
      return self.data
    ids = np.concatenate([m.id for m in inputs])
    return stream_lib.round_data(self.data, ids, self._put)

  def run_round(self, sim: SimState, ids: np.ndarray, key: jax.Array):
    """One vmapped round for sampled ``ids``; ``sim`` is donated."""
    steps, inputs = self.plan(ids)
    if self.table_mode == "host":
      return self._host_round(sim, steps, inputs, key)
    return self.round_fn(steps, sim)(sim, self.device_inputs(inputs), self.round_data(inputs),
                                     key)

  def _host_round(self, sim: SimState, steps, inputs, key):
    """A round on a host table: its sampled rows go to the devices as a
    ``SubTable`` and come back into the host table (updated in place)."""
    table = host_lib.adopt(sim.clients, self.table_path)
    ids = np.concatenate([m.id for m in inputs]).astype(np.int32)
    rows = host_lib.gather_rows(table, ids, self.num_clients)
    spec = P() if self.mesh is None else P(axes.CLIENTS)
    sub = host_lib.SubTable(self._put(ids), self._put(rows, spec))
    dev = SimState(sim.server, sub)
    dev, metrics = self.round_fn(steps, dev)(dev, self.device_inputs(inputs),
                                             self.round_data(inputs), key)
    host_lib.write_rows(table, ids, jax.device_get(dev.clients.rows), self.num_clients)
    return SimState(dev.server, table), metrics


def client_work(alg: FedAlgorithm, config: EngineConfig, data: FedData
                ) -> tuple[np.ndarray, np.ndarray]:
  """Host arrays (steps int32[K], raw weight f32[K]) of every client.

  Default ``E·ceil(n_k/B)`` and ``n_k``; an algorithm's ``work`` hook (a plug-in's
  ``Plugin.work``) replaces both, e.g. labeled vs unlabeled clients.
  """
  n = np.asarray(jax.device_get(data.n))
  if alg.work is None:
    return schedule.local_steps(n, config.batch_size, config.local_epochs), n.astype(np.float32)
  extra = {k: np.asarray(v) for k, v in jax.device_get(data.extra).items()}
  steps, weight = alg.work(n, extra, config.batch_size, config.local_epochs)
  steps, weight = np.asarray(steps, np.int32), np.asarray(weight, np.float32)
  if steps.shape != n.shape or weight.shape != n.shape or (steps < 0).any() or (weight < 0).any():
    raise ConfigError(f"Plugin.work must return steps and weights of shape {n.shape}, >= 0;"
                      f" got {steps.shape} and {weight.shape}")
  return steps, weight


def round_inputs(ids, n, steps, weight, pad: int, num_clients: int) -> ClientMeta:
  """Host ``ClientMeta`` arrays for clients ``ids`` plus ``pad`` padding clients."""
  z = np.zeros(pad)
  return ClientMeta(id=np.concatenate([ids, np.full(pad, num_clients)]).astype(np.int32),
                    n=np.concatenate([n, z]).astype(np.int32),
                    steps=np.concatenate([steps, z]).astype(np.int32),
                    weight=np.concatenate([weight, z]).astype(np.float32))


def init_sim(alg: FedAlgorithm, num_clients: int, key: jax.Array,
             hparams: dict | None = None, data: FedData | None = None) -> SimState:
  """``SimState`` with every client row at ``alg.persist_init``; ``data`` goes to the
  plug-in's ``server_init``."""
  server = alg.init(key, hparams, data)
  row = alg.persist_init(server)
  table = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_clients, *jnp.shape(x))), row)
  return SimState(server, table)
