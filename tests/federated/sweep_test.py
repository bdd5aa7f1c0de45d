"""jaxlab.federated.sweep: R runs as one program equal R separate runs; sharding; errors."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jaxlab import federated as fl
from jaxlab.core.errors import ConfigError
from jaxlab.federated import sweep
import fed_helpers as helpers

SIZES = (3, 7, 12, 20, 5, 9)
ROUNDS = ([0, 2, 5], [3, 1, 4], [5, 0, 1])     # partial participation: 3 of 6


def _parts(seed):
  _, _, parts = helpers.tiny_data(SIZES, seed=0)
  if seed == 0:
    return parts
  rs = np.random.RandomState(seed)            # another partition of the same samples
  flat = rs.permutation(np.concatenate(parts))
  return np.split(flat, np.cumsum([4, 15, 2, 11, 8])).copy()


def _alg(name="fedprox", momentum=0.5):
  tx = fl.client_sgd(learning_rate=0.05, momentum=momentum, weight_decay=1e-3)
  return fl.algorithms.ALGORITHMS[name](helpers.model(), tx, num_clients=len(SIZES))


def _separate(eng, parts, width, key_seed, hp):
  x, y, _ = helpers.tiny_data(SIZES)
  eng = eng.with_data(fl.make_fed_data(x, y, parts, width=width))   # shares compiled rounds
  sim = eng.init(jax.random.key(key_seed), hp)
  for ids in ROUNDS:
    sim, m = eng.run_round(sim, np.array(ids), jax.random.key(key_seed + 100))
  return sim, m


@pytest.mark.parametrize("groups,chunk", [(1, None), (3, None), (2, 2)])
def test_sweep_equals_separate_runs(groups, chunk):
  # R = 4: two partitions x two (lr, mu, server lr) settings, each with its own key.
  x, y, _ = helpers.tiny_data(SIZES)
  parts = [_parts(0), _parts(1), _parts(0), _parts(1)]
  hp = {"learning_rate": [0.05, 0.05, 0.2, 0.2], "mu": [0.0, 1.0, 0.5, 0.0],
        "server_learning_rate": [1.0, 0.5, 1.0, 0.7]}
  seeds = [0, 1, 2, 3]
  cfg = fl.EngineConfig(batch_size=4, local_epochs=2, groups=groups, client_chunk=chunk,
                        min_bucket=16)       # one scan length for every round: few compiles
  alg = _alg()
  sw = sweep.Sweep(alg, cfg, x, y, parts)
  assert sw.packing == ("runs" if chunk else "jobs")
  keys = jnp.stack([jax.random.key(s) for s in seeds])
  sims = sw.init(keys, hp)
  tkeys = jnp.stack([jax.random.key(s + 100) for s in seeds])
  for ids in ROUNDS:
    sims, m = sw.run_round(sims, np.array(ids), tkeys)
  width = sw.data.idx.shape[-1]
  # Packed jobs aggregate each run in the sampled order, as the engine's single group.
  eng_cfg = cfg if chunk else dataclasses.replace(cfg, groups=1)
  eng = fl.Engine(alg, eng_cfg, fl.make_fed_data(x, y, parts[0], width=width))
  for r in range(4):
    sim, m_r = _separate(eng, parts[r], width, seeds[r], {k: v[r] for k, v in hp.items()})
    chex.assert_trees_all_close(jax.tree.map(lambda t: t[r], sims), sim, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m["loss"][r], m_r["loss"], rtol=1e-5)
    assert int(m["real_steps"][r]) == int(m_r["real_steps"])
  leaf = lambda r: jax.tree.leaves(jax.tree.map(lambda t: t[r], sims.server.params))[0]
  assert not np.allclose(leaf(0), leaf(2))                 # different lrs really differ
  assert int(m["real_steps"][0]) != int(m["real_steps"][1])  # partitions really differ


def test_shared_partition_and_hparams_of_every_baseline():
  # FedNova's rho is the momentum hparam; SCAFFOLD runs too (no per-run partition).
  x, y, parts = helpers.tiny_data(SIZES)
  cfg = fl.EngineConfig(batch_size=4, local_epochs=1)     # every round's scan: 8 steps
  for name, hp in (("fednova", {"momentum": [0.0, 0.9]}), ("scaffold", {"learning_rate": [0.01, 0.1]})):
    alg = _alg(name)
    sw = sweep.Sweep(alg, cfg, x, y, parts, num_runs=2)
    keys = jnp.stack([jax.random.key(3), jax.random.key(3)])
    sims = sw.init(keys, hp)
    for ids in ROUNDS[:2]:
      sims, _ = sw.run_round(sims, np.array(ids), keys)
    eng = fl.Engine(alg, cfg, fl.make_fed_data(x, y, parts))
    for r in range(2):
      sim = eng.init(jax.random.key(3), {k: v[r] for k, v in hp.items()})
      for ids in ROUNDS[:2]:
        sim, _ = eng.run_round(sim, np.array(ids), jax.random.key(3))
      chex.assert_trees_all_close(jax.tree.map(lambda t: t[r], sims), sim, rtol=1e-5, atol=1e-6)


def test_server_learning_rate_scales_the_step():
  # Independent of the engine's code: w' = w - eta_s * delta, so eta_s = 0.5 lands halfway.
  x, y, parts = helpers.tiny_data(SIZES)
  sw = sweep.Sweep(_alg("fedavg"), fl.EngineConfig(batch_size=4), x, y, parts, num_runs=2)
  keys = jnp.stack([jax.random.key(0)] * 2)
  sims = sw.init(keys, {"server_learning_rate": [1.0, 0.5]})
  w0 = jax.tree.map(lambda t: np.asarray(t[0]), sims.server.params)
  sims, _ = sw.run_round(sims, np.array([0, 3]), keys)
  full = jax.tree.map(lambda t: np.asarray(t[0]), sims.server.params)
  half = jax.tree.map(lambda t: np.asarray(t[1]), sims.server.params)
  chex.assert_trees_all_close(half, jax.tree.map(lambda a, b: a + 0.5 * (b - a), w0, full),
                              rtol=1e-5, atol=1e-6)


def test_runs_shard_over_the_sweep_axis():
  # 8 fake devices, R = 16: every run-axis array holds 2 runs per device.
  x, y, _ = helpers.tiny_data(SIZES)
  parts = [_parts(r % 2) for r in range(16)]
  hp = {"learning_rate": np.linspace(0.01, 0.2, 16)}
  keys = jnp.stack([jax.random.key(r) for r in range(16)])
  cfg = fl.EngineConfig(batch_size=4, min_bucket=16)
  mesh = sweep.sweep_mesh()
  assert mesh.shape["sweep"] == 8
  sharded = sweep.Sweep(_alg(), cfg, x, y, parts, mesh=mesh)
  plain = sweep.Sweep(_alg(), cfg, x, y, parts)
  a, b = sharded.init(keys, hp), plain.init(keys, hp)
  for ids in ROUNDS[:2]:
    a, ma = sharded.run_round(a, np.array(ids), keys)
    b, mb = plain.run_round(b, np.array(ids), keys)
  for arr in jax.tree.leaves(a) + [sharded.data.idx, sharded.data.n, ma["loss"]]:
    assert arr.sharding.spec[0] == "sweep", arr.sharding
    assert {s.data.shape[0] for s in arr.addressable_shards} == {2}
    assert len(arr.sharding.device_set) == 8
  assert sharded.data.x.sharding.spec == P()        # shared inputs are replicated
  chex.assert_trees_all_close(jax.device_get(a), jax.device_get(b), rtol=1e-5, atol=1e-6)


def test_bad_settings_are_clear_errors():
  x, y, parts = helpers.tiny_data(SIZES)
  sw = sweep.Sweep(_alg(), fl.EngineConfig(batch_size=4), x, y, parts, num_runs=2)
  keys = jnp.stack([jax.random.key(0)] * 2)
  with pytest.raises(ConfigError, match=r"unknown hyper-parameter 'batch_size'; sweepable: .*"
                     r"'learning_rate'.*'mu'.*'server_learning_rate'"):
    sw.init(keys, {"batch_size": [4, 8]})
  with pytest.raises(ConfigError, match="one value per run"):
    sw.init(keys, {"learning_rate": [0.1, 0.2, 0.3]})
  with pytest.raises(ConfigError, match="num_runs"):
    sweep.Sweep(_alg(), fl.EngineConfig(batch_size=4), x, y, parts)
  with pytest.raises(ConfigError, match=r"grouping='optimal' is not supported by a Sweep.*"
                     r"set grouping='equal'"):
    sweep.Sweep(_alg(), fl.EngineConfig(batch_size=4, groups=2, grouping="optimal"), x, y,
                parts, num_runs=2)
  with pytest.raises(ConfigError, match=r"packing='jobs' .* client_chunk=2; use packing='runs'"):
    sweep.Sweep(_alg(), fl.EngineConfig(batch_size=4, client_chunk=2), x, y, parts,
                num_runs=2, packing="jobs")
  with pytest.raises(ConfigError, match=r"packing='rows'; use one of \('jobs', 'runs'\)"):
    sweep.Sweep(_alg(), fl.EngineConfig(batch_size=4), x, y, parts, num_runs=2,
                packing="rows")
  with pytest.raises(ConfigError, match="do not split"):
    sweep.Sweep(_alg(), fl.EngineConfig(batch_size=4), x, y, parts, num_runs=3,
                mesh=sweep.sweep_mesh())


def test_packed_plan_against_a_hand_loop():
  # Every (run, slot) once; groups longest first; trips = the group's longest job.
  rs = np.random.RandomState(0)
  steps = rs.randint(0, 9, size=(3, 5))
  meta = fl.ClientMeta(np.tile(np.arange(5), (3, 1)).astype(np.int32),
                       steps * 4, steps.astype(np.int32), steps.astype(np.float32))
  jobs = fl.packed.plan_jobs(meta, groups=4, num_clients=5)
  assert jobs.run.shape == (4, 4)                           # ceil(15 / 4) = 4 jobs a group
  real = [(int(r), int(s)) for r, s in zip(jobs.run.ravel(), jobs.slot.ravel()) if r < 3]
  assert sorted(real) == [(r, s) for r in range(3) for s in range(5)]
  flat = sorted(steps.ravel().tolist(), reverse=True) + [0]   # one padding job
  for g in range(4):
    assert jobs.trips[g] == max(flat[4 * g: 4 * g + 4])
    for j in range(4):
      r, s = int(jobs.run[g, j]), int(jobs.slot[g, j])
      want = (steps[r, s], s) if r < 3 else (0, 5)             # padding: id K, no steps
      assert (jobs.meta.steps[g, j], jobs.meta.id[g, j]) == want
  assert fl.packed.waste(jobs) == pytest.approx(1 - steps.sum() / (4 * jobs.trips.sum()))


def test_packed_rounds_compile_once_and_pad_less():
  # Run 0's clients need 3 steps each, run 1 has one 13-step client and five 1-step
  # ones. Rank alignment (3 groups of 2 per run) scans 4·(13 + 3 + 3) job-steps;
  # packing the 12 jobs (13,3,3,3 | 3,3,3,1 | 1,1,1,1) scans 4·(13 + 3 + 1).
  x, y, _ = helpers.tiny_data(SIZES)
  flat = np.concatenate(_parts(0))
  even = np.split(flat, np.cumsum([10, 10, 9, 9, 9]))
  skew = np.split(flat, np.cumsum([51, 1, 1, 1, 1]))
  cfg = fl.EngineConfig(batch_size=4, groups=3, step_bucket="exact")
  sw = sweep.Sweep(_alg(), cfg, x, y, [even, skew])
  ids = np.arange(len(SIZES))
  assert sw.waste(ids) == pytest.approx(1 - 36 / 68)
  ranked = sweep.Sweep(_alg(), cfg, x, y, [even, skew], packing="runs")
  assert ranked.waste(ids) == pytest.approx(1 - 36 / 76)
  # The rank-aligned reference with one scan length (16) for every round: one compile.
  ranked = sweep.Sweep(_alg(), dataclasses.replace(cfg, step_bucket="pow2", min_bucket=16), x,
                       y, [even, skew], packing="runs")
  keys = jnp.stack([jax.random.key(0), jax.random.key(1)])
  a, b = sw.init(keys), ranked.init(keys)
  for ids in ROUNDS:                                 # three rounds, other trip counts
    a, ma = sw.run_round(a, np.array(ids), keys)
    b, mb = ranked.run_round(b, np.array(ids), keys)
  assert sw.packed_fn()._cache_size() == 1
  chex.assert_trees_all_close(a, b, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(ma["loss"], mb["loss"], rtol=1e-5)


def test_default_packing():
  # jobs unless client_chunk is set or a per-run extra (e.g. a pool) is over 8 MB a run:
  # a job gathers its run's data leaves, so a big per-run leaf would be copied per job.
  x, y, _ = helpers.tiny_data(SIZES)
  parts = [_parts(0), _parts(1)]
  cfg = fl.EngineConfig(batch_size=4)
  small = lambda p: {"c": np.zeros((len(p), 3), np.float32)}
  big = lambda p: {"c": np.zeros((len(p), (8 << 20) // (4 * len(p)) + 1), np.float32)}
  assert sweep.Sweep(_alg(), cfg, x, y, parts, extra=small).packing == "jobs"
  assert sweep.Sweep(_alg(), cfg, x, y, parts, extra=big).packing == "runs"
  assert sweep.Sweep(_alg(), cfg, x, y, parts, extra=big, packing="jobs").packing == "jobs"
  chunked = dataclasses.replace(cfg, client_chunk=2)
  assert sweep.Sweep(_alg(), chunked, x, y, parts).packing == "runs"
