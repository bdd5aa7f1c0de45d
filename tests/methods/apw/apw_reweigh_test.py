"""APW weight/multiplier updates on a hand-built example; metrics vs fairlearn; K&C."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fairlearn import metrics as flm

from jaxlab.methods.apw import reweigh
from jaxlab.methods.apw.metrics import fairness

# Six samples; subgroups (a, y): 0,1 -> (1,1); 2 -> (1,0); 3 -> (0,1); 4,5 -> (0,0).
Y = jnp.array([1, 1, 0, 1, 0, 0])
A = jnp.array([1, 1, 1, 0, 0, 0])
P1 = jnp.array([0.9, 0.6, 0.3, 0.5, 0.2, 0.45])  # P(y=1): |p - 1/2| = .4 .1 .2 0 .3 .05
LAM = jnp.array([2.0, 1.0, 0.5, 1.0])
YHAT = jnp.array([1, 0, 0, 1, 1, 0])


def _u():
  return np.exp(-np.array([0.4, 0.1, 0.2, 0.0, 0.3, 0.05]))


def test_priority_and_weights_eo_dp():
  u = reweigh.priority(P1, 1.0, float32_proba=False)
  np.testing.assert_allclose(u, _u(), rtol=1e-6)
  e = _u()
  want = [2 * e[0] * 2 / (e[0] + e[1]), 2 * e[1] * 2 / (e[0] + e[1]), 1.0, 0.5,
          e[4] * 2 / (e[4] + e[5]), e[5] * 2 / (e[4] + e[5])]
  np.testing.assert_allclose(reweigh.sample_weights("eo", Y, A, u, LAM), want, rtol=1e-6)
  np.testing.assert_allclose(reweigh.sample_weights("dp", Y, A, u, LAM), want, rtol=1e-6)
  # Each subgroup keeps its mass times its multiplier.
  s = np.asarray(reweigh.sample_weights("eo", Y, A, u, LAM))
  assert np.isclose(s[:2].sum(), 2 * 2.0) and np.isclose(s[4:].sum(), 2 * 1.0)


def test_weights_eop_negatives_are_one():
  u = reweigh.priority(P1, 1.0, float32_proba=False)
  e = _u()
  want = [2 * e[0] * 2 / (e[0] + e[1]), 2 * e[1] * 2 / (e[0] + e[1]), 1.0, 0.5, 1.0, 1.0]
  np.testing.assert_allclose(reweigh.sample_weights("eop", Y, A, u, LAM), want, rtol=1e-6)


def test_eta_zero_is_pure_group_reweighting():
  u = reweigh.priority(P1, 0.0)
  s = reweigh.sample_weights("eo", Y, A, u, LAM)
  np.testing.assert_allclose(s, [2, 2, 1, 0.5, 1, 1], rtol=1e-6)


def test_float32_quirk_is_tiny_but_real():
  with jax.enable_x64(True):
    p = jnp.array([0.1 + 1e-9, 0.7 + 3e-10], jnp.float64)
    a = reweigh.priority(p, 2.0, float32_proba=True)
    b = reweigh.priority(p, 2.0, float32_proba=False)
    gap = float(jnp.max(jnp.abs(a - b)))
  assert 0 < gap < 1e-6


def test_multiplier_ratios_by_hand():
  r = lambda kind, alpha=0.0, q=True: np.asarray(  # noqa: E731
    reweigh.multiplier_ratio(kind, YHAT, Y, A, alpha, q))
  np.testing.assert_allclose(r("eop"), [4 / 3, 1, 2 / 3, 1], rtol=1e-6)
  np.testing.assert_allclose(r("eo"), [4 / 3, 2 / 3, 2 / 3, 4 / 3], rtol=1e-6)
  np.testing.assert_allclose(r("dp"), [1.5, 0.75, 0.75, 1.5], rtol=1e-6)
  # alpha: in numerator and denominator for eop/eo; numerator only for dp (quirk).
  np.testing.assert_allclose(r("eo", 1000.0)[0], (4 + 1000) / (3 + 1000), rtol=1e-6)
  np.testing.assert_allclose(r("dp", 1000.0)[0], (9 + 1000) / 6, rtol=1e-6)
  np.testing.assert_allclose(r("dp", 1000.0, False)[0], (9 + 1000) / (6 + 1000), rtol=1e-6)


def test_kamiran_calders_by_hand():
  w = reweigh.kamiran_calders(Y, A)
  np.testing.assert_allclose(w, [0.75, 0.75, 1.5, 1.5, 0.75, 0.75], rtol=1e-6)
  # After reweighing, y is independent of a in the weighted counts.
  w = np.asarray(w)
  for g in (0, 1):
    m = np.asarray(A) == g
    assert np.isclose((w * m * np.asarray(Y)).sum() / (w * m).sum(), 0.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_fairlearn(seed):
  rng = np.random.default_rng(seed)
  n = 257
  y, a = rng.integers(0, 2, n), rng.integers(0, 2, n)
  yhat = (rng.random(n) < 0.3 + 0.4 * a).astype(int)
  m = {k: float(v) for k, v in fairness(jnp.asarray(yhat), jnp.asarray(y), jnp.asarray(a)).items()}
  assert np.isclose(m["acc"], (yhat == y).mean())
  assert np.isclose(m["d_eop"], flm.equal_opportunity_difference(y, yhat, sensitive_features=a))
  assert np.isclose(m["d_eo"], flm.equalized_odds_difference(y, yhat, sensitive_features=a))
  assert np.isclose(m["d_dp"], flm.demographic_parity_difference(y, yhat, sensitive_features=a))
  assert np.isclose(m["d_neg"], flm.true_negative_rate_difference(y, yhat, sensitive_features=a))


def test_metrics_mask_ignores_padding():
  rng = np.random.default_rng(5)
  y, a, yh = (jnp.asarray(rng.integers(0, 2, 50)) for _ in range(3))
  pad = lambda v: jnp.concatenate([v, jnp.ones(7, v.dtype)])  # noqa: E731
  mask = jnp.concatenate([jnp.ones(50), jnp.zeros(7)])
  full, masked = fairness(yh, y, a), fairness(pad(yh), pad(y), pad(a), mask)
  for k in full:
    assert np.isclose(float(full[k]), float(masked[k]))
