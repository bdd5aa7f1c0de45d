"""Self-consuming loops: distances, analytic rates, lambda = 1, the hump."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special, stats

from jaxlab.core.errors import ConfigError
from jaxlab.methods.self_consuming import (Config, learners, mixture, run_sweep, tv_gaussians_1d,
                                           tv_grid)
from jaxlab.methods.self_consuming.bound import fit_rate, scaffold_bound
from jaxlab.methods.self_consuming.config import MIXTURE_2D, Grid
from jaxlab.methods.self_consuming.loops import bucket_points, make_sweep, seed_keys

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


def _padded(x, size, fill=1e3):
  """``x`` [n, d] followed by rows of garbage that a learner must ignore."""
  return jnp.concatenate([jnp.asarray(x, jnp.float32), jnp.full((size - len(x), x.shape[1]), fill)])


@pytest.mark.parametrize("rule,c,n,data", [
  ("fixed", 0.9, 50, "normal"), ("silverman", 1.06, 137, "mixture"), ("fixed", 0.4, 300, "uniform"),
])
def test_exact_kde_equals_scipy_gaussian_kde(rule, c, n, data):
  rng = np.random.default_rng(n)
  x = {"normal": rng.normal(0.5, 1.3, n), "uniform": rng.uniform(-3, 2, n),
       "mixture": np.where(rng.random(n) < 0.4, rng.normal(-2, 0.5, n), rng.normal(1.5, 1.0, n))}[data]
  # the bandwidth rule written out: h = c n^-1/5 (times the MLE std under silverman);
  # scipy's kernel std is factor * (ddof=1 std)
  h = c * n**-0.2 * (np.std(x) if rule == "silverman" else 1.0)
  ref_kde = stats.gaussian_kde(x, bw_method=h / np.std(x, ddof=1))
  grid = Grid(lo=-7.0, hi=6.0, size=301)
  points, _ = mixture.grid_points(grid, 1)
  kde = learners.kde(grid, points, 1, c, rule, "exact")
  params = kde.fit(jax.random.key(0), _padded(x[:, None], n + 17), learners.uniform_rows(n), {})
  np.testing.assert_allclose(float(params["h"]), h, rtol=1e-5)
  ref = ref_kde(np.asarray(points[:, 0], np.float64))
  np.testing.assert_allclose(np.asarray(kde.density(params)), ref, rtol=2e-5, atol=1e-7)


def test_binned_density_equals_exact_kde():
  # linear binning errs by O((dx / h)^2), mostly a widening by the tent's variance dx^2/6
  # that the binned kernel takes back: a 512-point grid keeps it below 2e-5 in TV (~9e-6 seen)
  cfg = Config(grid=Grid(size=512), n_real=80, generations=1, seeds=3, n_synthetic=(0, 40))
  a = run_sweep(dataclasses.replace(cfg, density="binned"))["tv"]
  b = run_sweep(dataclasses.replace(cfg, density="exact"))["tv"]
  np.testing.assert_allclose(a, b, atol=2e-5)


def test_binned_density_equals_exact_kde_in_2d():
  grid = Grid(size=96)
  points, cell = mixture.grid_points(grid, 2)
  x = _padded(mixture.sample(jax.random.key(0), MIXTURE_2D, 120), 150)
  binned, exact = (learners.kde(grid, points, 2, method=m) for m in ("binned", "exact"))
  params = binned.fit(jax.random.key(0), x, learners.uniform_rows(120), {})
  b, e = binned.density(params), exact.density(params)
  np.testing.assert_allclose(float(e.sum() * cell), 1.0, atol=1e-4)
  assert float(tv_grid(b, e, cell)) < 4e-3        # 2.3e-3 seen (dx / h ~ 0.5)


def test_kde_samples_only_the_data_rows():
  n = 40
  x = np.random.default_rng(0).normal(size=(n, 1)).astype(np.float32)
  kde = learners.kde(GRID, mixture.grid_points(GRID, 1)[0], 1)
  params = kde.fit(jax.random.key(0), _padded(x, 64), learners.uniform_rows(n), {})
  h = float(params["h"])
  s = np.asarray(kde.sample(jax.random.key(1), params, 20_000))
  gap = np.abs(s - x[:, 0][None, :]).min(1)           # distance to the nearest data row
  assert gap.max() < 6 * h
  # mean and variance of a KDE draw: the data's, plus h^2
  np.testing.assert_allclose(s.mean(), x.mean(), atol=4 * np.sqrt((x.var() + h**2) / len(s)))
  np.testing.assert_allclose(s.var(), x.var() + h**2, rtol=0.05)


@pytest.mark.parametrize("scenario", ["fully_synthetic", "fresh_real", "accumulate"])
def test_bucketed_sweep_equals_one_padded_program(scenario):
  # the points' real and synthetic sizes differ, so a lane's layout (where its real rows,
  # draws and padding sit) differs between the two runs; the results must not
  cfg = Config(scenario=scenario, grid=Grid(size=64), generations=2, seeds=3)
  n_real, n_synth = [30, 12, 30, 7], [0, 10, 300, 40]
  groups = bucket_points(cfg, n_real, n_synth, buckets=2)
  assert len(groups) == 2 and sorted(sum(groups, [])) == [0, 1, 2, 3]
  one = run_sweep(cfg, n_real=n_real, n_synth=n_synth, buckets=1)
  two = run_sweep(cfg, n_real=n_real, n_synth=n_synth, buckets=2)
  for k in ("tv", "var"):
    np.testing.assert_allclose(two[k], one[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_accumulate_generation_one_equals_fixed_real():
  cfg = Config(scenario="augment_fixed_real", grid=GRID, n_real=40, generations=2, seeds=4,
               n_synthetic=(0, 60))
  fixed = run_sweep(cfg, n_real=[40, 25], n_synth=[60, 90])
  acc = run_sweep(dataclasses.replace(cfg, scenario="accumulate"), n_real=[40, 25], n_synth=[60, 90])
  # generation 1 trains on the same real rows and the same draws in both scenarios;
  # generation 2 pools real + both generations' draws (a larger, different set)
  for k in ("tv", "var"):
    np.testing.assert_allclose(acc[k][..., :2], fixed[k][..., :2], rtol=1e-5, atol=1e-7)
    assert np.all(np.abs(acc[k][..., 2] - fixed[k][..., 2]) > 1e-6)


def test_bad_sweeps_are_one_line_errors():
  cfg = Config(grid=GRID, seeds=2)
  with pytest.raises(ConfigError, match="n_synth must be >= 0"):
    run_sweep(cfg, n_real=[10], n_synth=[-1])
  with pytest.raises(ConfigError, match="unknown KDE density method"):
    learners.kde(GRID, mixture.grid_points(GRID, 1)[0], 1, method="fft")


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
