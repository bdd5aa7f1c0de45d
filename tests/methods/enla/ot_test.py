"""Sinkhorn plans vs numpy references; stop-gradient gradient == Danskin gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from jaxlab.core import errors
from jaxlab.methods.enla import ot


def _np_cos(x, y):
  x = x / np.linalg.norm(x, axis=-1, keepdims=True)
  y = y / np.linalg.norm(y, axis=-1, keepdims=True)
  return x @ y.T


def _np_log_sinkhorn(cost, eps, iters):
  m, n = cost.shape
  f, g = np.zeros(m), np.zeros(n)
  for _ in range(iters):
    g = -eps * logsumexp((f[:, None] - cost) / eps - np.log(m), axis=0)
    f = -eps * logsumexp((g[None, :] - cost) / eps - np.log(n), axis=1)
  return np.exp((f[:, None] + g[None, :] - cost) / eps - np.log(m) - np.log(n))


def _np_plot_sinkhorn(cost, eps, iters):
  """PLOT's kernel-mode loop (r then c, from ones), fixed iterations."""
  m, n = cost.shape
  k = np.exp(-cost / eps)
  r, c = np.ones(m), np.ones(n)
  for _ in range(iters):
    r = (1 / m) / (k @ c)
    c = (1 / n) / (k.T @ r)
  return r[:, None] * k * c[None, :]


def _sets(m=7, n=4, d=6, seed=0):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(m, d)), rng.normal(size=(n, d))


@pytest.mark.parametrize("solver", ["ott", "jax"])
def test_plan_matches_numpy_log_sinkhorn(solver):
  x, y = _sets()
  cost = 1 - _np_cos(x, y)
  ref = _np_log_sinkhorn(cost, 0.1, 100)
  plan = np.asarray(ot.transport_plan(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32),
                                      ot.OTConfig(solver=solver)))
  np.testing.assert_allclose(plan, ref, atol=1e-6)
  np.testing.assert_allclose(plan, _np_plot_sinkhorn(cost, 0.1, 100), atol=1e-6)
  np.testing.assert_allclose(plan.sum(1), np.full(7, 1 / 7), atol=1e-5)
  np.testing.assert_allclose(plan.sum(0), np.full(4, 1 / 4), atol=1e-5)


def test_stopgrad_gradient_is_danskin():
  x, y = _sets(seed=1)
  x32, y32 = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
  cfg = ot.OTConfig()
  grad = np.asarray(jax.grad(ot.ot_score)(x32, y32, cfg))
  # Danskin: d/dx sum_ij T*_ij cos(x_i, y_j) with T* frozen; cos gradient by hand in numpy.
  plan = _np_log_sinkhorn(1 - _np_cos(x, y), 0.1, 100)
  norm = np.linalg.norm(x, axis=1, keepdims=True)
  xh, yh = x / norm, y / np.linalg.norm(y, axis=1, keepdims=True)
  v = plan @ yh
  danskin = (v - np.sum(v * xh, axis=1, keepdims=True) * xh) / norm
  np.testing.assert_allclose(grad, danskin, rtol=1e-4, atol=1e-6)
  # ...and equals minus the gradient of ott's reg_ot_cost with frozen potentials.
  from ott.geometry import costs, pointcloud
  from ott.problems.linear import linear_problem
  from ott.solvers.linear import sinkhorn

  def reg_cost(x):
    geom = pointcloud.PointCloud(x, y32, cost_fn=costs.Cosine(), epsilon=0.1)
    solver = sinkhorn.Sinkhorn(min_iterations=100, max_iterations=100, implicit_diff=None,
                               use_danskin=True)
    return solver(linear_problem.LinearProblem(geom)).reg_ot_cost

  np.testing.assert_allclose(grad, -np.asarray(jax.grad(reg_cost)(x32)), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("mode", ["stopgrad", "unrolled", "uniform"])
def test_gradients_finite_and_vmap_shapes(mode):
  k1, k2 = jax.random.split(jax.random.key(0))
  img = jax.random.normal(k1, (3, 5, 8))
  txt = jax.random.normal(k2, (4, 2, 8))
  cfg = ot.OTConfig(grad_mode=mode, iterations=20)
  logits = jax.jit(ot.ot_logits, static_argnums=2)(img, txt, cfg)
  assert logits.shape == (3, 4)
  direct = ot.ot_score(img[1], txt[2], cfg)
  np.testing.assert_allclose(logits[1, 2], direct, atol=1e-6)
  g = jax.grad(lambda i: ot.ot_distance(i, txt[:3], cfg).sum())(img)
  assert np.isfinite(np.asarray(g)).all() and np.abs(np.asarray(g)).max() > 0


def test_unrolled_differs_from_stopgrad_and_uniform_is_uniform():
  x, y = (jnp.asarray(a, jnp.float32) for a in _sets(seed=2))
  g_s = jax.grad(ot.ot_score)(x, y, ot.OTConfig(grad_mode="stopgrad"))
  g_u = jax.grad(ot.ot_score)(x, y, ot.OTConfig(grad_mode="unrolled"))
  assert np.abs(np.asarray(g_s - g_u)).max() > 1e-4
  plan = ot.transport_plan(x, y, ot.OTConfig(grad_mode="uniform"))
  np.testing.assert_allclose(plan, np.full((7, 4), 1 / 28), atol=1e-7)


def test_implicit_refused_in_float32_and_bad_config():
  x, y = (jnp.asarray(a, jnp.float32) for a in _sets())
  with pytest.raises(errors.ConfigError):
    ot.transport_plan(x, y, ot.OTConfig(grad_mode="implicit"))
  with pytest.raises(errors.ConfigError):
    ot.OTConfig(grad_mode="bogus")
