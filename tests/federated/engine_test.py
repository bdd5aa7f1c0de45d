"""vmapped engine == sequential engine; gating; sharding; compile counts."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab import federated as fl
from jaxlab.federated import engine as eng_lib
import fed_helpers as helpers

ALGS = ["fedavg", "fedprox", "scaffold", "fednova"]


def _rounds(eng, runner, n_rounds=3, ids_list=None):
  sim = eng.init(jax.random.key(0))
  key = jax.random.key(1)
  ids_list = ids_list or [np.array([0, 1, 2, 3])] * n_rounds
  ms = []
  for ids in ids_list:
    sim, m = runner(sim, ids, key)
    ms.append(m)
  return sim, ms


@pytest.mark.parametrize("name", ALGS)
def test_vmap_equals_sequential(name):
  eng = helpers.make(name)
  sim_v, m_v = _rounds(eng, eng.run_round)
  sim_s, m_s = _rounds(eng, lambda s, i, k: fl.sequential.run_round(eng, s, i, k))
  # FedNova rescales by 1/a_k then by tau_eff, which amplifies f32 rounding of the
  # vmapped vs unbatched kernels to ~1.6e-6 after 3 rounds (relative 3e-6).
  atol = 3e-6 if name == "fednova" else 1e-6
  chex.assert_trees_all_close(sim_v, sim_s, rtol=1e-5, atol=atol)
  np.testing.assert_allclose(m_v[-1]["loss"], m_s[-1]["loss"], rtol=1e-5)
  assert int(sim_v.server.round) == 3


def test_sampled_subsets_groups_and_persistent_momentum():
  ids = [np.array([3, 0]), np.array([1, 2, 0]), np.array([2])]
  eng = helpers.make("scaffold", groups=2, persist_opt=True)
  sim_v, _ = _rounds(eng, eng.run_round, ids_list=ids)
  sim_s, _ = _rounds(eng, lambda s, i, k: fl.sequential.run_round(eng, s, i, k), ids_list=ids)
  # Two groups stream their weighted sums separately (one add more than the
  # sequential engine's single tensordot): ~1.4e-6 on a few params after 3 rounds;
  # c_k = ... + (w_g - y_k)/(K_k·lr) amplifies that by 1/(K_k·lr).
  chex.assert_trees_all_close(sim_v.server, sim_s.server, rtol=1e-5, atol=3e-6)
  chex.assert_trees_all_close(sim_v.clients, sim_s.clients, rtol=1e-4, atol=2e-5)
  chunked = helpers.make("scaffold", groups=2, persist_opt=True, chunk=1)
  sim_c, _ = _rounds(chunked, chunked.run_round, ids_list=ids)
  chex.assert_trees_all_close(sim_c.server, sim_s.server, rtol=1e-5, atol=3e-6)
  chex.assert_trees_all_close(sim_c.clients, sim_s.clients, rtol=1e-4, atol=2e-5)


def test_sharded_equals_unsharded():
  assert len(jax.devices()) == 8
  ids = [np.array([0, 1, 2]), np.array([3, 1, 0])]   # S=3 pads to 8 on the mesh
  plain = helpers.make("scaffold")
  sharded = helpers.make("scaffold", mesh=fl.clients_mesh(), client_table="replicated")
  sim_a, _ = _rounds(plain, plain.run_round, ids_list=ids)
  sim_b, _ = _rounds(sharded, sharded.run_round, ids_list=ids)
  # The cross-device all-reduce sums in another order (~1e-6 on params after 2
  # rounds); c_k = ... + (w_g - y)/(K·lr) scales that by 1/(K·lr) = 10 here.
  chex.assert_trees_all_close(sim_a.server, sim_b.server, rtol=1e-5, atol=5e-6)
  chex.assert_trees_all_close(sim_a.clients, sim_b.clients, rtol=1e-5, atol=5e-5)
  steps, inputs = sharded.plan(ids[0])
  assert len(inputs[0].id) == 8 and (inputs[0].id[3:] == 4).all()


def test_padded_step_is_a_noop():
  eng = helpers.make("scaffold")
  sim = eng.init(jax.random.key(0))
  meta = fl.ClientMeta(*map(jnp.asarray, (np.int32(1), np.int32(7), np.int32(2), np.float32(7))))
  row = jax.tree.map(lambda t: t[1], sim.clients)
  key = jax.random.key(3)
  for steps in (2, 8):   # scan length 2 (all real) vs 8 (6 padded steps)
    cu = jax.jit(fl.client_update(eng.alg, eng.sampler, steps))
    out = cu(sim.server, row, meta, eng.data, key)
    if steps == 2:
      ref = out
  chex.assert_trees_all_equal(out, ref)   # bit-identical: params, opt, BN, c_k, metrics


def test_carry_gating_bit_identical():
  eng = helpers.make("fedprox", momentum=0.9)
  sim = eng.init(jax.random.key(0))
  meta = fl.ClientMeta(*map(jnp.asarray, (np.int32(0), np.int32(3), np.int32(0), np.float32(3))))
  carry = eng.alg.client_init(sim.server, jax.tree.map(lambda t: t[0], sim.clients), meta,
                              jax.random.key(0))
  sstate = eng.sampler.prepare(eng.data, meta, jax.random.key(1))
  batch = eng.sampler.batch(eng.data, meta, sstate, jnp.int32(0))
  new, _ = eng.alg.client_step(carry, batch, jax.random.key(2))
  gated = eng_lib.tree_where(jnp.asarray(False), new, carry)
  chex.assert_trees_all_equal(gated, carry)
  assert not np.allclose(new.params["Dense_0"]["kernel"], carry.params["Dense_0"]["kernel"])


def test_one_compile_per_bucket():
  eng = helpers.make("fedavg", sizes=(3, 7, 12, 20, 40), batch=4, epochs=1)
  sim = eng.init(jax.random.key(0))
  key = jax.random.key(1)
  for ids in ([0, 1], [1, 2], [0, 2], [3, 4], [4, 0]):   # buckets 8, 8, 8, 8... and 16
    sim, _ = eng.run_round(sim, np.array(ids), key)
  assert sorted(k for k in eng._fns if k != "init") == [(8,), (16,)]
  for k, fn in eng._fns.items():
    assert fn._cache_size() == 1


def test_scatter_writes_only_sampled_rows():
  eng = helpers.make("scaffold")
  sim = eng.init(jax.random.key(0))
  sim, _ = eng.run_round(sim, np.array([1, 3]), jax.random.key(1))
  ck = sim.clients["alg"]["Dense_0"]["kernel"]
  assert np.abs(ck[1]).sum() > 0 and np.abs(ck[3]).sum() > 0
  assert np.abs(ck[0]).sum() == 0 and np.abs(ck[2]).sum() == 0


def test_determinism_two_runs():
  eng = helpers.make("fednova")
  a, _ = _rounds(eng, eng.run_round, 2)
  b, _ = _rounds(helpers.make("fednova"), helpers.make("fednova").run_round, 2)
  chex.assert_trees_all_equal(a, b)


def test_optimal_cuts_match_brute_force():
  import itertools
  rs = np.random.RandomState(0)
  for _ in range(200):
    s, g = rs.randint(1, 8), rs.randint(1, 4)
    steps = np.sort(rs.randint(1, 20, s))[::-1]
    cost = lambda sizes, t: (sizes + (-sizes % 2)) * t        # pad groups to 2 clients
    value = lambda cuts: sum((len(r) + len(r) % 2) * r[0] for r in np.split(steps, cuts)
                             if len(r))
    cuts = eng_lib.optimal_cuts(steps, g, cost)
    best = min(value(list(c)) for k in range(g) for c in itertools.combinations(range(1, s), k))
    assert len(cuts) <= g - 1 and value(cuts) == best


def test_optimal_grouping_cuts_waste_and_equals_sequential():
  sizes = (3, 4, 5, 9, 16, 17, 30, 31)
  ids = np.arange(8)
  equal = helpers.make("fedavg", sizes=sizes, groups=3, bucket="exact")
  optimal = helpers.make("fedavg", sizes=sizes, groups=3, grouping="optimal", bucket="exact")
  assert optimal.waste(ids) < equal.waste(ids)
  steps, inputs = optimal.plan(ids)
  assert sorted(np.concatenate([m.id for m in inputs]).tolist()) == list(range(8))
  sim_o, _ = _rounds(optimal, optimal.run_round, ids_list=[ids])
  sim_s, _ = _rounds(optimal, lambda s, i, k: fl.sequential.run_round(optimal, s, i, k),
                     ids_list=[ids])
  chex.assert_trees_all_close(sim_o.server, sim_s.server, rtol=1e-5, atol=2e-6)
