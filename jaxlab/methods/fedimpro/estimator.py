"""Client-side per-class feature statistics (FedImpro Eq. 6 and the reference code).

Features ``h`` are the flattened low-level activations ``[B, D]``. A client keeps a
per-class, per-dimension diagonal Gaussian ``(mu, sigma)`` of shape ``[C, D]`` and
updates it after every local step from the (detached) real features of the batch.

All rules are an EMA of the batch's per-class mean and unbiased std (ddof 1): for every
class ``c`` present in the batch, ``mu_c <- (1 - w_c) mu_c + w_c mean(h_c)`` and, when
``n_c >= 2``, ``sigma_c <- (1 - w_c) sigma_c + w_c std(h_c)``; an absent class keeps its
value. They differ only in the weight ``w_c`` (paper Eq. 6: ``w = 1 - beta_m``):

* ``count_ema`` (the rule the reference code intends): ``w_c = min(1, n_c / P_c)``,
  ``n_c`` the rows of class ``c`` in the batch, ``P_c`` its size in the training set.
* ``as_coded`` (the reference as coded, ``GaussianSynthesisLabel.update``): one constant
  ``w = 1 - beta_m``; the reference computes ``min(1, mean(h_c).size(0) / 5000)``, and
  ``size(0)`` of a class mean is D, so ``beta_m = 1 - min(1, D / 5000)``
  (:func:`as_coded_beta`; 0.96 for D = 200, 0 for ResNet-18's D = 32768).
* ``last_batch``: ``w_c = 1`` (``as_coded`` with ``beta_m = 0``): a present class takes
  the last batch's mean/std.

All then clip ``sigma <- min(sigma, sigma_clip)`` elementwise (the reference's 0.1).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

# The reference's ``predefined_number_per_class`` (FeatureSynthesis base class; the
# per-dataset table in spliter.py is never used by the estimator).
REFERENCE_CLASS_SIZE = 5000.0


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


def as_coded_beta(dim: int) -> float:
  """The reference's client EMA factor as coded: ``1 - min(1, D / 5000)``."""
  return 1.0 - min(1.0, dim / REFERENCE_CLASS_SIZE)


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


def ema_weight(
  count: jax.Array,
  class_total: jax.Array,
  rule: str = "count_ema",
  beta: jax.Array | float | None = None,
) -> jax.Array:
  """The per-class EMA weight ``w_c = 1 - beta_m`` of one update.

  Args:
    count: f32[C] rows of each class in the batch.
    class_total: f32[C] P_c, class sizes of the training set (``count_ema``).
    rule: ``count_ema``, ``as_coded`` or ``last_batch``.
    beta: f32[] beta_m of ``as_coded`` (a traced, sweepable scalar).

  Returns:
    f32[C] weights (for every class; the caller masks absent classes).
  """
  if rule == "count_ema":
    return jnp.minimum(1.0, count / jnp.maximum(class_total, 1.0))
  if rule == "last_batch":
    return jnp.ones_like(count)
  if rule == "as_coded":
    if beta is None:
      raise ValueError("rule='as_coded' needs beta (as_coded_beta(D) for the reference)")
    return jnp.broadcast_to(1.0 - jnp.asarray(beta, count.dtype), count.shape)
  raise ValueError(f"unknown estimator rule {rule!r}; use count_ema, as_coded or last_batch")


def update_stats(
  stats: FeatureStats,
  h: jax.Array,
  y: jax.Array,
  class_total: jax.Array,
  *,
  rule: str = "count_ema",
  beta: jax.Array | float | None = None,
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
    rule: ``count_ema``, ``as_coded`` or ``last_batch`` (see the module docstring).
    beta: beta_m for ``rule="as_coded"``.
    last_batch: shorthand for ``rule="last_batch"`` (kept for old callers).
    update_sigma: False keeps sigma fixed (``std_mode="fixed"``).
    sigma_clip: elementwise upper bound on sigma after the update; None = no clip.
    mask: optional bool[B] of valid rows.

  Returns:
    The updated FeatureStats.
  """
  h = jax.lax.stop_gradient(h.reshape(h.shape[0], -1).astype(jnp.float32))
  count, mean, std = class_moments(h, y, stats.mu.shape[0], mask)
  w = ema_weight(count, class_total, "last_batch" if last_batch else rule, beta)
  w_mu = jnp.where(count >= 1, w, 0.0)[:, None]
  mu = (1.0 - w_mu) * stats.mu + w_mu * mean
  sigma = stats.sigma
  if update_sigma:
    # The reference skips the std update when it is NaN (torch std of one row).
    w_sd = jnp.where(count >= 2, w, 0.0)[:, None]
    sigma = (1.0 - w_sd) * sigma + w_sd * std
  if sigma_clip is not None:
    sigma = jnp.minimum(sigma, sigma_clip)
  return FeatureStats(mu, sigma)
