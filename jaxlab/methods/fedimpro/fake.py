"""Class-balanced fake features and the fake-loss weight schedule."""

from typing import Literal

import jax
import jax.numpy as jnp

from jaxlab.core.errors import ConfigError
from jaxlab.methods.fedimpro.estimator import FeatureStats

WeightSchedule = Literal["linear_unclamped", "linear_clamped", "constant", "half_half"]


def balanced_labels(batch_size: int, num_classes: int) -> jax.Array:
  """The reference's fake labels: ``tile(arange(C), B // C + 1)``.

  Args:
    batch_size: B, the real batch size.
    num_classes: C.

  Returns:
    int32[C * (B // C + 1)]; every class appears exactly ``B // C + 1`` times.
  """
  reps = batch_size // num_classes + 1
  return jnp.tile(jnp.arange(num_classes, dtype=jnp.int32), reps)


def sample_fake(
  key: jax.Array, stats: FeatureStats, labels: jax.Array
) -> jax.Array:
  """Draws ``h_hat = mu[y] + sigma[y] * eps`` for the given labels, gradient-free.

  Args:
    key: PRNG key.
    stats: FeatureStats [C, D].
    labels: int[M] fake labels.

  Returns:
    f32[M, D] fake features, wrapped in stop_gradient: they are constants of the
    loss, so their gradients reach only the high-level parameters.
  """
  mu, sigma = stats.mu[labels], stats.sigma[labels]
  eps = jax.random.normal(key, mu.shape, mu.dtype)
  return jax.lax.stop_gradient(mu + sigma * eps)


def fake_weight(
  epoch: jax.Array, max_epochs: jax.Array, schedule: WeightSchedule = "linear_unclamped"
) -> jax.Array:
  """The fake-loss weight at global epoch ``t`` (reference ``gradual2half``: t / T).

  Args:
    epoch: f32[] or int[] global epoch index t (the round for E = 1).
    max_epochs: f32[] T (500 in the reference; a sweepable scalar).
    schedule: ``linear_unclamped`` t/T (reference, reaches 2 at t = 2T);
      ``linear_clamped`` min(1, t/T); ``constant`` 1 (paper Eq. 5); ``half_half``
      min(1, t/T) used as ``(1 - w) real + w fake`` by the loss.

  Returns:
    f32[] weight.
  """
  t = jnp.asarray(epoch, jnp.float32) / jnp.maximum(jnp.asarray(max_epochs, jnp.float32), 1e-12)
  if schedule == "linear_unclamped":
    return t
  if schedule in ("linear_clamped", "half_half"):
    return jnp.minimum(t, 1.0)
  if schedule == "constant":
    return jnp.ones_like(t)
  raise ConfigError(
    f"unknown fake_weight_sched {schedule!r}; use one of linear_unclamped, "
    "linear_clamped, constant, half_half"
  )
