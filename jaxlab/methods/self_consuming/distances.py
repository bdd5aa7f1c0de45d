"""Total-variation distances: exact on a grid, closed form, and sample based."""

import jax
import jax.numpy as jnp
from jax.scipy.special import erf


def tv_grid(p: jax.Array, q: jax.Array, cell: float) -> jax.Array:
  """TV = 1/2 * integral |p - q| for densities on the same grid.

  Args:
    p, q: [..., G] or [..., G, G] densities at grid points.
    cell: the grid cell volume (dx, or dx*dy).
  """
  return 0.5 * jnp.sum(jnp.abs(p - q)) * cell


def tv_gaussians_1d(mu1: float, s1: float, mu2: float, s2: float) -> jax.Array:
  """Closed-form TV between N(mu1, s1^2) and N(mu2, s2^2) in one dimension.

  The densities cross at the roots of a quadratic; TV is the difference of the
  two CDFs integrated over the region where the first density is larger.
  """
  mu1, s1, mu2, s2 = (jnp.asarray(v, jnp.float64 if jax.config.x64_enabled else jnp.float32)
                      for v in (mu1, s1, mu2, s2))
  cdf = lambda x, m, s: 0.5 * (1 + erf((x - m) / (s * jnp.sqrt(2.0))))  # noqa: E731
  if_equal = 2 * cdf(jnp.abs(mu1 - mu2) / 2, 0.0, s1) - 1
  # log N1 - log N2 = a x^2 + b x + c
  a = 1 / (2 * s2**2) - 1 / (2 * s1**2)
  b = mu1 / s1**2 - mu2 / s2**2
  c = mu2**2 / (2 * s2**2) - mu1**2 / (2 * s1**2) + jnp.log(s2 / s1)
  disc = jnp.sqrt(jnp.maximum(b**2 - 4 * a * c, 0.0))
  safe_a = jnp.where(a == 0, 1.0, a)
  r1, r2 = jnp.sort(jnp.stack([(-b - disc) / (2 * safe_a), (-b + disc) / (2 * safe_a)]))
  # a > 0 (s1 > s2): N1 > N2 outside [r1, r2]; a < 0: inside.
  inside = (cdf(r2, mu1, s1) - cdf(r1, mu1, s1)) - (cdf(r2, mu2, s2) - cdf(r1, mu2, s2))
  tv = jnp.where(a < 0, inside, -inside)
  return jnp.where(jnp.abs(s1 - s2) < 1e-12, if_equal, tv)


def tv_samples_hist(x: jax.Array, density: jax.Array, lo: float, hi: float) -> jax.Array:
  """Sample-based TV: a histogram of 1-D samples ``x`` against a grid density.

  Biased upwards by the finite sample (the floor is the TV between two
  independent samples of the same size from the same law; report it beside).

  Args:
    x: [n] samples.
    density: [G] target density at the centres of G equal bins on [lo, hi].
  """
  g = density.shape[-1]
  dx = (hi - lo) / g
  idx = jnp.clip(jnp.floor((x - lo) / dx).astype(jnp.int32), 0, g - 1)
  inside = (x >= lo) & (x < hi)
  hist = jnp.zeros(g).at[idx].add(inside.astype(jnp.float32)) / (x.shape[0] * dx)
  outside = 1.0 - jnp.mean(inside)
  return 0.5 * (jnp.sum(jnp.abs(hist - density)) * dx + outside)
