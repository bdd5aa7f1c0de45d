"""Host-stepped rounds: one client per device, the local-step loop in Python.

Why a third engine: on XLA:CPU a convolution's weight gradient runs ~60x slower
inside a while loop (``lax.scan``) than at the top level of a program (jax#12868),
and ``vmap`` over clients turns a convolution with per-client kernels into a
grouped convolution, which is slow too. Convolutional models on CPU are fastest
when every call is one plain training step of one client per device. This engine
gives each device of the ``clients`` mesh (D lanes; 1 without a mesh) its own
client: every ``step`` call advances all D lanes by one local step (``jax.shard_map``,
no loop and no vmap inside), and when a lane's client has taken its last real step
a ``swap`` call uploads it (``client_final`` -> streamed ``alg.reduce``, rows
scattered back) and starts the next client from the queue on that lane only.
Clients are queued longest first, so lanes stay busy (padded steps only in the
last few calls of a round) and nothing recompiles when step counts change.

It shares ``client_init/step/final``, the sampler, the key plan and the streaming
aggregation (``alg.reduce``/``alg.finish``) with the vmapped engine, so its rounds
equal the vmapped and sequential engines' (tests). Memory is D clients plus the
running aggregate.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxlab.core import axes, rng
from jaxlab.core.errors import ConfigError
from jaxlab.federated import aggregate as agg_lib
from jaxlab.federated import engine as eng_lib
from jaxlab.federated.types import ClientCarry, ClientMeta, SimState


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


def where_rows(mask: jax.Array, new, old):
  """Per-lane select: leaf rows of ``new`` where ``mask`` [D] is set, else ``old``."""
  def one(a, b):
    if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
      return jax.random.wrap_key_data(one(jax.random.key_data(a), jax.random.key_data(b)),
                                      impl=jax.random.key_impl(a))
    return jnp.where(mask.reshape(-1, *[1] * (a.ndim - 1)), a, b)
  return jax.tree.map(one, new, old)


def like_vma(new, old):
  """``new``'s leaves cast to vary over the manual mesh axes ``old``'s leaves vary over
  (inside ``shard_map``, values computed from replicated inputs are invariant; ``cond``
  needs both branches typed alike). Outside ``shard_map`` it returns ``new``."""
  def one(a, b):
    vma = lambda x: jax.typeof(x).manual_axis_type.varying
    extra = tuple(sorted(vma(b) - vma(a)))
    return jax.lax.pcast(a, extra, to="varying") if extra else a
  return jax.tree.map(one, new, old)


class Lanes(NamedTuple):
  """The D lanes' working state (every leaf [D, ...], split over ``clients``)."""
  meta: ClientMeta     # the client on each lane (id == K: idle)
  carry: ClientCarry
  sstate: Any          # sampler state (epoch permutations)
  skey: jax.Array      # step keys
  t: jax.Array         # int32[D] local step reached
  msum: dict           # metric sums over real steps


def check_engine(eng) -> None:
  """A one-line ConfigError where the stepped engine cannot run ``eng``.

  It drives lanes from one host (lane sums and persistent rows go through that
  host's memory), so it runs in a single process only, on device-resident data.
  """
  if jax.process_count() > 1:
    raise ConfigError(f"the stepped engine runs in one process only ({jax.process_count()}"
                      " processes here); use the vmapped engine (LoopConfig(engine='vmap'),"
                      " jaxlab run ... --set engine=vmap) for multi-process runs")
  if getattr(eng, "placement", "device") == "host":
    raise ConfigError("the stepped engine needs the dataset on device; use the vmapped"
                      " engine for host-streamed data (or data_placement='device')")
  if getattr(eng, "table_mode", "replicated") == "host":
    raise ConfigError("the stepped engine needs the client table on device; use the vmapped"
                      " engine for client_table='host' (or client_table='sharded')")


class _Fns:
  """The jitted pieces of a stepped round for one engine (compiled once each)."""

  def __init__(self, eng):
    alg, sampler, mesh = eng.alg, eng.sampler, eng.mesh
    check_engine(eng)
    if alg.reduce is None or alg.finish is None:
      raise ConfigError("the stepped engine needs an algorithm with reduce/finish"
                        " (fl.algorithms.*); use the vmap or sequential engine instead")
    self.devices = 1 if mesh is None else mesh.shape[axes.CLIENTS]
    self.by_client = None if mesh is None else NamedSharding(mesh, P(axes.CLIENTS))
    rep = None if mesh is None else NamedSharding(mesh, P())

    def start1(server, row, meta, data, key):
      ck = eng_lib.client_key(key, server.round, meta.id)
      carry = alg.client_init(server, row, meta, rng.purpose(ck, rng.INIT))
      sstate = sampler.prepare(data, meta, rng.purpose(ck, rng.DATA))
      return carry, sstate, rng.purpose(ck, rng.STEP)

    def restart1(server, row, meta, data, key, done, carry, sstate, skey):
      """``start1`` on a lane whose client is ``done``; the lane's own state otherwise
      (a real branch per device: the lanes that keep their client skip the sampler's
      ``prepare``)."""
      old = (carry, sstate, skey)
      return jax.lax.cond(done, lambda: like_vma(start1(server, row, meta, data, key), old),
                          lambda: old)

    def metrics_of(carry, data, meta, sstate, skey):
      return alg.client_step(carry, sampler.batch(data, meta, sstate, jnp.int32(0)), skey)[1]

    def step1(lane: Lanes, data):
      batch = sampler.batch(data, lane.meta, lane.sstate, lane.t)
      new, m = alg.client_step(lane.carry, batch, jax.random.fold_in(lane.skey, lane.t))
      active = lane.t < lane.meta.steps
      return (eng_lib.tree_where(active, new, lane.carry), lane.t + 1,
              jax.tree.map(lambda s, v: s + v * active, lane.msum, m))

    def final1(server, carry, meta, done, tot):
      """One lane's upload as partial sums (0 unless ``done``) and its new row."""
      up, row = alg.client_final(server, carry, meta)
      part = alg.reduce(server, jax.tree.map(lambda a: a[None], up),
                        jnp.where(done, meta.weight, 0.0)[None], tot)
      return part.sums, jax.tree.map(lambda a: a[0], part.stacked), row

    start_d = per_device(start1, mesh, (False, True, True, False, False))
    final_d = per_device(final1, mesh, (False, True, True, True, False))
    restart_d = per_device(restart1, mesh, (False, True, True, False, False) + (True,) * 4)

    def begin(server, clients, meta, data, key, tot):
      """All lanes start the clients ``meta``; zero metric and aggregate sums."""
      carry, sstate, skey = start_d(server, eng_lib.gather(clients, meta.id), meta, data, key)
      one = lambda tree: jax.tree.map(lambda x: x[0], tree)
      m = jax.eval_shape(metrics_of, one(carry), data, one(meta), one(sstate), one(skey))
      msum = jax.tree.map(lambda a: jnp.zeros((self.devices, *a.shape), a.dtype), m)
      sums, _, _ = jax.eval_shape(final_d, server, carry, meta, meta.n > 0, tot)
      sums = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), sums)
      return Lanes(meta, carry, sstate, skey, jnp.zeros_like(meta.steps), msum), sums

    def swap(server, clients, sums, lane: Lanes, done, new_meta, data, key, tot):
      """Lanes where ``done``: upload into their own running ``sums`` and start
      ``new_meta``'s client; other lanes are untouched. Everything stays on its
      lane's device (no collectives: XLA:CPU's in-process all-reduce can stall when
      the devices outnumber free cores)."""
      part_sums, stacked, rows = final_d(server, lane.carry, lane.meta, done, tot)
      meta = where_rows(done, new_meta, lane.meta)
      carry, sstate, skey = restart_d(server, eng_lib.gather(clients, meta.id), meta, data, key,
                                      done, lane.carry, lane.sstate, lane.skey)
      lane = Lanes(meta, carry, sstate, skey, jnp.where(done, 0, lane.t), lane.msum)
      return jax.tree.map(jnp.add, sums, part_sums), lane, stacked, rows

    def write_rows(clients, ids, rows):
      return eng_lib.scatter(clients, ids, rows)

    def server_step(server, sums, stacked, tot, key):
      agg = alg.finish(server, agg_lib.Partial(sums, stacked), tot)
      return alg.server_update(server, agg, eng_lib.server_key(key, server.round))

    self.has_rows = None
    self.replicated = rep
    self.begin = jax.jit(begin)
    def steps1(k):
      def run(lane, data):
        for _ in range(k):    # unrolled: a while loop would hit XLA:CPU's slow conv path
          carry, t, msum = step1(lane, data)
          lane = lane._replace(carry=carry, t=t, msum=msum)
        return lane.carry, lane.t, lane.msum
      return run

    # Only the fields a step changes are outputs (no copies of meta/sampler state);
    # k steps per call (k a power of two <= eng.config.steps_per_call) cut dispatches.
    self._steps = {}
    self._make_steps = lambda k: jax.jit(
      lambda mut, lane, data: per_device(steps1(k), mesh, (True, False))(
        lane._replace(carry=mut[0], t=mut[1], msum=mut[2]), data), donate_argnums=0)
    self.max_unroll = max(1, eng.config.steps_per_call)
    self.swap = jax.jit(swap, donate_argnums=(2, 3))
    table_sh = None   # keep a sharded table on its sharding (every leaf is [K_pad, ...])
    if mesh is not None and getattr(eng, "table_mode", "replicated") == "sharded":
      table_sh = NamedSharding(mesh, P(axes.CLIENTS))
    self.write_rows = jax.jit(write_rows, donate_argnums=0, out_shardings=table_sh)
    self.server = jax.jit(server_step)


  def step(self, lane: "Lanes", data, k: int = 1) -> "Lanes":
    """``k`` local steps on every lane (as few calls as powers of two allow)."""
    while k > 0:
      u = min(1 << (k.bit_length() - 1), 1 << (self.max_unroll.bit_length() - 1))
      if u not in self._steps:
        self._steps[u] = self._make_steps(u)
      carry, t, msum = self._steps[u]((lane.carry, lane.t, lane.msum),
                                      lane._replace(carry=(), t=(), msum=()), data)
      lane = lane._replace(carry=carry, t=t, msum=msum)
      k -= u
    return lane


def _fns(eng) -> _Fns:
  if "_stepped_fns" not in eng.__dict__:
    eng._stepped_fns = _Fns(eng)
  return eng._stepped_fns


def plan(eng, ids: np.ndarray) -> ClientMeta:
  """Sampled clients as host ``ClientMeta`` arrays [S], longest first."""
  ids = eng_lib.check_ids(ids, eng.num_clients)
  steps = eng.steps_host[ids]
  order = np.argsort(-steps, kind="stable")
  ids = ids[order]
  return eng_lib.round_inputs(ids, eng.n_host[ids], eng.steps_host[ids], eng.weight_host[ids],
                              0, eng.num_clients)


def schedule_lanes(steps: np.ndarray, lanes: int) -> tuple[list[int], list[list[tuple[int, int]]]]:
  """The host schedule of a round: clients (longest first) go to the first free lane.

  Args:
    steps: real steps per client, in queue order.
    lanes: D.

  Returns:
    ``(runs, swaps)``: run ``runs[i]`` step calls, then apply ``swaps[i]`` (a list of
    ``(lane, client index or -1 for idle)``); ``swaps`` has one more entry than
    ``runs`` (the first places the initial clients; the last retires the rest).
  """
  s = len(steps)
  first = list(range(min(lanes, s))) + [-1] * max(lanes - s, 0)
  left = [int(steps[c]) if c >= 0 else 0 for c in first]
  busy = [c >= 0 for c in first]
  nxt = min(lanes, s)
  runs, swaps = [], [list(enumerate(first))]
  while any(busy):
    k = min(l for l, b in zip(left, busy) if b)
    runs.append(k)
    left = [l - k if b else 0 for l, b in zip(left, busy)]
    sw = []
    for lane in range(lanes):
      if busy[lane] and left[lane] == 0:
        if nxt < s:
          sw.append((lane, nxt))
          left[lane] = int(steps[nxt])
          nxt += 1
          while left[lane] == 0 and nxt < s:   # clients with 0 steps upload at once
            sw[-1] = (lane, nxt)
            left[lane] = int(steps[nxt])
            nxt += 1
        else:
          sw.append((lane, -1))
          busy[lane] = False
    swaps.append(sw)
  return runs, swaps


def waste(eng, ids: np.ndarray) -> float:
  """Fraction of executed lane-steps that are idle or padding, for ``ids``."""
  meta = plan(eng, ids)
  runs, _ = schedule_lanes(meta.steps, _fns(eng).devices)
  total = sum(runs) * _fns(eng).devices
  return 1.0 - int(meta.steps.sum()) / max(total, 1)


def run_round(eng, sim: SimState, ids: np.ndarray, key: jax.Array):
  """One round for sampled ``ids`` (``sim`` is consumed).

  Args:
    eng: an ``Engine`` (algorithm, sampler, config, data and mesh are used; the
      stepped pieces are compiled once per engine, shared by ``with_data`` copies).
    sim: the simulation state (from ``eng.init``).
    ids: sampled client ids.
    key: the root key (the same every round).

  Returns:
    ``(sim, metrics)`` as ``Engine.run_round``.
  """
  f = _fns(eng)
  d, k_pad = f.devices, eng.num_clients
  q = plan(eng, ids)
  runs, swaps = schedule_lanes(q.steps, d)
  server, clients = sim
  to_rep = lambda tree: jax.device_put(tree, f.replicated)
  put = lambda a: jax.device_put(a, f.by_client)
  tot = to_rep(agg_lib.totals(q.weight.astype(np.float32)))
  cur = [np.full(d, k_pad, np.int32), np.zeros(d, np.int32), np.zeros(d, np.int32),
         np.zeros(d, np.float32)]               # host copy of the lanes' ClientMeta

  def assign(sw):
    for ln, c in sw:
      for j in range(4):
        cur[j][ln] = q[j][c] if c >= 0 else (k_pad if j == 0 else 0)
    return ClientMeta(*[put(a.copy()) for a in cur])

  lane, sums = f.begin(server, clients, assign(swaps[0]), eng.data, key, tot)
  stacked = []
  for k, sw in zip(runs, swaps[1:]):
    lane = f.step(lane, eng.data, k)
    done = np.zeros(d, bool)
    done[[ln for ln, _ in sw]] = True
    ids_done = cur[0][done].copy()
    sums, lane, part, rows = f.swap(server, clients, sums, lane, put(done), assign(sw),
                                    eng.data, key, tot)
    stacked.append((done, part))
    if jax.tree.leaves(rows):   # persistent rows: lane devices -> host -> every device
      sel = np.flatnonzero(done)
      rows = jax.tree.map(lambda a: np.asarray(a)[sel], rows)
      clients = f.write_rows(clients, to_rep(ids_done), to_rep(rows))
  # Lanes' partial sums -> host -> one replicated server update (no collectives).
  sums = to_rep(jax.tree.map(lambda a: np.asarray(a).sum(0), sums))
  stacked = [jax.tree.map(lambda a: np.asarray(a)[np.flatnonzero(done)], part)
             for done, part in stacked]   # small per-client parts, to host once
  stacked = to_rep(jax.tree.map(lambda *xs: np.concatenate(xs), *stacked))
  server, sm = f.server(server, sums, stacked, tot, key)
  nsteps = int(q.steps.sum())
  msum = jax.tree.map(lambda v: np.asarray(v).sum(0) / max(nsteps, 1), lane.msum)
  return SimState(server, clients), {**msum, **sm, "real_steps": np.int32(nsteps)}
