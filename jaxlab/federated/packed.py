"""Packed sweep rounds: the clients of every run sorted together, one compile.

The rank-aligned sweep round (``engine.make_round`` vmapped over runs) gives every
run's i-th longest client the same scan length, so a run whose i-th client is short
pads up to the longest i-th client of all R runs (25% of the steps of the R = 64
FedProx benchmark). A packed round treats the R·S (run, client) pairs of a round as
one pool of *jobs*: sorted by step count, cut into ``groups`` equal groups of J
jobs, each group one ``vmap`` over its jobs (any mix of runs) with its own trip
count. The trip count is a traced scalar (``lax.fori_loop``), so every round of a
sweep runs one compiled program whatever its step counts; gated steps keep the
per-client arithmetic of the engine, so the results are the engine's.

Per round, on one block of runs (all runs, or one device's runs under
``jax.shard_map``):

1. per run and sampled slot: client keys and ``sampler.prepare`` ([Rb, S], vmapped
   over runs as in the engine: per-run data is never copied per job);
2. per group: gather each job's server, persistent row, meta and sampler state,
   run ``client_init``, the gated local steps and ``client_final``, and scatter the
   row into the client table and the upload into a run-major [Rb, S] buffer
   (the groups are a ``lax.scan``, so compile time does not grow with G);
3. per run: the algorithm's aggregation over its S uploads in the sampled order
   (the engine's single group, so the sums round as the engine's do) and
   ``server_update``.

Memory: the round's R·S uploads (params-sized) are live until the aggregation,
plus one group's client carries; ``client_chunk`` needs ``packing="runs"``, which
streams the aggregate.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core import rng
from jaxlab.federated import aggregate as agg_lib
from jaxlab.federated import engine as eng_lib
from jaxlab.federated.types import ClientMeta, FedAlgorithm, Sampler, SimState


class Jobs(NamedTuple):
  """A packed round plan for one block of runs (leaves [G, J], ``trips`` [G]).

  Attributes:
    run: int32 run of each job within the block (== Rb for a padding job).
    slot: int32 sampled slot of each job (0 for a padding job).
    meta: the job's ``ClientMeta`` (a padding job is the engine's padding client).
    trips: int32 local steps the group runs (its longest job).
  """
  run: np.ndarray
  slot: np.ndarray
  meta: ClientMeta
  trips: np.ndarray


def plan_jobs(meta: ClientMeta, groups: int, num_clients: int) -> Jobs:
  """Sorts a block's (run, slot) jobs by steps (longest first) into equal groups.

  Args:
    meta: host ``ClientMeta`` of the block, every leaf [Rb, S] (run-major).
    groups: G; each group holds ``ceil(Rb·S / G)`` jobs, padded with no-op jobs.
    num_clients: K (the id of a padding job).

  Returns:
    The block's ``Jobs``.
  """
  rb, s = meta.id.shape
  size = -(-rb * s // groups)
  order = np.argsort(-meta.steps.reshape(-1), kind="stable")
  pad = groups * size - rb * s
  run = np.concatenate([order // s, np.full(pad, rb)]).astype(np.int32)
  slot = np.concatenate([order % s, np.zeros(pad)]).astype(np.int32)
  fill = (num_clients, 0, 0, 0.0)
  job_meta = ClientMeta(*[np.concatenate([a.reshape(-1)[order], np.full(pad, f)]).astype(a.dtype)
                          for a, f in zip(meta, fill)])
  shape = lambda a: a.reshape(groups, size)
  steps = shape(job_meta.steps)
  return Jobs(shape(run), shape(slot), ClientMeta(*map(shape, job_meta)),
              steps.max(1).astype(np.int32))


def waste(jobs: Jobs) -> float:
  """Fraction of executed job-steps that are padding (gated)."""
  total = int((jobs.trips[..., None] * np.ones_like(jobs.run)).sum())
  return 1.0 - int(jobs.meta.steps.sum()) / max(total, 1)


def client_run(alg: FedAlgorithm, sampler: Sampler):
  """One job: ``client_init``, ``trips`` gated steps (a traced trip count), ``client_final``.

  Returns:
    ``(server, row, meta, sstate, key, data, trips) -> (upload, row, metric sums)``,
    the same arithmetic as ``engine.client_update`` for any ``trips >= meta.steps``.
  """
  def run(server, row, meta: ClientMeta, sstate, key, data, trips):
    carry = alg.client_init(server, row, meta, rng.purpose(key, rng.INIT))
    skey = rng.purpose(key, rng.STEP)

    def step(carry, t):
      batch = sampler.batch(data, meta, sstate, t)
      return alg.client_step(carry, batch, jax.random.fold_in(skey, t))

    m0 = jax.eval_shape(step, carry, jnp.int32(0))[1]
    zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), m0)

    def body(t, c):
      carry, msum = c
      new, m = step(carry, t)
      active = t < meta.steps
      return (eng_lib.tree_where(active, new, carry),
              jax.tree.map(lambda s, v: s + v * active, msum, m))

    carry, msum = jax.lax.fori_loop(0, trips, body, (carry, zeros))
    upload, row = alg.client_final(server, carry, meta)
    return upload, row, msum

  return run


def _take(tree, run, slot=None):
  """Leaves [Rb, ...] (or [Rb, S, ...] with ``slot``) at each job; padding jobs clip."""
  def one(a):
    r = jnp.minimum(run, a.shape[0] - 1)
    return a[r] if slot is None else a[r, slot]
  return jax.tree.map(one, tree)


def _put(buf, run, slot, vals):
  """Scatter job values into run-major [Rb, S, ...] buffers (padding jobs dropped)."""
  return jax.tree.map(lambda b, v: b.at[run, slot].set(v, mode="drop"), buf, vals)


def make_round(alg: FedAlgorithm, sampler: Sampler, data_flags):
  """The packed round over a block of runs.

  Args:
    alg: the FedAlgorithm.
    sampler: the batch sampler.
    data_flags: ``FedData`` of bools: whether a leaf carries the runs axis.

  Returns:
    ``fl_round(sims [Rb], meta: ClientMeta [Rb, S], jobs: Jobs, data, keys [Rb])
    -> (sims, metrics [Rb])``.
  """
  run1 = client_run(alg, sampler)
  data_axes = jax.tree.map(lambda f: 0 if f else None, data_flags)
  streaming = alg.reduce is not None and alg.finish is not None

  def prepare(server, meta, data, key):             # one run, all S slots
    ckeys = eng_lib.client_keys(key, server.round, meta.id)
    sst = jax.vmap(lambda m, k: sampler.prepare(data, m, rng.purpose(k, rng.DATA)))(meta, ckeys)
    return sst, ckeys

  def finish(server, ups, meta, key, msum):          # one run, uploads in slot order
    if streaming:
      tot = agg_lib.totals(meta.weight)
      agg = alg.finish(server, alg.reduce(server, ups, meta.weight, tot), tot)
    else:
      agg = alg.aggregate(server, ups, meta.weight)
    server, sm = alg.server_update(server, agg, eng_lib.server_key(key, server.round))
    nsteps = meta.steps.sum()
    denom = jnp.maximum(nsteps, 1).astype(jnp.float32)
    return server, {**jax.tree.map(lambda v: v / denom, msum), **sm, "real_steps": nsteps}

  def fl_round(sims: SimState, meta: ClientMeta, jobs: Jobs, data, keys):
    server, clients = sims
    rb, s = meta.id.shape
    sst, ckeys = jax.vmap(prepare, in_axes=(0, 0, data_axes, 0))(server, meta, data, keys)
    vrun = jax.vmap(run1, in_axes=(0, 0, 0, 0, 0, data_axes, None))

    def run_group(clients, g):
      run, slot, jm, trips = g
      rows = jax.tree.map(lambda t: t.at[run, jm.id].get(mode="fill", fill_value=0), clients)
      data_j = jax.tree.map(lambda f, a: _take(a, run) if f else a, data_flags, data)
      return vrun(_take(server, run), rows, jm, _take(sst, run, slot), _take(ckeys, run, slot),
                  data_j, trips)

    def body(carry, g):        # one group; a scan, so compile time does not grow with G
      clients, ups, msum = carry
      run, slot, jm, _ = g
      up, new_rows, m = run_group(clients, g)
      clients = jax.tree.map(lambda t, r: t.at[run, jm.id].set(r, mode="drop"), clients,
                             new_rows)
      msum = jax.tree.map(lambda a, v: a.at[run].add(v, mode="drop"), msum, m)
      return (clients, _put(ups, run, slot, up), msum), None

    xs = (jobs.run, jobs.slot, jobs.meta, jobs.trips)
    up, _, m = jax.eval_shape(run_group, clients, jax.tree.map(lambda a: a[0], xs))
    zeros = lambda tree, lead: jax.tree.map(
      lambda a: jnp.zeros((*lead, *a.shape[1:]), a.dtype), tree)
    (clients, ups, msum), _ = jax.lax.scan(body, (clients, zeros(up, (rb, s)), zeros(m, (rb,))),
                                           xs)
    server, metrics = jax.vmap(finish)(server, ups, meta, keys, msum)
    return SimState(server, clients), metrics

  return fl_round
