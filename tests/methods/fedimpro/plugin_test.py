"""FedImpro on the federated engine: vmap == sequential, parity with FedAvg, state."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab import federated as fl
from jaxlab.federated import partition
from jaxlab.methods import fedimpro
from jaxlab.models import MLP

K, C, B = 4, 3, 4


def _setup(cfg, base="fedavg", **kw):
  rs = np.random.RandomState(0)
  sizes = [3, 7, 10, 6]  # one client with n < B
  y = np.concatenate([rs.randint(0, C, s) for s in sizes]).astype(np.int32)
  x = rs.randint(0, 255, (len(y), 4, 4), dtype=np.uint8)
  starts = np.cumsum([0] + sizes)
  parts = [np.arange(starts[k], starts[k + 1]) for k in range(K)]
  counts = partition.histogram(y, parts, C)
  data = fl.make_fed_data(x, y, parts, extra=fedimpro.class_counts(y, C)(parts))
  fi = fedimpro.make(MLP(hidden=(6, 5), num_classes=C), split_after=0,
                     sample_x=jnp.zeros((B, 4, 4, 1)), client_tx=fl.client_sgd(0.1),
                     config=cfg, num_clients=K, num_classes=C, batch_size=B,
                     local_epochs=2, base=base, **kw)
  eng = fl.Engine(fi.algorithm, fl.EngineConfig(batch_size=B, local_epochs=2), data)
  return fi, eng, counts


def _rounds(eng, run, n=2, ids=(0, 1, 3)):
  sim = eng.init(jax.random.key(0))
  key = jax.random.key(1)
  for _ in range(n):
    sim, m = run(sim, np.asarray(ids), key)
  return sim, m


@pytest.mark.parametrize("cfg", [
  fedimpro.FedImproConfig(fake_weight_max_epochs=1.0, upload_noise_std=0.01),
  fedimpro.FedImproConfig(fake_weight_max_epochs=1.0, persistent_local_estimate=True,
                          server_estimate="all_label_size", quirk_last_batch_estimator=True),
  fedimpro.FedImproConfig(fake_weight_max_epochs=1.0, estimator="running", sigma_clip=None,
                          server_estimate="selected_label_size"),
])
def test_vmapped_equals_sequential(cfg):
  _, eng, _ = _setup(cfg)
  sim_v, m_v = _rounds(eng, eng.run_round)
  sim_s, m_s = _rounds(eng, lambda s, i, k: fl.sequential.run_round(eng, s, i, k))
  chex.assert_trees_all_close(sim_v, sim_s, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(m_v["ce_fake"], m_s["ce_fake"], rtol=1e-5)
  assert float(m_v["ce_fake"]) > 0 and float(m_v["w_fake"]) > 0


def test_no_fakes_is_fedavg():
  fi, eng, _ = _setup(fedimpro.FedImproConfig(fake_ratio=0.0))
  sim_i, _ = _rounds(eng, eng.run_round)
  avg = fl.algorithms.fedavg(fi.model, fl.client_sgd(0.1), num_clients=K)
  eng2 = fl.Engine(avg, eng.config, eng.data)
  sim_a, _ = _rounds(eng2, eng2.run_round)
  chex.assert_trees_all_close(sim_i.server.params, sim_a.server.params, rtol=1e-6, atol=1e-7)


def test_server_state_tracks_uploads_and_rows():
  cfg = fedimpro.FedImproConfig(persistent_local_estimate=True, sigma_clip=None)
  _, eng, counts = _setup(cfg)
  sim0 = eng.init(jax.random.key(0))
  mu0 = np.asarray(sim0.server.ext["stats"].mu)
  sim, m = _rounds(eng, eng.run_round, n=1)
  ext, rows = sim.server.ext, sim.clients["ext"]
  np.testing.assert_array_equal(ext["counts"], counts)
  np.testing.assert_array_equal(rows["seen"], [True, True, False, True])
  # Uniform server mean of the sampled rows (no noise, beta 0).
  sel = np.asarray(rows["stats"].mu)[[0, 1, 3]]
  np.testing.assert_allclose(ext["stats"].mu, sel.mean(0), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(rows["stats"].mu[2], mu0)  # never sampled: initial row
  # A class a client does not hold keeps the global value in its upload.
  for k in (0, 1, 3):
    for c in np.flatnonzero(counts[k] == 0):
      np.testing.assert_allclose(rows["stats"].mu[k, c], mu0[c])
  assert np.isfinite(float(m["fedimpro_sigma"]))


def test_runs_on_scaffold():
  # FedProx and FedNova use the same plug-in path (base.build); SCAFFOLD also corrects
  # the gradient and keeps persistent c_k rows beside FedImpro's.
  cfg = fedimpro.FedImproConfig(fake_weight_max_epochs=1.0)
  _, eng, _ = _setup(cfg, base="scaffold")
  sim, m = _rounds(eng, eng.run_round, n=1)
  assert np.isfinite(float(m["loss"])) and float(m["ce_fake"]) > 0
  chex.assert_tree_all_finite(sim.server.params)


def test_public_sweep_equals_single_runs():
  # Two runs with their own partitions (hence class counts) and upload noise, as one
  # program on jaxlab.federated.sweep, equal two separate engine runs.
  cfg = fedimpro.FedImproConfig(fake_weight_max_epochs=1.0)
  fi, eng, _ = _setup(cfg)
  x, y = np.asarray(eng.data.x), np.asarray(eng.data.y)
  parts0 = [np.asarray(eng.data.idx[k, : int(eng.data.n[k])]) for k in range(K)]
  parts1 = [p[::-1].copy() for p in parts0[1:]] + [parts0[0]]  # another partition
  sw = fl.sweep.Sweep(fi.algorithm, eng.config, x, y, [parts0, parts1],
                      extra=fedimpro.class_counts(y, C))
  keys = jnp.stack([jax.random.key(0), jax.random.key(5)])
  sims = sw.init(keys, {"upload_noise_std": [0.0, 0.1]})
  for ids in ([0, 1, 3], [2, 1, 0]):
    sims, _ = sw.run_round(sims, np.array(ids), keys)
  for r, (parts, key, sigma) in enumerate(((parts0, 0, 0.0), (parts1, 5, 0.1))):
    e = fl.Engine(fi.algorithm, eng.config,
                  fl.make_fed_data(x, y, parts, extra=fedimpro.class_counts(y, C)(parts)))
    sim = e.init(jax.random.key(key), {"upload_noise_std": sigma})
    for ids in ([0, 1, 3], [2, 1, 0]):
      sim, _ = e.run_round(sim, np.array(ids), jax.random.key(key))
    row = jax.tree.map(lambda a, r=r: a[r], sims)
    chex.assert_trees_all_close(row, sim, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(sims.server.ext["counts"][1],
                                partition.histogram(y, parts1, C))
  assert not np.allclose(sims.server.ext["counts"][0], sims.server.ext["counts"][1])


def test_missing_class_counts_is_a_clear_error():
  fi, eng, _ = _setup(fedimpro.FedImproConfig())
  data = eng.data._replace(extra={})
  with pytest.raises(fedimpro.config.ConfigError, match="class_counts"):
    fl.Engine(fi.algorithm, eng.config, data).init(jax.random.key(0))


def test_as_coded_client_beta_is_a_dynamic_hparam():
  # beta_m travels in ServerState.hparams (sweepable like a learning rate): beta 1 never
  # moves the estimate (w = 0; the init sigma 0.1 is already at the clip), beta 0.5
  # moves it, with the same compiled round. The default is 1 - D / 5000 (D = 6 here).
  cfg = fedimpro.FedImproConfig(fake_weight_max_epochs=1.0, estimator="as_coded")
  _, eng, _ = _setup(cfg)
  sim = eng.init(jax.random.key(0))
  np.testing.assert_allclose(sim.server.hparams["client_beta"], 1.0 - 6 / 5000.0, rtol=1e-6)
  moved = []
  for beta in (1.0, 0.5):
    sim = eng.init(jax.random.key(0), {"client_beta": beta})
    mu0 = np.asarray(sim.server.ext["stats"].mu)
    sim, _ = eng.run_round(sim, np.array([0, 1, 3]), jax.random.key(1))
    moved.append(np.abs(np.asarray(sim.server.ext["stats"].mu) - mu0).max())
  assert moved[0] < 1e-6 < 1e-3 < moved[1]
