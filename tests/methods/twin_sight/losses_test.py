"""Twin-sight losses on hand-built inputs and against NumPy references."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.methods.twin_sight import losses


def test_np_loss_hand_built_and_xor_quirk():
  fu = np.eye(3, dtype=np.float32)                       # G_u = I
  fs = 2.0 * np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)  # G_s: rows 0, 1 equal
  # G_u - G_s has two off-diagonal -1 entries: sum of squares = 2.
  assert float(losses.np_loss(fu, fs)) == pytest.approx(2.0 / 9.0, rel=1e-6)       # B^2 = 9
  assert float(losses.np_loss(fu, fs, xor=1.0)) == pytest.approx(2.0 / 1.0, rel=1e-6)  # 3 ^ 2 = 1
  assert float(losses.np_normaliser(64, 1.0)) == 66.0 and float(losses.np_normaliser(32, 1)) == 34.0
  assert float(losses.np_normaliser(64, 0.0)) == 4096.0
  assert float(losses.np_loss(fu, 5.0 * fu)) == 0.0      # scale-invariant: same neighbourhoods


def test_np_loss_matches_numpy_on_random_features():
  rs = np.random.RandomState(0)
  fu, fs = rs.randn(6, 5).astype(np.float32), rs.randn(6, 7).astype(np.float32)
  zu = fu / np.linalg.norm(fu, axis=1, keepdims=True)
  zs = fs / np.linalg.norm(fs, axis=1, keepdims=True)
  ref = np.sum((zu @ zu.T - zs @ zs.T) ** 2) / 36.0
  np.testing.assert_allclose(float(losses.np_loss(fu, fs)), ref, rtol=1e-5)


def _nt_xent_numpy(p1, p2, tau):
  z = np.concatenate([p1, p2]).astype(np.float64)
  z /= np.linalg.norm(z, axis=1, keepdims=True)
  n, b = len(z), len(p1)
  total = 0.0
  for i in range(n):
    pos = (i + b) % n
    den = sum(np.exp(z[i] @ z[j] / tau) for j in range(n) if j != i)
    total += -np.log(np.exp(z[i] @ z[pos] / tau) / den)
  return total / n


@pytest.mark.parametrize("tau", [0.07, 0.5])
def test_nt_xent_matches_numpy_reference(tau):
  rs = np.random.RandomState(1)
  p1, p2 = rs.randn(5, 4).astype(np.float32), rs.randn(5, 4).astype(np.float32)
  np.testing.assert_allclose(float(losses.nt_xent(p1, p2, tau)), _nt_xent_numpy(p1, p2, tau),
                             rtol=1e-4)


def test_freematch_thresholds_mask_and_update_on_hand_built_probs():
  state = {"time_p": jnp.float32(0.5), "p_model": jnp.array([0.5, 0.25, 0.25])}
  np.testing.assert_allclose(losses.freematch_thresholds(state), [0.5, 0.25, 0.25], rtol=1e-6)
  probs = jnp.array([[0.6, 0.2, 0.2],    # class 0, 0.6 >= 0.5
                     [0.4, 0.3, 0.3],    # class 0, 0.4 <  0.5
                     [0.2, 0.3, 0.5],    # class 2, 0.5 >= 0.25
                     [0.2, 0.24, 0.56]])  # class 2, 0.56 >= 0.25
  np.testing.assert_array_equal(losses.freematch_mask(state, probs), [1, 0, 1, 1])
  new = losses.freematch_update(state, probs, ema=0.9)
  maxes = np.array([0.6, 0.4, 0.5, 0.56])
  np.testing.assert_allclose(new["time_p"], 0.9 * 0.5 + 0.1 * maxes.mean(), rtol=1e-6)
  np.testing.assert_allclose(new["p_model"], 0.9 * np.array([0.5, 0.25, 0.25])
                             + 0.1 * np.asarray(probs).mean(0), rtol=1e-6)
  init = losses.freematch_init(4)
  np.testing.assert_allclose(losses.freematch_thresholds(init), [0.25] * 4)


def test_fixmatch_mask_threshold_is_inclusive():
  probs = jnp.array([[0.96, 0.04], [0.94, 0.06], [0.05, 0.95], [0.5, 0.5]])
  np.testing.assert_array_equal(losses.fixmatch_mask(probs, 0.95), [1, 0, 1, 0])


def test_pseudo_label_loss_matches_numpy():
  rs = np.random.RandomState(2)
  lw, ls = rs.randn(4, 3).astype(np.float32), rs.randn(4, 3).astype(np.float32)
  mask = np.array([1, 0, 1, 1], np.float32)
  y = lw.argmax(1)
  logp = ls - np.log(np.exp(ls).sum(1, keepdims=True))
  ref = np.mean(mask * -logp[np.arange(4), y])
  np.testing.assert_allclose(float(losses.pseudo_label_loss(lw, ls, mask)), ref, rtol=1e-5)
  out, state, m = losses.pseudo_step(lw, ls, losses.freematch_init(3), method="fixmatch",
                                     ema=0.999, threshold=0.0)
  np.testing.assert_allclose(float(out), np.mean(-logp[np.arange(4), y]), rtol=1e-5)
  assert float(m["mask_rate"]) == 1.0
