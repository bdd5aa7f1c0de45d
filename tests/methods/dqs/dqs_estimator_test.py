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


def test_mse_near_cramer_rao_bound_at_n4_from_both_sides():
  # The S shots at theta* are the only ones that carry information on theta*,
  # so MSE >= 1/(F_Q S) = 1/(N^2 S) up to Monte-Carlo noise (3000 reps: ~3 %)
  # and small bias. An estimator 30 % below the bound (ratio 0.7) must fail.
  n, s = 4, 10_000
  cfg = estimator.EstimatorConfig(reps=3000)
  out = estimator.mse_vs_shots(0, E.ghz_state(n), "Z", n, [s], cfg)
  assert out["qfi"] == pytest.approx(n**2, rel=1e-4) and out["weight"] == 1.0
  assert out["crb"][0] == pytest.approx(1 / (n**2 * s), rel=1e-4)
  ratio = out["mse"][0] / out["crb"][0]
  assert 0.85 < ratio < 1.45, ratio
  assert out["mse"][0] < out["sql"][0]


def test_total_shot_budget_counts_calibration():
  # One estimate spends S shots at each of the 2N+1 nodes and S at theta*.
  n, shots = 4, [100, 1000]
  out = estimator.mse_vs_shots(1, E.ghz_state(n), "Z", n, shots,
                               estimator.EstimatorConfig(reps=200))
  assert out["shots_total"] == [10 * 100, 10 * 1000]
  for m, s, hl_total in zip(out["mse"], shots, out["heisenberg_total"]):
    np.testing.assert_allclose(m / hl_total, m * n**2 * (2 * n + 2) * s, rtol=1e-12)


def test_postselection_weights_the_bound_and_the_shots():
  # With heralding probability P only ~P S shots arrive: the MSE grows ~1/P and
  # stays near the weighted bound 1/(P F_Q S). A heralded-only estimator
  # (ignoring the failures) would sit at ratio ~P against this bound and fail.
  n, s, p = 4, 10_000, 0.25
  psi = E.ghz_state(n)
  cfg = estimator.EstimatorConfig(reps=3000, postselect=True)
  weighted = estimator.mse_vs_shots(0, psi, "Z", n, [s], cfg, success_prob=p)
  assert weighted["weight"] == p
  assert weighted["crb"][0] == pytest.approx(1 / (p * n**2 * s), rel=1e-4)
  assert 0.85 < weighted["mse"][0] / weighted["crb"][0] < 1.45
  plain = estimator.mse_vs_shots(0, psi, "Z", n, [s], estimator.EstimatorConfig(reps=3000),
                                 success_prob=p)  # postselect off: P is ignored
  assert plain["weight"] == 1.0
  assert 3.0 < weighted["mse"][0] / plain["mse"][0] < 5.3
  with pytest.raises(ValueError, match="success_prob"):
    estimator.mse_vs_shots(0, psi, "Z", n, [s], cfg, success_prob=0.0)
