"""How far a shared feature estimate is from the true class statistics.

``estimate_error(stats, h, y, C)`` compares a per-class diagonal Gaussian ``(mu, sigma)``
with the exact per-class mean and within-class std (ddof 0) of features ``h`` (e.g. the
current global model's features of the training set):

* ``rel_mean_err[c] = ||mu_c - m_c||_2 / ||m_c||_2``;
* ``sigma_ratio[c] = mean_d sigma_cd / mean_d s_cd``: below 1, fake features are tighter
  than real ones (the reference's 0.1 clip does this when real stds exceed 0.1).

Classes with no rows in ``h`` are left out of the class averages.
"""

import jax
import jax.numpy as jnp

from jaxlab.methods.fedimpro.estimator import FeatureStats


def true_class_stats(
  h: jax.Array, y: jax.Array, num_classes: int
) -> tuple[jax.Array, FeatureStats]:
  """Per-class count f32[C] and exact mean / population std FeatureStats [C, D]."""
  h = h.reshape(h.shape[0], -1).astype(jnp.float32)
  onehot = jax.nn.one_hot(y, num_classes, dtype=h.dtype)
  n = onehot.sum(0)
  mean = (onehot.T @ h) / jnp.maximum(n, 1.0)[:, None]
  dev = h - onehot @ mean
  var = (onehot.T @ (dev * dev)) / jnp.maximum(n, 1.0)[:, None]
  return n, FeatureStats(mean, jnp.sqrt(var))


def estimate_error(
  stats: FeatureStats, h: jax.Array, y: jax.Array, num_classes: int
) -> dict[str, jax.Array]:
  """Errors of ``stats`` against the true class statistics of ``h``.

  Args:
    stats: the estimate, FeatureStats [C, D].
    h: f32[N, ...] features.
    y: int[N] labels.
    num_classes: C.

  Returns:
    ``rel_mean_err`` f32[C], ``sigma_ratio`` f32[C] (NaN for absent classes), and their
    means over present classes ``est_rel_mean_err``, ``est_sigma_ratio``, plus the mean
    estimated sigma ``est_sigma`` and mean true within-class std ``true_std``.
  """
  n, true = true_class_stats(h, y, num_classes)
  present = n > 0
  err = jnp.linalg.norm(stats.mu - true.mu, axis=1) / jnp.maximum(
    jnp.linalg.norm(true.mu, axis=1), 1e-12)
  ratio = stats.sigma.mean(1) / jnp.maximum(true.sigma.mean(1), 1e-12)
  k = jnp.maximum(present.sum(), 1)

  def avg(v):
    return jnp.where(present, v, 0.0).sum() / k

  return {
    "rel_mean_err": jnp.where(present, err, jnp.nan),
    "sigma_ratio": jnp.where(present, ratio, jnp.nan),
    "est_rel_mean_err": avg(err),
    "est_sigma_ratio": avg(ratio),
    "est_sigma": avg(stats.sigma.mean(1)),
    "true_std": avg(true.sigma.mean(1)),
  }
