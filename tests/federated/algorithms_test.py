"""Baseline semantics: SCAFFOLD state persistence, FedNova a_k, FedProx, aggregation."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab import federated as fl
from jaxlab.core.errors import ConfigError
from jaxlab.federated import aggregate
from jaxlab.federated.algorithms.fednova import norm_factor
import fed_helpers as helpers


def test_scaffold_control_variates_persist_per_client():
  eng = helpers.make("scaffold", sizes=(3, 7, 12, 20), epochs=1)
  sim = eng.init(jax.random.key(0))
  key = jax.random.key(1)
  sim, _ = eng.run_round(sim, np.array([0, 1]), key)
  ck1 = jax.tree.map(np.array, sim.clients["alg"])
  c1 = jax.tree.map(np.array, sim.server.alg)
  # paper server rule: c = 0 + (1/K) sum_k (c_k+ - 0)
  chex.assert_trees_all_close(c1, jax.tree.map(lambda t: t[:2].sum(0) / 4, ck1), atol=1e-7)
  sim, _ = eng.run_round(sim, np.array([1, 2]), key)
  ck2 = jax.tree.map(np.array, sim.clients["alg"])
  leaf1, leaf2 = ck1["Dense_0"]["kernel"], ck2["Dense_0"]["kernel"]
  np.testing.assert_array_equal(leaf2[0], leaf1[0])         # not sampled: kept
  assert not np.allclose(leaf2[1], leaf1[1])                # sampled again: updated
  assert np.abs(leaf2[2]).sum() > 0 and np.abs(leaf2[3]).sum() == 0


def test_fednova_norm_factor():
  np.testing.assert_allclose(norm_factor(jnp.array(5), 0.0), 5.0)
  np.testing.assert_allclose(norm_factor(jnp.array(3), 0.5), (3 - 0.5 * 0.875 / 0.5) / 0.5)
  assert float(norm_factor(jnp.array(0), 0.9)) == 0.0


def test_fedprox_mu_zero_equals_fedavg_and_mu_pulls_to_global():
  ids, key = np.array([0, 2, 3]), jax.random.key(1)
  outs = {}
  for name, kw in (("fedavg", {}), ("fedprox", {"mu": 0.0}), ("fedprox", {"mu": 10.0})):
    eng = helpers.make(name, epochs=1, **kw)
    sim0 = eng.init(jax.random.key(0))
    p0 = jax.tree.map(np.array, sim0.server.params)
    sim, _ = eng.run_round(sim0, ids, key)
    moved = sum(np.abs(a - b).sum() for a, b in zip(jax.tree.leaves(sim.server.params),
                                                     jax.tree.leaves(p0)))
    outs[(name, kw.get("mu"))] = (sim.server.params, moved)
  chex.assert_trees_all_close(outs[("fedavg", None)][0], outs[("fedprox", 0.0)][0], atol=1e-7)
  assert outs[("fedprox", 10.0)][1] < 0.7 * outs[("fedavg", None)][1]


def test_weighted_mean_ignores_padding_and_uniform_mode():
  tree = {"a": jnp.array([[1.0, 2.0], [3.0, 4.0], [99.0, 99.0]])}
  raw = jnp.array([1.0, 3.0, 0.0])
  out = aggregate.weighted_mean(tree, aggregate.normalise(raw))
  np.testing.assert_allclose(out["a"], [2.5, 3.5])
  out = aggregate.weighted_mean(tree, aggregate.normalise(raw, "uniform"))
  np.testing.assert_allclose(out["a"], [2.0, 3.0])


def test_fedavg_server_is_weighted_average_of_client_models():
  eng = helpers.make("fedavg", epochs=1)
  sim = eng.init(jax.random.key(0))
  server = sim.server
  ids = np.array([1, 3])
  _, (inputs,) = eng.plan(ids)
  from jaxlab import federated as fl
  cu = fl.client_update(eng.alg, eng.sampler, 8)
  keys = fl.engine.client_keys(jax.random.key(1), server.round, jnp.asarray(inputs.id))
  rows = fl.engine.gather(sim.clients, jnp.asarray(inputs.id))
  ups, _, _ = jax.vmap(cu, in_axes=(None, 0, 0, None, 0))(server, rows,
                                                           jax.tree.map(jnp.asarray, inputs),
                                                           eng.data, keys)
  w_k = jax.tree.map(lambda g, d: g[None] - d, server.params, ups["delta"])
  p = np.array([7.0, 20.0]) / 27.0
  expect = jax.tree.map(lambda w: np.tensordot(p, np.asarray(w), 1), w_k)
  new, _ = eng.run_round(sim, ids, jax.random.key(1))
  chex.assert_trees_all_close(new.server.params, expect, atol=1e-6)


def test_bad_configs():
  with pytest.raises(ConfigError):
    helpers.make("fedavg", weight_mode="median")
  with pytest.raises(ConfigError):
    helpers.make("scaffold", server_scale="half")
  eng = helpers.make("fedavg")
  with pytest.raises(ConfigError, match="distinct"):
    eng.plan(np.array([0, 0]))
  with pytest.raises(ConfigError, match="hyper-parameter"):
    eng.init(jax.random.key(0), {"lr": 0.1})


def test_client_sgd_leaves_out_zero_momentum_and_decay():
  params = {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3)}
  grads = jax.tree.map(lambda p: 0.1 * p + 1.0, params)
  lean = fl.client_sgd(0.05)
  full = fl.client_sgd(0.05, sweepable=("momentum", "weight_decay"))
  assert set(lean.init(params).hyperparams) == {"learning_rate"}
  assert set(full.init(params).hyperparams) == {"learning_rate", "momentum", "weight_decay"}
  ua, sa = lean.update(grads, lean.init(params), params)
  ub, sb = full.update(grads, full.init(params), params)
  chex.assert_trees_all_close(ua, ub, rtol=0, atol=0)
  chex.assert_trees_all_close(ua, jax.tree.map(lambda g: -0.05 * g, grads), rtol=1e-7)
  # Non-zero values are injected and follow PyTorch: d = g + wd·p; buf = mom·buf + d.
  tx = fl.client_sgd(0.1, momentum=0.9, weight_decay=0.01)
  state = tx.init(params)
  u1, state = tx.update(grads, state, params)
  u2, _ = tx.update(grads, state, params)
  d = jax.tree.map(lambda g, p: g + 0.01 * p, grads, params)
  chex.assert_trees_all_close(u2, jax.tree.map(lambda x: -0.1 * (0.9 * x + x), d), rtol=1e-6)
  with pytest.raises(ConfigError, match="unknown"):
    fl.client_sgd(0.1, sweepable=("nesterov",))
