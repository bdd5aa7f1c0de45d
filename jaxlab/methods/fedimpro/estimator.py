"""Client-side per-class feature statistics (FedImpro Eq. 6 and the reference code).

Features ``h`` are the flattened low-level activations ``[B, D]``. A client keeps a
per-class, per-dimension diagonal Gaussian ``(mu, sigma)`` of shape ``[C, D]`` and
updates it after every local step from the (detached) real features of the batch.

Two update rules:

* ``count_ema`` (default, the rule the reference code intends): for every class ``c``
  present in the batch, ``w_c = min(1, n_c / P_c)`` with ``n_c`` the rows of class ``c``
  in the batch and ``P_c`` the class's size in the whole training set;
  ``mu_c <- (1 - w_c) mu_c + w_c mean(h_c)`` and, when ``n_c >= 2``,
  ``sigma_c <- (1 - w_c) sigma_c + w_c std(h_c)`` (unbiased std, ddof 1).
* ``last_batch`` (``quirk_last_batch_estimator=True``, the reference as coded): the
  same with ``w_c = 1``: a present class takes the last batch's mean/std, an absent
  class keeps its value.

Both then clip ``sigma <- min(sigma, sigma_clip)`` elementwise.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp


class FeatureStats(NamedTuple):
  """A per-class diagonal Gaussian over flattened features.

  Attributes:
    mu: f32[C, D] class means.
    sigma: f32[C, D] class standard deviations.
  """

  mu: jax.Array
  sigma: jax.Array


def init_stats(
  key: jax.Array, num_classes: int, dim: int, sigma_init: float = 0.1
) -> FeatureStats:
  """The reference server init: ``mu ~ U[0, 1)``, ``sigma = sigma_init``.

  Args:
    key: PRNG key.
    num_classes: C.
    dim: D, the flattened feature size.
    sigma_init: the initial (and, for ``std_mode="fixed"``, constant) sigma.

  Returns:
    FeatureStats with mu, sigma of shape [C, D].
  """
  mu = jax.random.uniform(key, (num_classes, dim), jnp.float32)
  return FeatureStats(mu, jnp.full((num_classes, dim), sigma_init, jnp.float32))


def class_moments(
  h: jax.Array, y: jax.Array, num_classes: int, mask: jax.Array | None = None
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Per-class count, mean and unbiased std of a batch.

  Args:
    h: f32[B, D] features.
    y: int[B] labels.
    num_classes: C.
    mask: optional bool[B]; False rows are ignored.

  Returns:
    count f32[C], mean f32[C, D] (0 where count = 0), std f32[C, D] (ddof 1; 0
    where count < 2).
  """
  onehot = jax.nn.one_hot(y, num_classes, dtype=h.dtype)  # [B, C]
  if mask is not None:
    onehot = onehot * mask[:, None].astype(h.dtype)
  count = onehot.sum(0)  # [C]
  safe = jnp.maximum(count, 1.0)[:, None]
  mean = (onehot.T @ h) / safe  # [C, D]
  # Two-pass (centred) variance: sum_b onehot[b, c] * (h[b] - mean[c])**2.
  centred = h - onehot @ mean  # [B, D]; rows with no class get h - 0, weight 0 below
  var = (onehot.T @ (centred * centred)) / jnp.maximum(count - 1.0, 1.0)[:, None]
  std = jnp.where(count[:, None] >= 2, jnp.sqrt(var), 0.0)
  return count, jnp.where(count[:, None] >= 1, mean, 0.0), std


def update_stats(
  stats: FeatureStats,
  h: jax.Array,
  y: jax.Array,
  class_total: jax.Array,
  *,
  last_batch: bool = False,
  update_sigma: bool = True,
  sigma_clip: float | None = 0.1,
  mask: jax.Array | None = None,
) -> FeatureStats:
  """One estimator update from a batch of detached real features.

  Args:
    stats: the current estimate, [C, D].
    h: f32[B, D] real features (gradients are stopped here).
    y: int[B] labels.
    class_total: f32[C] P_c, class sizes of the training set (count_ema weights).
    last_batch: the reference-code rule (w_c = 1) instead of count_ema.
    update_sigma: False keeps sigma fixed (``std_mode="fixed"``).
    sigma_clip: elementwise upper bound on sigma after the update; None = no clip.
    mask: optional bool[B] of valid rows.

  Returns:
    The updated FeatureStats.
  """
  h = jax.lax.stop_gradient(h.reshape(h.shape[0], -1).astype(jnp.float32))
  count, mean, std = class_moments(h, y, stats.mu.shape[0], mask)
  if last_batch:
    w = jnp.ones_like(count)
  else:
    w = jnp.minimum(1.0, count / jnp.maximum(class_total, 1.0))
  w_mu = jnp.where(count >= 1, w, 0.0)[:, None]
  mu = (1.0 - w_mu) * stats.mu + w_mu * mean
  sigma = stats.sigma
  if update_sigma:
    w_sd = jnp.where(count >= 2, w, 0.0)[:, None]
    sigma = (1.0 - w_sd) * sigma + w_sd * std
  if sigma_clip is not None:
    sigma = jnp.minimum(sigma, sigma_clip)
  return FeatureStats(mu, sigma)
