"""Learners as NamedTuples of pure functions over fixed-shape, masked data.

Each learner has ``fit(x [N, d], mask [N], hp) -> params`` (``hp``: dynamic,
sweepable scalars such as the KDE bandwidth constant or the diffusion
early-stopping time), ``sample(key, params,
n) -> [n, d]`` and ``density(params, points [..., d]) -> [...]``. Data is padded
to a static N and carries a mask, so a sweep over sample sizes is a `vmap`.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.methods.self_consuming.config import Grid


class Learner(NamedTuple):
  fit: Callable[[jax.Array, jax.Array, dict[str, jax.Array]], Any]
  sample: Callable[[jax.Array, Any, int], jax.Array]
  density: Callable[[Any], jax.Array]  # params -> density on the learner's grid


def _masked_moments(x, mask):
  w = mask.astype(x.dtype)
  n = jnp.maximum(w.sum(), 1.0)
  mu = (w[:, None] * x).sum(0) / n
  var = (w[:, None] * (x - mu) ** 2).sum(0) / n
  return mu, var, n


def gaussian_mle(points: jax.Array) -> Learner:
  """Closed-form Gaussian maximum likelihood (diagonal covariance, MLE variance).

  Args:
    points: [..., d] grid where `density` is evaluated.
  """

  def fit(x, mask, hp):
    del hp
    mu, var, _ = _masked_moments(x, mask)
    return {"mu": mu, "var": var}

  def sample(key, params, n):
    return params["mu"] + jnp.sqrt(params["var"]) * jax.random.normal(key, (n, params["mu"].shape[0]))

  def density(params):
    z = (points - params["mu"]) ** 2 / params["var"]
    return jnp.exp(-0.5 * z.sum(-1)) / jnp.sqrt((2 * np.pi) ** points.shape[-1] * params["var"].prod())

  return Learner(fit, sample, density)


def bandwidth(n: jax.Array, std: jax.Array, c: float, rule: str) -> jax.Array:
  """h = c * n^(-1/5), times the sample std under ``silverman``."""
  h = c * n ** (-0.2)
  return h * jnp.mean(std) if rule == "silverman" else h


def _gauss_kernel_1d(grid: Grid, h: jax.Array) -> jax.Array:
  """The Gaussian kernel sampled on the grid's offsets, centred for FFT."""
  g = grid.size
  dx = (grid.hi - grid.lo) / (g - 1)
  off = (jnp.arange(2 * g) - g) * dx
  k = jnp.exp(-0.5 * (off / h) ** 2) / (jnp.sqrt(2 * np.pi) * h)
  return jnp.fft.ifftshift(k) * dx


def _linear_bin(x: jax.Array, w: jax.Array, grid: Grid) -> jax.Array:
  """Linear binning of 1-D points onto the grid (weights sum to sum(w))."""
  g = grid.size
  pos = (x - grid.lo) / (grid.hi - grid.lo) * (g - 1)
  i0 = jnp.clip(jnp.floor(pos), 0, g - 2).astype(jnp.int32)
  f = jnp.clip(pos - i0, 0.0, 1.0)
  inside = (pos >= 0) & (pos <= g - 1)
  w = w * inside
  return jnp.zeros(g).at[i0].add(w * (1 - f)).at[i0 + 1].add(w * f)


def _fft_smooth(hist: jax.Array, kern: jax.Array, axis: int) -> jax.Array:
  """Linear (not circular) convolution along ``axis`` via zero-padded FFT."""
  g = hist.shape[axis]
  pad = [(0, 0)] * hist.ndim
  pad[axis] = (0, g)
  f = jnp.fft.rfft(jnp.pad(hist, pad), axis=axis)
  shape = [1] * hist.ndim
  shape[axis] = -1
  out = jnp.fft.irfft(f * jnp.fft.rfft(kern).reshape(shape), n=2 * g, axis=axis)
  return jax.lax.slice_in_dim(out, 0, g, axis=axis)


def kde(grid: Grid, points: jax.Array, dim: int, c: float = 0.9, rule: str = "fixed",
        method: str = "binned") -> Learner:
  """Gaussian kernel density estimation with h = c * N^(-1/5).

  Sampling is exact: a training point chosen uniformly plus N(0, h^2) noise.
  ``method="exact"`` sums every kernel at every grid point; ``"binned"`` bins the
  points linearly onto the grid and convolves by FFT (per axis; the Gaussian
  kernel is separable), which is what makes 100-seed sweeps cheap.
  """

  def fit(x, mask, hp):
    _, var, n = _masked_moments(x, mask)
    h = bandwidth(n, jnp.sqrt(var), hp.get("bandwidth", c), rule)
    return {"x": x, "mask": mask, "h": h}

  def sample(key, params, n):
    k1, k2 = jax.random.split(key)
    # A uniform draw among the active rows: the r-th active row, found by a
    # binary search of the mask's running count (no [n, N] Gumbel matrix).
    counts = jnp.cumsum(params["mask"].astype(jnp.int32))
    r = jax.random.randint(k1, (n,), 0, jnp.maximum(counts[-1], 1))
    idx = jnp.searchsorted(counts, r + 1, side="left")
    return params["x"][idx] + params["h"] * jax.random.normal(k2, (n, dim))

  def density_exact(params):
    x, w, h = params["x"], params["mask"].astype(jnp.float32), params["h"]
    w = w / w.sum()

    def at(p):  # p: [d]
      z = jnp.sum((p - x) ** 2, -1) / h**2
      return jnp.sum(w * jnp.exp(-0.5 * z)) / (2 * np.pi * h**2) ** (dim / 2)

    flat = points.reshape(-1, dim)
    return jax.lax.map(at, flat, batch_size=256).reshape(points.shape[:-1])

  def density_binned(params):
    x, w, h = params["x"], params["mask"].astype(jnp.float32), params["h"]
    w = w / w.sum()
    g = grid.size
    dx = (grid.hi - grid.lo) / (g - 1)
    kern = _gauss_kernel_1d(grid, h)
    if dim == 1:
      hist = _linear_bin(x[:, 0], w, grid)
      return _fft_smooth(hist, kern, 0) / dx
    pos = (x - grid.lo) / (grid.hi - grid.lo) * (g - 1)
    i0 = jnp.clip(jnp.floor(pos), 0, g - 2).astype(jnp.int32)
    f = jnp.clip(pos - i0, 0.0, 1.0)
    inside = jnp.all((pos >= 0) & (pos <= g - 1), -1)
    w = w * inside
    hist = jnp.zeros((g, g))
    for dxi in (0, 1):
      for dyi in (0, 1):
        wx = f[:, 0] if dxi else 1 - f[:, 0]
        wy = f[:, 1] if dyi else 1 - f[:, 1]
        hist = hist.at[i0[:, 0] + dxi, i0[:, 1] + dyi].add(w * wx * wy)
    return _fft_smooth(_fft_smooth(hist, kern, 0), kern, 1) / (dx * dx)

  if method not in ("binned", "exact"):
    raise ValueError(f"unknown KDE density method {method!r}; use 'binned' or 'exact'")
  return Learner(fit, sample, density_binned if method == "binned" else density_exact)
