"""A faithful-statistics client estimator: exact pooled per-class moments of a round.

The reference's estimator (``estimator.update_stats``) is an EMA of per-batch means and
stds, clipped at sigma <= 0.1. ``running`` instead keeps the exact count, mean and sum of
squared deviations of every class's real features seen so far in the round (Chan et
al.'s parallel merge), so after the round a client uploads the mean and the population
std (ddof 0) of all its features of that class: with ``server_estimate=
"selected_label_size"`` the server's law-of-total-variance pool is then the exact
within-class mean and std over the round's clients. Classes a client has not seen (or
seen once, for sigma) keep the round's starting (global) estimate. Not in the paper.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxlab.methods.fedimpro.estimator import FeatureStats


class Moments(NamedTuple):
  """Running per-class moments.

  Attributes:
    n: f32[C] rows seen per class.
    mean: f32[C, D] their mean (0 where n = 0).
    m2: f32[C, D] sum of squared deviations from the mean.
  """

  n: jax.Array
  mean: jax.Array
  m2: jax.Array


def init_moments(num_classes: int, dim: int) -> Moments:
  """Empty moments: nothing seen."""
  z = jnp.zeros((num_classes, dim), jnp.float32)
  return Moments(jnp.zeros((num_classes,), jnp.float32), z, z)


def merge_batch(mom: Moments, h: jax.Array, y: jax.Array, mask: jax.Array | None = None) -> Moments:
  """Adds a batch's rows to the running moments (exact, order-independent up to rounding).

  Args:
    mom: the moments so far.
    h: f32[B, ...] real features (detached here).
    y: int[B] labels.
    mask: optional bool[B] of valid rows.

  Returns:
    The merged Moments.
  """
  h = jax.lax.stop_gradient(h.reshape(h.shape[0], -1).astype(jnp.float32))
  onehot = jax.nn.one_hot(y, mom.n.shape[0], dtype=h.dtype)
  if mask is not None:
    onehot = onehot * mask[:, None].astype(h.dtype)
  nb = onehot.sum(0)
  mb = (onehot.T @ h) / jnp.maximum(nb, 1.0)[:, None]
  dev = h - onehot @ mb
  m2b = onehot.T @ (dev * dev)
  n = mom.n + nb
  delta = mb - mom.mean
  frac = (nb / jnp.maximum(n, 1.0))[:, None]
  mean = mom.mean + delta * frac
  m2 = mom.m2 + m2b + delta * delta * (mom.n[:, None] * frac)
  return Moments(n, mean, m2)


def to_stats(mom: Moments, base: FeatureStats, sigma_clip: float | None = None) -> FeatureStats:
  """The estimate: pooled mean / population std where seen, ``base`` elsewhere.

  Args:
    mom: the running moments.
    base: the estimate for classes with too few rows (the round's global estimate).
    sigma_clip: optional elementwise upper bound on sigma (None: faithful, no clip).

  Returns:
    FeatureStats [C, D].
  """
  n = mom.n[:, None]
  mu = jnp.where(n >= 1, mom.mean, base.mu)
  sigma = jnp.where(n >= 2, jnp.sqrt(jnp.maximum(mom.m2, 0.0) / jnp.maximum(n, 1.0)), base.sigma)
  if sigma_clip is not None:
    sigma = jnp.minimum(sigma, sigma_clip)
  return FeatureStats(mu, sigma)
