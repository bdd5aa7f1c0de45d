"""Estimator tests: exact interpolation, Heisenberg-scaling MSE at N = 4."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.methods.dqs import environments as E
from jaxlab.methods.dqs import estimator


@pytest.mark.parametrize("n", [1, 4, 8])
def test_interpolation_exact_on_trig_polynomials(n):
  rng = np.random.default_rng(n)
  a, b = rng.normal(size=n + 1), rng.normal(size=n + 1)
  poly = lambda t: sum(a[k] * np.cos(k * t) + b[k] * np.sin(k * t) for k in range(n + 1))
  values = jnp.asarray(poly(np.asarray(estimator.nodes(n))))
  theta = rng.uniform(-7, 7, size=50)
  theta[:3] = np.asarray(estimator.nodes(n))[:3]  # exactly on nodes too
  got = np.asarray(estimator.interpolate(values, jnp.asarray(theta), n))
  np.testing.assert_allclose(got, poly(theta), atol=1e-4)


def test_noiseless_inversion_recovers_theta():
  n = 4
  response = estimator.response_fn(E.ghz_state(n), "Z", n, "parity")
  np.testing.assert_allclose(response(jnp.asarray([0.3])), np.cos(n * 0.3), atol=1e-5)
  branch = estimator.monotone_branch(response, n)
  np.testing.assert_allclose(branch, (0, np.pi / n), atol=2e-3)
  values = response(estimator.nodes(n))
  cfg = estimator.EstimatorConfig()
  for t in (0.1, 0.4, 0.7):
    got = estimator.invert(values, response(jnp.asarray(t)), n, branch, cfg)
    np.testing.assert_allclose(got, t, atol=1e-4)


def test_mse_within_1p5x_of_heisenberg_bound_at_n4():
  n = 4
  cfg = estimator.EstimatorConfig(reps=3000)
  out = estimator.mse_vs_shots(0, E.ghz_state(n), "Z", n, [10_000], cfg)
  ratio = out["mse"][0] / out["heisenberg"][0]
  assert 0.7 < ratio < 1.5, ratio
  assert out["mse"][0] < out["sql"][0]
