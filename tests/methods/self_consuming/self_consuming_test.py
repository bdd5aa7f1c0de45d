"""Self-consuming loops: distances, analytic rates, lambda = 1, the hump."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special, stats

from jaxlab.methods.self_consuming import Config, mixture, run_sweep, tv_gaussians_1d, tv_grid
from jaxlab.methods.self_consuming.bound import fit_rate, scaffold_bound
from jaxlab.methods.self_consuming.config import Grid
from jaxlab.methods.self_consuming.loops import make_sweep, seed_keys

GRID = Grid(size=128)


def test_tv_with_itself_is_zero_and_gaussian_tv_matches_closed_form():
  x = jnp.linspace(-12, 12, 4001)
  dx = float(x[1] - x[0])
  p = stats.norm.pdf(np.asarray(x), 0.3, 1.0)
  assert float(tv_grid(p, p, dx)) == 0.0
  for (m1, s1, m2, s2) in [(0, 1, 1, 1), (0, 1, 0.5, 2.0), (-1, 0.5, 1, 0.7)]:
    closed = float(tv_gaussians_1d(m1, s1, m2, s2))
    numeric = 0.5 * integrate.quad(lambda t: abs(stats.norm.pdf(t, m1, s1) - stats.norm.pdf(t, m2, s2)),
                                   -30, 30, limit=200)[0]
    on_grid = float(tv_grid(stats.norm.pdf(np.asarray(x), m1, s1), stats.norm.pdf(np.asarray(x), m2, s2), dx))
    np.testing.assert_allclose(closed, numeric, atol=1e-6)
    np.testing.assert_allclose(on_grid, numeric, atol=1e-4)
  # equal variances: TV = 2 Phi(|dmu| / 2s) - 1
  np.testing.assert_allclose(float(tv_gaussians_1d(0, 1, 1, 1)), 2 * stats.norm.cdf(0.5) - 1, atol=1e-6)


def test_gaussian_mle_fully_synthetic_matches_analytic_collapse():
  n, gens, seeds = 10, 5, 4000
  cfg = Config(learner="gaussian", scenario="fully_synthetic", grid=GRID, n_real=n,
               generations=gens, seeds=seeds)
  var = run_sweep(cfg, n_real=[n], n_synth=[n])["var"][:, 0]        # [S, G+1]
  # E var_i = E var_0 ((n-1)/n)^i, and E log(var_i / var_0) = i E log(chi2_{n-1} / n)
  ratio = var.mean(0) / var[:, 0].mean()
  expect = ((n - 1) / n) ** np.arange(gens + 1)
  rel_se = var.std(0, ddof=1) / np.sqrt(seeds) / var.mean(0)
  assert np.all(np.abs(ratio / expect - 1) < 4 * (rel_se + rel_se[0]) + 1e-6), (ratio, expect)
  logs = np.log(var / var[:, :1])
  elog = np.arange(gens + 1) * (special.digamma((n - 1) / 2) + np.log(2 / n))
  se = logs.std(0, ddof=1) / np.sqrt(seeds) + 1e-9
  assert np.all(np.abs(logs.mean(0) - elog) < 4 * se), (logs.mean(0), elog)


def test_kde_fully_synthetic_variance_grows_by_h_squared():
  n, seeds, c = 200, 1000, 0.9
  cfg = Config(scenario="fully_synthetic", grid=GRID, n_real=n, generations=3, seeds=seeds,
               bandwidth=c)
  var = run_sweep(cfg, n_real=[n], n_synth=[n])["var"][:, 0]
  h2 = (c * n ** -0.2) ** 2
  for i in range(1, 4):  # E var_i = (n-1)/n (var_{i-1} + h^2): sample var of KDE draws
    pred = (n - 1) / n * (var[:, i - 1] + h2)
    d = var[:, i] - pred
    assert abs(d.mean()) < 4 * d.std(ddof=1) / np.sqrt(seeds), (i, d.mean())


def test_lambda_one_matches_the_real_only_learner():
  cfg = Config(scenario="augment_fixed_real", grid=GRID, n_real=100, generations=3, seeds=4)
  tv = run_sweep(cfg, n_real=[100], n_synth=[0])["tv"][:, 0]
  for g in range(1, 4):  # same real set, no synthetic data: the same model every generation
    np.testing.assert_allclose(tv[:, g], tv[:, 0], rtol=1e-6)
  fresh = run_sweep(dataclasses.replace(cfg, scenario="fresh_real", seeds=100), n_real=[100],
                    n_synth=[0])["tv"][:, 0]
  se = fresh.std(0, ddof=1) / np.sqrt(100)
  assert np.all(np.abs(fresh.mean(0) - fresh[:, 0].mean()) < 4 * (se + se[0]))


def test_binned_density_equals_exact_kde():
  # linear binning errs by O((dx / h)^2): a 512-point grid keeps it below 2e-4 in TV
  cfg = Config(grid=Grid(size=512), n_real=80, generations=1, seeds=3, n_synthetic=(0, 40))
  a = run_sweep(dataclasses.replace(cfg, density="binned"))["tv"]
  b = run_sweep(dataclasses.replace(cfg, density="exact"))["tv"]
  np.testing.assert_allclose(a, b, atol=2e-4)


def test_vmapped_sweep_equals_separate_runs_and_is_deterministic():
  cfg = Config(grid=GRID, n_real=50, generations=1, seeds=3, n_synthetic=(0, 30, 90))
  together = run_sweep(cfg)["tv"]
  # a point run alone (same static maxima) equals its lane of the vmapped sweep
  alone = run_sweep(cfg, n_real=[50, 50], n_synth=[90, 30])["tv"]
  chex.assert_trees_all_close(alone[:, 0], together[:, 2], rtol=1e-5, atol=1e-7)
  chex.assert_trees_all_close(alone[:, 1], together[:, 1], rtol=1e-5, atol=1e-7)
  np.testing.assert_array_equal(run_sweep(cfg)["tv"], together)


def test_sweep_compiles_once_for_all_points():
  cfg = Config(grid=Grid(size=64), n_real=20, generations=1, seeds=2)
  sweep = make_sweep(cfg, 20, 40)
  keys = seed_keys(0, 2)
  with jax.log_compiles(False):
    sweep(keys, jnp.array([20, 20]), jnp.array([0, 40]), {})
    size = sweep._cache_size()
    sweep(keys, jnp.array([10, 20]), jnp.array([5, 7]), {})
  assert sweep._cache_size() == size == 1


def test_the_hump_is_real_in_the_simulation():
  """At fixed real data, TV at an intermediate synthetic amount exceeds TV with no
  synthetic data by more than 3 standard errors (of the unpaired difference)."""
  seeds = 200
  cfg = Config(grid=Grid(size=256), n_real=200, generations=1, seeds=seeds,
               n_synthetic=(0, 200))
  tv = run_sweep(cfg)["tv"][:, :, 1]
  m = tv.mean(0)
  se = tv.std(0, ddof=1) / np.sqrt(seeds)
  assert m[1] - m[0] > 3 * np.hypot(se[0], se[1]), (m, se)


def test_scaffold_bound_shape():
  c, a = fit_rate(np.array([100, 400, 1600]), 2.0 * np.array([100, 400, 1600]) ** -0.4)
  np.testing.assert_allclose([c, a], [2.0, 0.4], rtol=1e-6)
  ns = np.array([1, 100, 1000, 10**5, 10**8])
  f = scaffold_bound(c, a, 200, ns, 1)
  assert f[1] > f[0] and f[2] > f[-1]            # rises, then falls back
  np.testing.assert_allclose(f[-1], c * 200**-a, rtol=1e-2)


def test_mixture_sampler_matches_density():
  mix = Config().mixture
  x = np.asarray(mixture.sample(jax.random.key(0), mix, 200_000))[:, 0]
  hist, edges = np.histogram(x, bins=80, range=(-6, 6), density=True)
  centres = 0.5 * (edges[1:] + edges[:-1])
  dens = np.asarray(mixture.density(mix, jnp.asarray(centres)[:, None]))
  assert np.abs(hist - dens).max() < 0.01
