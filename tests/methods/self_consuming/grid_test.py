"""The lambda x n_synthetic study: fresh noise, vmapped == hand loop, lambda decoupled, weights."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxlab.core.errors import ConfigError
from jaxlab.methods.self_consuming import Config, learners, mixture
from jaxlab.methods.self_consuming.config import DiffusionOptions, Grid
from jaxlab.methods.self_consuming.diffusion import diffusion
from jaxlab.methods.self_consuming.loops import make_learner, run_sweep
from jaxlab.methods.self_consuming.study import (PROPORTIONAL, bounded_error, phase_transition,
                                                 run_grid)

TINY_DIFF = DiffusionOptions(width=24, noise_draws=2, ode_steps=8, eval_samples=300)
DIFF = Config(learner="diffusion", grid=Grid(size=48), n_real=30, generations=3, seeds=3,
              diffusion=TINY_DIFF)


def _key(seed_cfg, s, g, stream):
  """The documented key derivation, written out: fold_in over seed, generation, stream."""
  k = jax.random.fold_in(jax.random.key(seed_cfg), s)
  return jax.random.fold_in(jax.random.fold_in(k, g), stream)


def test_fresh_training_noise_per_generation_and_seed_and_bitwise_reruns():
  # the same real set every generation and no synthetic data: under the old fixed
  # training noise every generation refit the identical model (equal TV); now each fit
  # draws its own noise, so the generations differ, and a rerun repeats them bit for bit
  cfg = dataclasses.replace(DIFF, scenario="augment_fixed_real")
  hp = {"tau": [300.0]}
  a = run_sweep(cfg, n_real=[30], n_synth=[0], hp=hp)["tv"][:, 0]      # [S, G+1]
  b = run_sweep(cfg, n_real=[30], n_synth=[0], hp=hp)["tv"][:, 0]
  np.testing.assert_array_equal(a, b)
  for s in range(cfg.seeds):
    assert len(np.unique(a[s])) == cfg.generations + 1, a[s]
  # the fit itself: same key -> identical parameters, another (seed, generation) -> other ones
  learner = diffusion(cfg.grid, 1, TINY_DIFF)
  x = mixture.sample(jax.random.key(5), cfg.mixture, 30)
  rows = learners.uniform_rows(30)
  fits = {(s, g): np.asarray(learner.fit(_key(0, s, g, 3), x, rows, {"tau": 300.0})["a"])
          for s in range(2) for g in range(3)}
  again = np.asarray(learner.fit(_key(0, 1, 2, 3), x, rows, {"tau": 300.0})["a"])
  np.testing.assert_array_equal(again, fits[(1, 2)])
  vals = list(fits.values())
  for i in range(len(vals)):
    for j in range(i + 1, len(vals)):
      assert np.abs(vals[i] - vals[j]).max() > 1e-4


def _ref_kde_density(x, w, c, grid_x):
  """Weighted Gaussian KDE by direct sums in float64, h = c n_eff^-1/5 (Kish n_eff)."""
  w = w / w.sum()
  h = c * (1.0 / np.sum(w**2)) ** -0.2
  k = np.exp(-0.5 * ((grid_x[:, None] - x[None, :]) / h) ** 2) / (np.sqrt(2 * np.pi) * h)
  return k @ w, h


def _ref_run(cfg, s, n_real, n_s, lam):
  """One seed of `augment_fixed_real`, unpadded, in a Python loop; KDE density in NumPy."""
  learner = make_learner(cfg)[0]
  points, dx = mixture.grid_points(cfg.grid, 1)
  gx = np.asarray(points[:, 0], np.float64)
  p_star = np.asarray(mixture.density(cfg.mixture, points), np.float64)
  real = np.asarray(mixture.sample(_key(cfg.seed, s, 0, 2), cfg.mixture, n_real), np.float64)[:, 0]
  x, w = real, np.ones(n_real)
  rows = (n_real, n_real, 1.0)          # generation 0: the real rows alone
  tvs = []
  for g in range(cfg.generations + 1):
    if g > 0:  # draw from the previous generation's KDE (its rows, its h), then refit
      params = {"x": jnp.asarray(x[:, None], jnp.float32), "h": jnp.float32(h),
                "rows": learners.Rows(jnp.int32(rows[0]), jnp.int32(rows[1]), jnp.float32(rows[2]))}
      synth = np.asarray(learner.sample(_key(cfg.seed, s, g, 1), params, n_s), np.float64)[:, 0]
      wr = lam if lam >= 0 else n_real / (n_real + n_s)
      x = np.concatenate([real, synth])
      w = np.concatenate([np.full(n_real, wr / n_real), np.full(n_s, (1 - wr) / max(n_s, 1))])
      if n_s == 0:
        w = np.ones(n_real)
      rows = (n_real, n_real + n_s, wr)
    dens, h = _ref_kde_density(x, w, cfg.bandwidth, gx)
    tvs.append(0.5 * np.abs(dens - p_star).sum() * dx)
  return np.array(tvs)


def test_vmapped_grid_equals_a_hand_loop_of_single_runs():
  cfg = Config(grid=Grid(lo=-7.0, hi=7.0, size=200), n_real=40, generations=3, seeds=2,
               density="exact", scenario="augment_fixed_real")
  lambdas, n_synth = [PROPORTIONAL, 0.3], [0, 25, 70]
  tv = run_grid(cfg, lambdas, n_synth)["tv"]                   # [S, L, P, G+1]
  assert tv.shape == (2, 2, 3, 4)
  for s in range(cfg.seeds):
    for i, lam in enumerate(lambdas):
      for j, n_s in enumerate(n_synth):
        np.testing.assert_allclose(tv[s, i, j], _ref_run(cfg, s, 40, n_s, lam), rtol=2e-4,
                                   atol=2e-6, err_msg=f"seed {s} lambda {lam} n_s {n_s}")


def test_vmapped_diffusion_grid_equals_single_runs_and_chunks_resume(tmp_path):
  cfg = dataclasses.replace(DIFF, scenario="fresh_real", seeds=4)
  lambdas, n_synth = [PROPORTIONAL, 0.5], [10, 40]
  full = run_grid(cfg, lambdas, n_synth, hp={"tau": 300.0})["tv"]
  # a point alone (padded only to its own sizes), for a seed range of its own
  for (i, lam), (j, n_s), (a, b) in [((0, PROPORTIONAL), (0, 10), (0, 2)),
                                     ((1, 0.5), (1, 40), (3, 4))]:
    alone = run_sweep(cfg, n_real=[30], n_synth=[n_s], hp={"tau": [300.0], "lambda": [lam]},
                      seed_range=(a, b))["tv"][:, 0]
    np.testing.assert_allclose(full[a:b, i, j], alone, rtol=1e-4, atol=1e-5)
  chunked = run_grid(cfg, lambdas, n_synth, hp={"tau": 300.0}, out_dir=tmp_path, chunk=3)["tv"]
  np.testing.assert_allclose(chunked, full, rtol=1e-5, atol=1e-6)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["grid_seeds_0_3.npz", "grid_seeds_3_4.npz"]
  np.save(tmp_path / "marker.npy", 0)
  resumed = run_grid(cfg, lambdas, n_synth, hp={"tau": 300.0}, out_dir=tmp_path, chunk=3)["tv"]
  np.testing.assert_array_equal(resumed, chunked)


def test_lambda_is_decoupled_from_the_real_set_size():
  cfg = Config(grid=Grid(size=128), n_real=50, generations=2, seeds=3)
  out = run_grid(cfg, [PROPORTIONAL, 0.0, 0.4, 1.0], [0, 30, 200])
  tv, var = out["tv"], out["var"]
  # generation 0 trains on the same n_real = 50 real rows at every lambda and n_s
  for arr in (tv, var):
    np.testing.assert_array_equal(arr[..., 0], np.broadcast_to(arr[:, :1, :1, 0], arr.shape[:3]))
  # lambda = 1 puts no weight on synthetic rows: every generation refits the real set alone
  np.testing.assert_allclose(tv[:, 3], np.broadcast_to(tv[:, 3, :, :1], tv[:, 3].shape), rtol=1e-5)
  # lambda = n_real / (n_real + n_s) given as a number equals the proportional mix
  lam = [50 / 80]
  fixed = run_grid(cfg, lam, [30])["tv"][:, 0, 0]
  np.testing.assert_allclose(fixed, tv[:, 0, 1], rtol=1e-5, atol=1e-7)
  # lambda changes the training set's weights, not its real rows: gen-1 TV depends on lambda
  assert np.all(np.abs(tv[:, 1, 2, 1] - tv[:, 2, 2, 1]) > 1e-6)


@pytest.mark.parametrize("lam,n1,n2", [(0.3, 40, 90), (0.85, 120, 15)])
def test_weighted_kde_equals_scipy_gaussian_kde_with_weights(lam, n1, n2):
  rng = np.random.default_rng(n1)
  x = np.concatenate([rng.normal(-1, 0.7, n1), rng.normal(1.5, 1.2, n2)])
  w = np.concatenate([np.full(n1, lam / n1), np.full(n2, (1 - lam) / n2)])
  h = 0.9 * (1.0 / np.sum(w**2)) ** -0.2
  ref = stats.gaussian_kde(x, bw_method=1.0, weights=w)          # kernel cov = weighted data cov
  ref.set_bandwidth(h / np.sqrt(ref.covariance[0, 0]))
  grid = Grid(lo=-6.0, hi=7.0, size=257)
  points, _ = mixture.grid_points(grid, 1)
  kde = learners.kde(grid, points, 1, 0.9, "fixed", "exact")
  xp = jnp.concatenate([jnp.asarray(x[:, None], jnp.float32), jnp.full((9, 1), 50.0)])
  params = kde.fit(jax.random.key(0), xp, learners.Rows(jnp.int32(n1), jnp.int32(n1 + n2),
                                                       jnp.float32(lam)), {})
  np.testing.assert_allclose(float(params["h"]), h, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(kde.density(params)), ref(np.asarray(points[:, 0], np.float64)),
                             rtol=2e-5, atol=1e-7)
  # draws: a fraction lam from the first block (each draw lies within 6 h of its row)
  s = np.asarray(kde.sample(jax.random.key(1), params, 40_000))[:, 0]
  assert abs(s.mean() - np.sum(w * x)) < 4 * np.sqrt((np.sum(w * (x - np.sum(w * x)) ** 2) + h**2) / len(s))


def test_quantile_tv_of_the_diffusion_learner_matches_its_samples():
  # the deterministic quantile TV and a large-sample histogram of ODE draws estimate the
  # same model CDF: their bin masses agree to sampling error
  cfg = dataclasses.replace(DIFF, grid=Grid(size=40), diffusion=dataclasses.replace(
    TINY_DIFF, eval_samples=2000))
  learner, p_star, cell = make_learner(cfg)
  x = mixture.sample(jax.random.key(2), cfg.mixture, 200)
  params = learner.fit(jax.random.key(3), x, learners.uniform_rows(200), {"tau": 1e3})
  mass = np.asarray(learner.density(params)) * cell
  np.testing.assert_allclose(mass.sum(), 1.0, atol=1e-3)
  draws = np.asarray(learner.sample(jax.random.key(4), params, 200_000))[:, 0]
  hist = np.histogram(draws, bins=40, range=(cfg.grid.lo, cfg.grid.hi))[0] / len(draws)
  assert np.abs(hist - mass).max() < 5e-3, np.abs(hist - mass).max()
  np.testing.assert_allclose(np.asarray(p_star).sum() * cell, 1.0, atol=1e-5)


def test_summaries_detect_a_hump_and_a_plateau():
  rng = np.random.default_rng(0)
  hump = np.array([0.10, 0.13, 0.12, 0.09]) + 0.005 * rng.normal(size=(40, 4))
  flat = np.array([0.10, 0.09, 0.08, 0.07]) + 0.005 * rng.normal(size=(40, 4))
  assert phase_transition(hump)["appears"] and phase_transition(hump)["peak_index"] == 1
  assert not phase_transition(flat)["appears"]
  np.testing.assert_allclose(phase_transition(hump)["rise"], 0.03, atol=0.005)
  growing = np.linspace(0.1, 0.3, 11) + 0.01 * rng.normal(size=(30, 11))
  plateau = 0.2 - 0.1 * 0.5 ** np.arange(11) + 0.01 * rng.normal(size=(30, 11))
  g, p = bounded_error(growing), bounded_error(plateau)
  assert g["late_growth"] - g["late_growth_ci"] > 0.05
  assert abs(p["late_growth"]) < p["late_growth_ci"] + 0.01
  with pytest.raises(ConfigError, match="lambda must be in"):
    run_grid(Config(seeds=2), [1.5], [0])
