"""Sinkhorn plans vs numpy references (PLOT's loop in float64); stopgrad gradient == Danskin's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from jaxlab.core import errors
from jaxlab.methods.enla import ot, sinkhorn


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


@pytest.mark.parametrize("solver", ["batched", "ott", "jax"])
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


# ---------------------------------------------------------------------------------------------
# Batched solver (solver="batched", the default) against an independent NumPy float64 port of
# PLOT's loop: all B*K problems at once, batch-wide early stop on mean |r - r_prev|.


def _np_plot_batched(img, txt, eps, max_iter, thresh):
  """PLOT's Sinkhorn (plot-coop trainers/plot.py), float64: plans [B, K, M, N] and iterations.

  ``thresh=None`` runs exactly ``max_iter`` iterations (no early stop).
  """
  b, m, _ = img.shape
  k, n, _ = txt.shape
  i = img / np.linalg.norm(img, axis=-1, keepdims=True)
  t = txt / np.linalg.norm(txt, axis=-1, keepdims=True)
  sim = np.einsum("bmd,knd->bkmn", i, t).reshape(b * k, m, n)
  kk = np.exp(-(1.0 - sim) / eps)
  u, v = np.full((b * k, m), 1.0 / m), np.full((b * k, n), 1.0 / n)
  r, c = np.ones_like(u), np.ones_like(v)
  errs, it = [], 0
  for it in range(1, max_iter + 1):
    r0 = r
    r = u / np.matmul(kk, c[:, :, None])[:, :, 0]
    c = v / np.matmul(np.transpose(kk, (0, 2, 1)), r[:, :, None])[:, :, 0]
    errs.append(np.abs(r - r0).mean())
    if thresh is not None and errs[-1] < thresh:
      break
  plan = r[:, :, None] * kk * c[:, None, :]
  return plan.reshape(b, k, m, n), it, errs


def _np_logits_and_grads(img, txt, plan):
  """sum_mn T cos and Danskin's gradients (T frozen), by hand: [B, K], d/d img, d/d txt."""
  nx = np.linalg.norm(img, axis=-1, keepdims=True)
  ny = np.linalg.norm(txt, axis=-1, keepdims=True)
  xh, yh = img / nx, txt / ny
  logits = np.einsum("bkmn,bmd,knd->bk", plan, xh, yh)
  v = np.einsum("bkmn,knd->bmd", plan, yh)        # d logits.sum / d xh
  w = np.einsum("bkmn,bmd->knd", plan, xh)        # d logits.sum / d yh
  gx = (v - np.sum(v * xh, -1, keepdims=True) * xh) / nx
  gy = (w - np.sum(w * yh, -1, keepdims=True) * yh) / ny
  return logits, gx, gy


def _batch(b=3, k=4, m=7, n=3, d=8, seed=3):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(b, m, d)), rng.normal(size=(k, n, d))


@pytest.mark.parametrize("stop,domain", [("plot", "auto"), ("plot", "log"), ("fixed", "auto"),
                                         ("fixed", "log")])
def test_batched_plans_match_numpy_plot_loop(stop, domain):
  img, txt = _batch()
  ref, ref_it, errs = _np_plot_batched(img, txt, 0.1, 100, 1e-2 if stop == "plot" else None)
  if stop == "plot":  # PLOT's rule stops early here (33 iterations), not on a knife edge
    assert 3 <= ref_it < 100 and errs[-1] < 0.95e-2 and min(errs[:-1]) > 1.05e-2
  cfg = ot.OTConfig(stop=stop, domain=domain)
  plan, it = jax.jit(ot.ot_plans, static_argnums=2)(jnp.asarray(img, jnp.float32),
                                                    jnp.asarray(txt, jnp.float32), cfg)
  assert int(it) == ref_it
  np.testing.assert_allclose(np.asarray(plan), ref, atol=1e-6)
  # c is updated last, so the column marginals are exact even after an early stop
  np.testing.assert_allclose(np.asarray(plan).sum(-2), np.full((3, 4, 3), 1 / 3), atol=1e-6)


def test_batched_logits_and_gradients_match_numpy_danskin():
  img, txt = _batch(seed=4)
  for stop in ("plot", "fixed"):
    ref_plan, _, _ = _np_plot_batched(img, txt, 0.1, 100, 1e-2 if stop == "plot" else None)
    ref, gx, gy = _np_logits_and_grads(img, txt, ref_plan)
    cfg = ot.OTConfig(stop=stop)
    f = jax.jit(jax.value_and_grad(lambda i, t: ot.ot_logits(i, t, cfg).sum(), (0, 1)))
    val, (dx, dy) = f(jnp.asarray(img, jnp.float32), jnp.asarray(txt, jnp.float32))
    logits = ot.ot_logits(jnp.asarray(img, jnp.float32), jnp.asarray(txt, jnp.float32), cfg)
    np.testing.assert_allclose(np.asarray(logits), ref, atol=1e-6)
    np.testing.assert_allclose(float(val), ref.sum(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(dx), gx, atol=1e-6)
    np.testing.assert_allclose(np.asarray(dy), gy, atol=1e-6)


def test_small_epsilon_runs_in_log_domain_and_matches_float64_plot_loop():
  img, txt = _batch(seed=5)
  assert sinkhorn.pick_domain("auto", 0.01, 2.0, jnp.float32) == "log"
  assert sinkhorn.pick_domain("auto", 0.1, 2.0, jnp.float32) == "kernel"
  ref, _, _ = _np_plot_batched(img, txt, 0.01, 60, None)   # exp(-200) is fine in float64
  plan, _ = ot.ot_plans(jnp.asarray(img, jnp.float32), jnp.asarray(txt, jnp.float32),
                        ot.OTConfig(epsilon=0.01, iterations=60))
  # cost / eps amplifies float32 rounding of the cosines 100x: 5e-6 rather than 1e-6 here
  np.testing.assert_allclose(np.asarray(plan), ref, atol=5e-6)
  forced, _ = ot.ot_plans(jnp.asarray(img, jnp.float32), jnp.asarray(txt, jnp.float32),
                          ot.OTConfig(epsilon=0.01, iterations=60, domain="kernel"))
  assert not np.isfinite(np.asarray(forced)).all()  # why "auto" avoids kernel mode here


def _np_plot_total(img, txt, eps, iters):
  """sum over all pairs of sum_mn T cos, T from the float64 PLOT loop (for finite differences)."""
  plan, _, _ = _np_plot_batched(img, txt, eps, iters, None)
  return _np_logits_and_grads(img, txt, plan)[0].sum()


def test_batched_unrolled_gradient_matches_float64_finite_differences():
  img, txt = _batch(b=2, k=3, m=5, seed=6)
  rng = np.random.default_rng(7)
  vi, vt = rng.normal(size=img.shape), rng.normal(size=txt.shape)
  h = 1e-5
  fd = (_np_plot_total(img + h * vi, txt + h * vt, 0.1, 30)
        - _np_plot_total(img - h * vi, txt - h * vt, 0.1, 30)) / (2 * h)
  with jax.enable_x64(True):
    cfg = ot.OTConfig(grad_mode="unrolled", iterations=30)
    gi, gt = jax.jit(jax.grad(lambda i, t: ot.ot_logits(i, t, cfg).sum(), (0, 1)))(
      jnp.asarray(img, jnp.float64), jnp.asarray(txt, jnp.float64))
    directional = float(jnp.sum(gi * vi) + jnp.sum(gt * vt))
  np.testing.assert_allclose(directional, fd, rtol=1e-6)


def test_batched_uniform_and_distance_match_references():
  img, txt = (jnp.asarray(a, jnp.float32) for a in _batch(seed=6))
  fast, slow = ot.OTConfig(grad_mode="uniform"), ot.OTConfig(grad_mode="uniform", solver="jax")
  for fn in (lambda c: lambda i, t: ot.ot_logits(i, t, c).sum(),
             lambda c: lambda i, t: ot.ot_distance(i, t[:3], c).sum()):
    a = jax.jit(jax.value_and_grad(fn(fast), (0, 1)))(img, txt)
    b = jax.jit(jax.value_and_grad(fn(slow), (0, 1)))(img, txt)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=2e-6)
  # paired distance == 1 - diagonal of the numpy B x B logits
  ref_plan, _, _ = _np_plot_batched(np.asarray(img), np.asarray(txt[:3]), 0.1, 100, None)
  ref = 1 - _np_logits_and_grads(np.asarray(img), np.asarray(txt[:3]), ref_plan)[0].diagonal()
  np.testing.assert_allclose(np.asarray(ot.ot_distance(img, txt[:3], ot.OTConfig())), ref,
                             atol=1e-6)


def test_ott_options_pass_through():
  x, y = _sets()
  cost = 1 - _np_cos(x, y)
  cfg = ot.OTConfig(solver="ott", ott_options=(("lse_mode", False), ("inner_iterations", 100)))
  plan = ot.transport_plan(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32), cfg)
  np.testing.assert_allclose(np.asarray(plan), _np_plot_sinkhorn(cost, 0.1, 100), atol=1e-6)


@pytest.mark.parametrize("kw", [dict(stop="plot", solver="ott"), dict(stop="plot", solver="jax"),
                                dict(stop="plot", grad_mode="unrolled"), dict(domain="exp"),
                                dict(stop="early"), dict(grad_mode="implicit"),
                                dict(solver="ott", ott_options=(("tau_a", 0.9),)),
                                dict(ott_options=(("lse_mode", False),)), dict(unroll=0)])
def test_bad_batched_configs_are_refused(kw):
  with pytest.raises(errors.ConfigError):
    ot.OTConfig(**kw)


def test_vmapped_seeds_keep_their_own_early_stop():
  """train.py vmaps seeds: each seed's batch must stop by its own PLOT rule, as if run alone."""
  (i0, t0), (i1, t1) = _batch(seed=3), _batch(seed=4)   # two seeds, other data
  imgs = jnp.asarray(np.stack([i0, i1]), jnp.float32)
  txts = jnp.asarray(np.stack([t0, t1]), jnp.float32)
  cfg = ot.OTConfig(stop="plot")
  f = jax.value_and_grad(lambda i, t: ot.ot_logits(i, t, cfg).sum(), (0, 1))
  both = jax.jit(jax.vmap(f))(imgs, txts)
  its = [int(ot.ot_plans(imgs[s], txts[s], cfg)[1]) for s in range(2)]
  assert its[0] != its[1]  # the seeds really stop at different iterations
  for s in range(2):
    alone = jax.jit(f)(imgs[s], txts[s])
    for x, y in zip(jax.tree.leaves(both), jax.tree.leaves(alone)):
      np.testing.assert_allclose(np.asarray(x)[s], np.asarray(y), atol=1e-6)
