"""The host-stepped engine (one client per device) equals the other engines."""

import chex
import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from jaxlab import federated as fl
from jaxlab.core.errors import ConfigError
import fed_helpers as helpers

ALGS = ["fedavg", "fedprox", "scaffold", "fednova"]
IDS = [np.array([0, 1, 2, 3]), np.array([2, 0]), np.array([3, 1, 2])]


def _rounds(eng, runner, ids_list=IDS):
  sim = eng.init(jax.random.key(0))
  key = jax.random.key(1)
  ms = []
  for ids in ids_list:
    sim, m = runner(sim, ids, key)
    ms.append(m)
  return sim, ms


def _stepped(eng):
  return lambda s, i, k: fl.stepped.run_round(eng, s, i, k)


def _copy(sim):
  return jax.tree.map(lambda a: jax.numpy.array(a, copy=True), sim)


@pytest.mark.parametrize("name", ALGS)
def test_stepped_equals_sequential(name):
  """Each round starts both engines from the same state (the tiny BatchNorm net
  amplifies any f32 rounding ~150x per round, so drifting trajectories would need
  loose tolerances); every round must agree to f32 rounding."""
  eng = helpers.make(name, persist_opt=name == "scaffold")
  sim = eng.init(jax.random.key(0))
  key = jax.random.key(1)
  for ids in IDS:
    a, m_a = fl.stepped.run_round(eng, _copy(sim), ids, key)
    sim, m_b = fl.sequential.run_round(eng, sim, ids, key)
    chex.assert_trees_all_close(a.server, sim.server, rtol=1e-5, atol=1e-6)
    # SCAFFOLD's c_k = ... + (w_g - y_k)/(K_k·lr) scales rounding by 1/(K_k·lr).
    chex.assert_trees_all_close(a.clients, sim.clients, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(m_a["loss"], m_b["loss"], rtol=1e-5)
    assert int(m_a["real_steps"]) == int(m_b["real_steps"])
  assert int(sim.server.round) == len(IDS)


def test_stepped_on_8_devices_equals_one_device_and_vmap():
  assert len(jax.devices()) == 8
  plain = helpers.make("scaffold")
  mesh = fl.clients_mesh()
  sharded = helpers.make("scaffold", mesh=mesh, client_table="replicated")
  replicated = NamedSharding(mesh, PartitionSpec())
  sim = plain.init(jax.random.key(0))
  key = jax.random.key(1)
  for ids in IDS:
    a, _ = fl.stepped.run_round(plain, _copy(sim), ids, key)
    b, _ = fl.stepped.run_round(sharded, jax.device_put(_copy(sim), replicated), ids, key)
    sim, _ = plain.run_round(sim, ids, key)
    for other in (b, sim):
      chex.assert_trees_all_close(a.server, other.server, rtol=1e-5, atol=1e-6)
      chex.assert_trees_all_close(a.clients, other.clients, rtol=1e-5, atol=1e-5)


def test_lane_schedule_keeps_lanes_busy():
  # 2 lanes, clients (longest first) 10, 4, 3, 2: lane0 runs 10; lane1 runs 4, 3, 2 (9).
  runs, swaps = fl.stepped.schedule_lanes(np.array([10, 4, 3, 2]), 2)
  assert swaps[0] == [(0, 0), (1, 1)]
  assert runs == [4, 3, 2, 1]
  assert swaps[1:] == [[(1, 2)], [(1, 3)], [(1, -1)], [(0, -1)]]
  eng = helpers.make("fedavg", sizes=(3, 7, 12, 20), batch=4, epochs=2,
                     mesh=fl.clients_mesh(2))
  meta = fl.stepped.plan(eng, np.array([0, 3, 1]))
  # steps = 2·ceil(n/4): client 0 -> 2, client 1 -> 4, client 3 -> 10; longest first.
  np.testing.assert_array_equal(meta.id, [3, 1, 0])
  np.testing.assert_array_equal(meta.steps, [10, 4, 2])
  assert fl.stepped.waste(eng, np.array([0, 3, 1])) == pytest.approx(1 - 16 / 20)
  with pytest.raises(ConfigError, match="distinct"):
    fl.stepped.plan(eng, np.array([1, 1]))


def test_loop_runs_the_stepped_engine(tmp_path):
  eng = helpers.make("fedavg")
  cfg = fl.loop.LoopConfig(rounds=2, per_round=3, engine="stepped")
  sim_s, hist_s = fl.loop.train(eng, jax.random.key(0), cfg)
  cfg_v = fl.loop.LoopConfig(rounds=2, per_round=3, engine="vmap")
  sim_v, hist_v = fl.loop.train(eng, jax.random.key(0), cfg_v)
  chex.assert_trees_all_close(sim_s.server.params, sim_v.server.params, rtol=1e-5, atol=2e-6)
  assert [h["round"] for h in hist_s] == [1, 2]


def test_bad_engine_settings_raise_clear_errors():
  with pytest.raises(ConfigError, match="grouping"):
    fl.EngineConfig(batch_size=4, grouping="best")
  with pytest.raises(ConfigError, match="client_chunk"):
    fl.EngineConfig(batch_size=4, client_chunk=0)
  eng = helpers.make("fedavg")
  eng.alg = eng.alg._replace(reduce=None, finish=None)     # a hand-built, non-streaming alg
  sim = eng.init(jax.random.key(0))
  with pytest.raises(ConfigError, match="reduce/finish"):
    fl.stepped.run_round(eng, sim, np.array([0, 1]), jax.random.key(1))
  with pytest.raises(ConfigError, match="reduce/finish"):
    fl.engine.make_round(eng.alg, eng.sampler, (4,), chunk=2)
