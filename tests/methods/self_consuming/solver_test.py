"""The diffusion learner's early-stopped GD solvers against explicit float64 GD steps."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.core.errors import ConfigError
from jaxlab.methods.self_consuming.config import DiffusionOptions, Grid
from jaxlab.methods.self_consuming.diffusion import diffusion, gd_doubling, gd_eigh
from jaxlab.methods.self_consuming.learners import uniform_rows


def _problem(m=24, n=200, seed=0):
  rng = np.random.default_rng(seed)
  g = np.maximum(rng.normal(size=(n, m)), 0.0) / m           # relu features: non-negative
  gram = g.T @ g / n
  lin = g.T @ rng.normal(size=(n, 1)) / n
  return gram, lin


def _explicit_gd(gram, lin, tau):
  """tau plain GD steps on a'Ga + 2a'lin from 0, lr 1/(2 lambda_max), in float64."""
  lr = 0.5 / np.linalg.eigvalsh(gram)[-1]
  a = np.zeros_like(lin)
  for _ in range(tau):
    a = a - lr * (2.0 * gram @ a + 2.0 * lin)
  return a


@pytest.mark.parametrize("tau", [1, 7, 30, 301])
def test_both_solvers_equal_explicit_gd_steps(tau):
  gram, lin = _problem()
  ref = _explicit_gd(gram, lin, tau)
  scale = np.abs(ref).max()
  g32, l32 = jnp.asarray(gram, jnp.float32), jnp.asarray(lin, jnp.float32)
  eig = np.asarray(gd_eigh(g32, l32, jnp.float32(tau)))
  dbl = np.asarray(gd_doubling(g32, l32, jnp.float32(tau), bits=12))
  np.testing.assert_allclose(eig, ref, atol=2e-4 * scale)
  np.testing.assert_allclose(dbl, ref, atol=2e-4 * scale)


def test_doubling_fit_matches_eigh_fit_and_bad_solver_refused():
  x = jax.random.normal(jax.random.key(1), (64, 1))
  rows = uniform_rows(64)
  opts = DiffusionOptions(width=32, noise_draws=1, ode_steps=8, eval_samples=200)
  fits = []
  for solver in ("eigh", "doubling"):
    lr = diffusion(Grid(size=32), 1, dataclasses.replace(opts, solver=solver))
    fits.append(lr.fit(jax.random.key(2), x, rows, {"tau": jnp.float32(300.0)})["a"])
  np.testing.assert_allclose(fits[1], fits[0], rtol=2e-3, atol=2e-3 * float(jnp.abs(fits[0]).max()))
  with pytest.raises(ConfigError, match="solver"):
    diffusion(Grid(size=32), 1, DiffusionOptions(solver="lu"))
