"""Estimators, server aggregation, noise, fake sampling and the weight schedule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.core.errors import ConfigError
from jaxlab.methods.fedimpro import estimator, fake, server
from jaxlab.methods.fedimpro.config import FedImproConfig
from jaxlab.methods.fedimpro.estimator import FeatureStats


def _batch():
  # 7 rows, D = 3, C = 4: class 0 has 3 rows, class 1 has 1 row, class 2 has 3 rows,
  # class 3 is absent.
  h = np.array([[1., 2., 3.], [3., 2., 1.], [2., 5., 2.], [9., 9., 9.],
                [0., 0., 1.], [0., 4., 1.], [3., 2., 1.]], np.float32)
  y = np.array([0, 0, 0, 1, 2, 2, 2], np.int32)
  return h, y


def test_class_moments_match_numpy_with_mask():
  h, y = _batch()
  mask = np.array([1, 1, 1, 1, 1, 1, 0], bool)
  count, mean, std = estimator.class_moments(jnp.asarray(h), jnp.asarray(y), 4, jnp.asarray(mask))
  np.testing.assert_array_equal(count, [3, 1, 2, 0])
  np.testing.assert_allclose(mean[0], h[:3].mean(0), rtol=1e-6)
  np.testing.assert_allclose(std[0], h[:3].std(0, ddof=1), rtol=1e-5)
  np.testing.assert_allclose(mean[2], h[4:6].mean(0), rtol=1e-6)
  np.testing.assert_allclose(std[2], h[4:6].std(0, ddof=1), rtol=1e-5)
  np.testing.assert_allclose(std[1], 0.0)  # n_c = 1: undefined, reported as 0
  np.testing.assert_allclose(mean[3], 0.0)


def test_count_ema_by_hand():
  h, y = _batch()
  prev = FeatureStats(jnp.full((4, 3), 0.5), jnp.full((4, 3), 0.05))
  total = jnp.asarray([6.0, 4.0, 3.0, 5.0])  # P_c
  new = estimator.update_stats(prev, jnp.asarray(h), jnp.asarray(y), total, sigma_clip=None)
  w0, w1 = 3 / 6, 1 / 4
  np.testing.assert_allclose(new.mu[0], (1 - w0) * 0.5 + w0 * h[:3].mean(0), rtol=1e-6)
  np.testing.assert_allclose(new.sigma[0], (1 - w0) * 0.05 + w0 * h[:3].std(0, ddof=1), rtol=1e-5)
  np.testing.assert_allclose(new.mu[1], (1 - w1) * 0.5 + w1 * h[3], rtol=1e-6)
  np.testing.assert_allclose(new.sigma[1], 0.05)  # one row: sigma untouched
  np.testing.assert_allclose(new.mu[2], h[4:].mean(0), rtol=1e-6)  # w = min(1, 3/3)
  np.testing.assert_allclose(new.mu[3], 0.5)  # absent class untouched
  np.testing.assert_allclose(new.sigma[3], 0.05)


def test_last_batch_estimator_with_sigma_clip():
  h, y = _batch()
  prev = FeatureStats(jnp.full((4, 3), 0.5), jnp.full((4, 3), 0.3))
  total = jnp.full((4,), 6000.0)
  new = estimator.update_stats(prev, jnp.asarray(h), jnp.asarray(y), total,
                               last_batch=True, sigma_clip=0.1)
  np.testing.assert_allclose(new.mu[0], h[:3].mean(0), rtol=1e-6)
  np.testing.assert_allclose(new.mu[1], h[3], rtol=1e-6)
  np.testing.assert_allclose(new.sigma[0], np.minimum(h[:3].std(0, ddof=1), 0.1), rtol=1e-6)
  np.testing.assert_allclose(new.sigma[1], 0.1)  # kept 0.3, then clipped
  np.testing.assert_allclose(new.mu[3], 0.5)
  # Fixed sigma mode: sigma never moves (except the clip).
  fixed = estimator.update_stats(prev, jnp.asarray(h), jnp.asarray(y), total,
                                 last_batch=True, update_sigma=False, sigma_clip=None)
  np.testing.assert_allclose(fixed.sigma, 0.3)


def test_total_variance_equals_pooled_numpy_var():
  rng = np.random.default_rng(0)
  sizes = np.array([[5, 0, 3], [2, 7, 1], [9, 4, 0], [1, 1, 6]])  # [S, C]
  mu, sd, pools = np.zeros((4, 3, 2)), np.zeros((4, 3, 2)), [[] for _ in range(3)]
  for k in range(4):
    for c in range(3):
      x = rng.normal(c + k, 1 + k, size=(sizes[k, c], 2))
      pools[c].append(x)
      if sizes[k, c]:
        mu[k, c], sd[k, c] = x.mean(0), x.std(0)
  out = server.total_variance(jnp.asarray(mu, jnp.float32), jnp.asarray(sd, jnp.float32),
                              jnp.asarray(sizes, jnp.float32))
  for c in range(3):
    pooled = np.concatenate(pools[c])
    np.testing.assert_allclose(out.mu[c], pooled.mean(0), rtol=1e-5)
    np.testing.assert_allclose(out.sigma[c] ** 2, pooled.var(0), rtol=1e-4)


def test_label_size_mean_with_unsampled_clients_carries_previous():
  prev = FeatureStats(jnp.full((2, 1), 4.0), jnp.full((2, 1), 1.0))
  up = FeatureStats(jnp.asarray([[[0.0], [2.0]]]), jnp.asarray([[[1.0], [0.0]]]))
  counts = jnp.asarray([[3.0, 0.0]])
  out = server.label_size_mean(up, counts, prev, rest_counts=jnp.asarray([1.0, 0.0]))
  # class 0: 3 samples at N(0, 1) and 1 at N(4, 1): mean 1, var 1 + (3*1 + 9)/4 = 4.
  np.testing.assert_allclose(out.mu[0], [1.0], rtol=1e-6)
  np.testing.assert_allclose(out.sigma[0], [2.0], rtol=1e-6)
  np.testing.assert_allclose(out.mu[1], [4.0])  # nobody holds class 1: previous kept
  np.testing.assert_allclose(out.sigma[1], [1.0])


def test_uniform_mean_drops_padding_clients():
  up = FeatureStats(jnp.asarray([1.0, 3.0, 100.0])[:, None, None] * jnp.ones((3, 2, 2)),
                    jnp.asarray([0.1, 0.3, 100.0])[:, None, None] * jnp.ones((3, 2, 2)))
  prev = FeatureStats(jnp.zeros((2, 2)), jnp.zeros((2, 2)))
  out = server.uniform_mean(up, jnp.asarray([10.0, 1.0, 0.0]), prev)
  np.testing.assert_allclose(out.mu, 2.0)
  np.testing.assert_allclose(out.sigma, 0.2, rtol=1e-6)
  none = server.uniform_mean(up, jnp.zeros(3), prev)
  np.testing.assert_allclose(none.mu, 0.0)
  np.testing.assert_allclose(server.ema(prev, out, jnp.float32(0.75)).mu, 0.5)


def test_upload_noise():
  st = FeatureStats(jnp.zeros((10, 500)), jnp.ones((10, 500)))
  key = jax.random.key(0)
  same = server.add_upload_noise(st, key, jnp.float32(0.0))
  np.testing.assert_array_equal(same.mu, st.mu)
  noisy = server.add_upload_noise(st, key, jnp.float32(0.5))
  assert abs(float(jnp.std(noisy.mu)) - 0.5) < 0.02
  assert abs(float(jnp.std(noisy.sigma - 1.0)) - 0.5) < 0.02
  assert float(jnp.abs(noisy.mu - (noisy.sigma - 1.0)).max()) > 0  # independent draws


def test_balanced_labels_and_fake_sampling():
  labels = fake.balanced_labels(128, 10)
  assert labels.shape == (130,)
  np.testing.assert_array_equal(np.bincount(np.asarray(labels)), [13] * 10)
  assert FedImproConfig().num_fake(128, 10) == 130
  mu = jnp.arange(10.0)[:, None] * jnp.ones((10, 400))
  st = FeatureStats(mu, jnp.full((10, 400), 0.1))
  h = fake.sample_fake(jax.random.key(1), st, labels)
  np.testing.assert_allclose(h.mean(1), np.asarray(labels, np.float32), atol=0.03)
  np.testing.assert_allclose(h.std(1), 0.1, rtol=0.15)
  g = jax.grad(lambda m: fake.sample_fake(jax.random.key(1), FeatureStats(m, st.sigma),
                                          labels).sum())(mu)
  np.testing.assert_array_equal(g, 0.0)


def test_fake_weight_schedules():
  T = jnp.float32(500.0)
  np.testing.assert_allclose(fake.fake_weight(1000, T, "linear_unclamped"), 2.0)
  np.testing.assert_allclose(fake.fake_weight(250, T, "linear_unclamped"), 0.5)
  np.testing.assert_allclose(fake.fake_weight(1000, T, "linear_clamped"), 1.0)
  np.testing.assert_allclose(fake.fake_weight(3, T, "constant"), 1.0)
  with pytest.raises(ConfigError):
    fake.fake_weight(1, T, "cosine")
  with pytest.raises(ConfigError):
    FedImproConfig(server_estimate="median")
