"""Predictor target options (log1p, QFI/N^2, zero head) and the compute-matched search."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.core.errors import ConfigError
from jaxlab.methods.dqs import config as C
from jaxlab.methods.dqs import graphs, predictor, search, simulator
from jaxlab.methods.dqs.setups import sample_setups
from jaxlab.models import gnn


def _np_sigmoid(x):
  return 1 / (1 + np.exp(-x))


def test_target_transform_round_trip_and_formula():
  qfi = np.array([0.0, 1.0, 4.0, 15.9, 16.0], np.float32)
  cfg = predictor.PredictorConfig(target="log1p", target_scale=16.0)
  np.testing.assert_allclose(predictor.encode(cfg, qfi), np.log(1 + qfi / 16), rtol=1e-6)
  np.testing.assert_allclose(predictor.decode(cfg, predictor.encode(cfg, qfi)), qfi,
                             rtol=1e-5, atol=1e-6)
  raw = predictor.PredictorConfig()
  np.testing.assert_array_equal(predictor.encode(raw, qfi), qfi)
  out = np.array([[0.5, -1.0], [2.0, 3.0]], np.float32)
  gated = predictor.PredictorConfig(target="log1p", target_scale=16.0, zero_head=True)
  want = _np_sigmoid(out[:, 1]) * np.expm1(out[:, 0]) * 16
  np.testing.assert_allclose(predictor.decode(gated, out), want, rtol=1e-5)
  with pytest.raises(ConfigError, match="zero_head"):
    predictor.PredictorConfig(model="mlp", zero_head=True)
  with pytest.raises(ConfigError, match="target"):
    predictor.PredictorConfig(target="sqrt")


def test_zero_head_loss_equals_hand_written_bce_plus_nonzero_mse():
  rng = np.random.default_rng(0)
  out = rng.normal(size=(7, 2)).astype(np.float32)
  y = np.array([0, 0, 3, 16, 0, 2, 9], np.float32)
  mask = np.array([1, 1, 1, 1, 1, 1, 0], bool)  # last row is padding
  cfg = predictor.PredictorConfig(zero_head=True, target="log1p", target_scale=4.0)
  got = float(predictor.loss(cfg, jnp.asarray(out), jnp.asarray(y), jnp.asarray(mask)))
  p = _np_sigmoid(out[:6, 1].astype(np.float64))
  lab = (y[:6] > 0).astype(np.float64)
  bce = -np.mean(lab * np.log(p) + (1 - lab) * np.log(1 - p))
  nz = y[:6] > 0
  mse = np.mean((out[:6, 0][nz] - np.log1p(y[:6][nz] / 4.0)) ** 2)
  np.testing.assert_allclose(got, bce + mse, rtol=1e-5)


def test_zero_gate_gnn_regression_output_equals_the_reference_regressor():
  cfg = C.SimConfig(n_photons=4)
  g = graphs.build_graphs(sample_setups(np.random.default_rng(1), 5, cfg), cfg)
  graph = gnn.batch_graphs(g.nodes, g.n_node, g.edges, g.n_edge, n_graph=6)
  two = predictor.ZeroGateGNN(hidden=8, num_layers=1, heads=2)
  v2 = two.init(jax.random.key(0), graph)
  one = gnn.GraphTransformerRegressor(8, 1, 2)
  v1 = one.init(jax.random.key(0), graph)
  assert jax.tree.structure(v1["batch_stats"]) == jax.tree.structure(v2["batch_stats"])
  params = dict(v2["params"])
  head = sorted((k for k in params if k.startswith("Dense_")), key=lambda k: int(k[6:]))[-1]
  params[head] = {"kernel": params[head]["kernel"][:, :1], "bias": params[head]["bias"][:1]}
  got1 = one.apply({"params": params, "batch_stats": v2["batch_stats"]}, graph)
  got2 = two.apply(v2, graph)
  np.testing.assert_allclose(got2[:, 0], got1, rtol=1e-5, atol=1e-6)
  assert got2.shape == (6, 2) and np.all(np.asarray(got2[5]) == 0)  # padded graph


def test_matched_random_search_counts_prior_and_fixed_chunk_sequence():
  cfg = C.SimConfig(n_photons=2, max_devices=4)
  prior_q = np.array([4.0, 0.0, 1.0])
  prior_p = np.array([0.5, 1.0, 0.25])
  out = search.matched_random_search(cfg, "Z", seconds=1e9, seed=7, prior_qfi=prior_q,
                                     prior_prob=prior_p, chunk=16, max_setups=40)
  # independent re-count: the same chunk sequence simulated directly
  qs, ps = [prior_q], [prior_p]
  for i, size in enumerate((16, 16, 8)):
    s = sample_setups(np.random.default_rng([7, i]), size, cfg)
    with jax.enable_x64(True):
      res = simulator.simulate(s, cfg)
    qs.append(np.asarray(res.qfi[:, 0]))
    ps.append(np.asarray(res.prob))
  q, p = np.concatenate(qs), np.concatenate(ps)
  assert out["n_simulated"] == 43 and out["n_extra"] == 40
  assert out["n_at_hl"] == int(np.sum(q >= 4 - 1e-3)) >= 1  # the prior's HL setup counts
  np.testing.assert_allclose(out["best_pqfi_over_hl"], np.max(p * q) / 4, rtol=1e-9)
  np.testing.assert_allclose(out["mean_qfi_over_hl"], np.mean(q) / 4, rtol=1e-9)
  only_prior = search.matched_random_search(cfg, "Z", seconds=0.0, seed=7, prior_qfi=prior_q,
                                            prior_prob=prior_p)
  assert only_prior["n_extra"] == 0 and only_prior["n_at_hl"] == 1
  assert only_prior["best_pqfi_over_hl"] == pytest.approx(0.5)
