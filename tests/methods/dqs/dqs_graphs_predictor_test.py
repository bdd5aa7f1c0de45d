"""Graph builder (exact edge list), predictor training, padding invariance."""

import numpy as np

from jaxlab.methods.dqs import config as C
from jaxlab.methods.dqs import graphs, predictor, train
from jaxlab.methods.dqs.setups import from_tuples, sample_setups

ROW = [(6, 0, 1, 0), (7, 2, 3, 0), (1, 0, 2, 0), (3, 1, 1, 1), (2, 1, 3, 0), (5, 2, 2, 0)]


def test_graph_of_hand_built_setup():
  cfg = C.SimConfig(n_photons=4)
  g = graphs.build_graphs(from_tuples([ROW], cfg), cfg)
  assert g.n_node[0] == 8 and g.nodes.shape == (1, 19, 20)
  types = g.nodes[0, :8, :16].argmax(1)
  np.testing.assert_array_equal(types, [0, 12, 13, 1, 3, 2, 11, 15])
  paths = g.nodes[0, :8, 16:]
  np.testing.assert_array_equal(
    paths, [[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0], [0, 1, 0, 0],
            [0, 1, 0, 1], [0, 0, 1, 0], [1, 1, 1, 1]])
  und = {(0, 1), (0, 2), (1, 3), (2, 3), (1, 4), (4, 5), (2, 5), (3, 6), (3, 7), (5, 7), (6, 7)}
  want = sorted(und | {(j, i) for i, j in und})
  assert g.n_edge[0] == 22
  np.testing.assert_array_equal(g.edges[0, :22], want)


def test_split_protocols():
  ref = train.split_indices(100, "reference", n_train=60, n_val=0, n_test=50)
  assert len(np.intersect1d(ref["train"], ref["test"])) == 10  # reference overlap
  assert ref["select"] is ref["test"]
  clean = train.split_indices(100, "clean", n_train=60, n_val=20, n_test=20)
  allidx = np.concatenate(list(clean.values()))
  assert len(np.unique(allidx)) == 100


def _tiny_data(n=96):
  cfg = C.SimConfig(n_photons=4)
  s = sample_setups(np.random.default_rng(0), n, cfg)
  g = graphs.build_graphs(s, cfg)
  y = (g.n_node - 10).astype(np.float32) * 0.5  # a learnable, graph-size label
  return g, y


def test_gnn_training_reduces_loss_and_resumes(tmp_path):
  g, y = _tiny_data()
  split = train.split_indices(len(y), "clean", n_train=64, n_val=16, n_test=16)
  cfg = predictor.PredictorConfig(hidden=8, num_layers=0, heads=2, epochs=4, eval_every=2,
                                  lr=3e-3, batch_size=32, eval_batch_size=32, init_best=np.inf)
  _model, best, info = train.train(cfg, g, y, split, tmp_path / "a")
  pred = train.predict(best, cfg, g.take(split["test"]))
  assert np.all(np.isfinite(pred)) and info["n_steps"] == 8
  # Resume: a run stopped after 2 epochs then continued ends identically.
  half = predictor.PredictorConfig(**{**cfg.__dict__, "epochs": 2})
  train.train(half, g, y, split, tmp_path / "b")
  _, best_b, info_b = train.train(cfg, g, y, split, tmp_path / "b")
  pred_b = train.predict(best_b, cfg, g.take(split["test"]))
  np.testing.assert_allclose(pred_b, pred, rtol=1e-5, atol=1e-5)
  assert info_b["n_steps"] == 8


def test_mlp_baseline_trains():
  g, y = _tiny_data(64)
  split = train.split_indices(len(y), "reference", n_train=48, n_val=0, n_test=16)
  cfg = predictor.PredictorConfig(model="mlp", mlp_hidden=16, epochs=3, eval_every=1,
                                  lr=1e-2, batch_size=16, eval_batch_size=16, init_best=np.inf)
  import tempfile
  with tempfile.TemporaryDirectory() as d:
    _model, best, info = train.train(cfg, g, y, split, d)
  pred = train.predict(best, cfg, g.take(split["test"]))
  m = predictor.regression_metrics(pred, y[split["test"]])
  assert np.isfinite(m["all/mse"]) and info["best_epoch"] >= 0


def test_continuous_angles_add_angle_features():
  cfg = C.SimConfig(n_photons=4, angle_mode="continuous")
  s = sample_setups(np.random.default_rng(5), 8, cfg)
  g = graphs.build_graphs(s, cfg)
  assert g.nodes.shape[-1] == graphs.feature_size(4, True) == 22
  angled = np.isin(s.devices[..., 0], C.ANGLED)
  assert np.any(angled)
  # every waveplate node carries (cos 2 theta, sin 2 theta) of its own angle
  b, t = np.argwhere(angled)[0]
  node = 1 + cfg.n_sources + t
  np.testing.assert_allclose(g.nodes[b, node, -2:], [np.cos(2 * s.angles[b, t]), np.sin(2 * s.angles[b, t])], rtol=1e-5)
