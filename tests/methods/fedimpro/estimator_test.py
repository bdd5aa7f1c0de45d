"""The as-coded estimator, beta_m, the faithful (running) estimator and the error probe.

Every expected value is computed here with NumPy loops over classes, independently of
the one-hot matrix code under test.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.core.errors import ConfigError
from jaxlab.methods.fedimpro import diagnostics, estimator, running
from jaxlab.methods.fedimpro.config import FedImproConfig
from jaxlab.methods.fedimpro.estimator import FeatureStats

C, D = 4, 250


def _data(seed=0, n=12):
  rs = np.random.RandomState(seed)
  y = np.array([0, 0, 0, 1, 2, 2, 2, 2, 0, 2, 0, 2][:n], np.int32)  # class 1 once, 3 absent
  h = rs.normal(0.3, 0.2, (len(y), D)).astype(np.float32) + y[:, None]
  return h, y


def _np_as_coded(mu, sigma, h, y, dim, clip=0.1):
  """The reference's update, one class at a time: w = min(1, D / 5000)."""
  mu, sigma = mu.copy(), sigma.copy()
  w = min(1.0, dim / 5000.0)
  for c in range(mu.shape[0]):
    rows = h[y == c]
    if len(rows) == 0:
      continue
    mu[c] = mu[c] * (1 - w) + rows.mean(0) * w
    if len(rows) >= 2:  # torch's std of one row is NaN: skipped
      sigma[c] = sigma[c] * (1 - w) + rows.std(0, ddof=1) * w
  return mu, np.minimum(sigma, clip)


def test_as_coded_weight_and_update_equal_hand_computation():
  h, y = _data()
  rs = np.random.RandomState(1)
  mu0 = rs.uniform(0, 1, (C, D)).astype(np.float32)
  sd0 = np.full((C, D), 0.1, np.float32)
  assert estimator.as_coded_beta(200) == pytest.approx(0.96)   # the MLP's D = 200
  assert estimator.as_coded_beta(32768) == 0.0                  # ResNet-18 layer2: last batch
  beta = estimator.as_coded_beta(D)                              # 0.95
  new = estimator.update_stats(FeatureStats(jnp.asarray(mu0), jnp.asarray(sd0)), jnp.asarray(h),
                               jnp.asarray(y), jnp.full((C,), 1000.0), rule="as_coded", beta=beta)
  mu_ref, sd_ref = _np_as_coded(mu0, sd0, h, y, D)
  np.testing.assert_allclose(new.mu, mu_ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(new.sigma, sd_ref, rtol=1e-5, atol=1e-6)
  # The clip binds (real stds ~0.2 > 0.1): without it sigma moves towards 0.2.
  free = estimator.update_stats(FeatureStats(jnp.asarray(mu0), jnp.asarray(sd0)),
                                jnp.asarray(h), jnp.asarray(y), jnp.ones((C,)),
                                rule="as_coded", beta=beta, sigma_clip=None)
  mu_f, sd_f = _np_as_coded(mu0, sd0, h, y, D, clip=np.inf)
  np.testing.assert_allclose(free.sigma, sd_f, rtol=1e-5, atol=1e-6)
  assert float(free.sigma[0].mean()) > 0.1 + 1e-4 > float(new.sigma.max())


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_client_beta_sets_the_ema_factor(beta):
  # k identical batches: mu_k = beta^k mu_0 + (1 - beta^k) m (paper Eq. 6).
  h, y = _data()
  m0 = h[y == 0].mean(0)
  st = FeatureStats(jnp.zeros((C, D)), jnp.full((C, D), 0.05))
  for _ in range(3):
    st = estimator.update_stats(st, jnp.asarray(h), jnp.asarray(y), jnp.ones((C,)),
                                rule="as_coded", beta=jnp.float32(beta), sigma_clip=None)
  np.testing.assert_allclose(st.mu[0], (1 - beta ** 3) * m0, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(st.mu[3], 0.0)  # absent class untouched
  if beta == 0.0:  # beta_m = 0 is the last-batch rule
    lb = estimator.update_stats(FeatureStats(jnp.zeros((C, D)), jnp.full((C, D), 0.05)),
                                jnp.asarray(h), jnp.asarray(y), jnp.ones((C,)), last_batch=True,
                                sigma_clip=None)
    np.testing.assert_allclose(st.mu, lb.mu, rtol=1e-6)
    np.testing.assert_allclose(st.sigma, lb.sigma, rtol=1e-6)


def test_running_moments_equal_pooled_numpy():
  h, y = _data()
  base = FeatureStats(jnp.full((C, D), -1.0), jnp.full((C, D), 0.07))
  mom = running.init_moments(C, D)
  for sl in (slice(0, 5), slice(5, 6), slice(6, 12)):  # uneven batches
    mom = running.merge_batch(mom, jnp.asarray(h[sl]), jnp.asarray(y[sl]))
  st = running.to_stats(mom, base)
  for c in (0, 2):
    np.testing.assert_allclose(st.mu[c], h[y == c].mean(0), rtol=1e-5)
    np.testing.assert_allclose(st.sigma[c], h[y == c].std(0), rtol=1e-4)
  np.testing.assert_allclose(st.mu[1], h[y == 1][0], rtol=1e-6)  # one row: mean only
  np.testing.assert_allclose(st.sigma[1], 0.07)
  np.testing.assert_allclose(st.mu[3], -1.0)
  np.testing.assert_allclose(running.to_stats(mom, base, 0.1).sigma.max(), 0.1)


def test_estimate_error_on_hand_built_features():
  # Class 0: rows (1, 1), (3, 5): mean (2, 3), std (1, 2). Class 1: (0, 4) x 2: std 0.
  # Class 2: (6, 8), (6, 8), (6, 2): mean (6, 6), std (0, sqrt(8)). Class 3 absent.
  h = jnp.asarray([[1., 1.], [3., 5.], [0., 4.], [0., 4.], [6., 8.], [6., 8.], [6., 2.]])
  y = jnp.asarray([0, 0, 1, 1, 2, 2, 2])
  mu = jnp.asarray([[2., 3.], [0., 1.], [6., 6.], [9., 9.]])
  sigma = jnp.asarray([[0.3, 0.3], [0.1, 0.1], [0.5, 0.5], [1., 1.]])
  e = jax.device_get(diagnostics.estimate_error(FeatureStats(mu, sigma), h, y, 4))
  err = np.array([0.0, 3.0 / 4.0, 0.0])                      # ||mu - m|| / ||m||
  ratio = np.array([0.3 / 1.5, np.inf, 0.5 / (np.sqrt(8.0) / 2)])
  np.testing.assert_allclose(e["rel_mean_err"][:3], err, atol=1e-6)
  assert np.isnan(e["rel_mean_err"][3]) and np.isnan(e["sigma_ratio"][3])
  np.testing.assert_allclose(e["sigma_ratio"][[0, 2]], ratio[[0, 2]], rtol=1e-5)
  np.testing.assert_allclose(e["est_rel_mean_err"], err.mean(), rtol=1e-6)
  np.testing.assert_allclose(e["est_sigma"], (0.3 + 0.1 + 0.5) / 3, rtol=1e-6)
  np.testing.assert_allclose(e["true_std"], (1.5 + 0.0 + np.sqrt(8.0) / 2) / 3, rtol=1e-5)


def test_estimator_config_errors_and_old_flag():
  assert FedImproConfig(quirk_last_batch_estimator=True).estimator == "last_batch"
  with pytest.raises(ConfigError, match="estimator='last_batch'"):
    FedImproConfig(quirk_last_batch_estimator=True, estimator="as_coded")
  with pytest.raises(ConfigError, match="only applies to estimator='as_coded'"):
    FedImproConfig(client_beta=0.5)
  with pytest.raises(ConfigError, match=r"in \[0, 1\]"):
    FedImproConfig(estimator="as_coded", client_beta=1.5)
  with pytest.raises(ConfigError, match="estimator="):
    FedImproConfig(estimator="kalman")
  cfg = dataclasses.replace(FedImproConfig(estimator="as_coded"), client_beta=0.3)
  assert cfg.client_beta == 0.3
