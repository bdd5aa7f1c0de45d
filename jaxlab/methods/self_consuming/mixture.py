"""The real distribution p*: an isotropic Gaussian mixture, its sampler and density."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr

from jaxlab.methods.self_consuming.config import Grid, Mixture


def grid_points(grid: Grid, dim: int) -> tuple[jax.Array, float]:
  """Grid coordinates [G] (1-D) or [G, G, 2] (2-D) and the cell volume."""
  axis = jnp.linspace(grid.lo, grid.hi, grid.size)
  dx = (grid.hi - grid.lo) / (grid.size - 1)
  if dim == 1:
    return axis[:, None], dx
  xx, yy = jnp.meshgrid(axis, axis, indexing="ij")
  return jnp.stack([xx, yy], -1), dx * dx


def sample(key: jax.Array, mix: Mixture, n: int) -> jax.Array:
  """[n, d] samples from p*."""
  k1, k2 = jax.random.split(key)
  comp = jax.random.choice(k1, len(mix.weights), (n,), p=jnp.asarray(mix.weights))
  means, stds = jnp.asarray(mix.means), jnp.asarray(mix.stds)
  return means[comp] + stds[comp, None] * jax.random.normal(k2, (n, mix.dim))


def density(mix: Mixture, points: jax.Array) -> jax.Array:
  """p*(x) at points [..., d]."""
  d = mix.dim
  out = 0.0
  for w, m, s in zip(mix.weights, mix.means, mix.stds):
    z = jnp.sum((points - jnp.asarray(m)) ** 2, -1) / s**2
    out = out + w * jnp.exp(-0.5 * z) / (2 * np.pi * s**2) ** (d / 2)
  return out


def bin_density(mix: Mixture, lo: float, hi: float, bins: int) -> jax.Array:
  """[bins] mass of p* in each of ``bins`` equal bins of [lo, hi], divided by the width (1-D)."""
  edges = lo + jnp.arange(bins + 1) * (hi - lo) / bins
  cdf = sum(w * ndtr((edges - m[0]) / s) for w, m, s in zip(mix.weights, mix.means, mix.stds))
  return jnp.diff(cdf) / ((hi - lo) / bins)
