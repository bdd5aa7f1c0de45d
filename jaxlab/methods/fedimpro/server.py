"""Server-side aggregation of the clients' feature statistics, and upload noise.

* ``uniform`` (reference default, ``estimate_mode="selected"``): the plain mean of the
  uploaded ``mu`` and of the uploaded ``sigma`` over this round's real clients; it
  replaces the global estimate (paper Eq. 7 with ``beta_g = 0``).
* ``label_size``: every client is weighted per class by its share of that class,
  ``w_kc = n_kc / sum_k n_kc``; ``mu_c = sum_k w_kc mu_kc`` and, by the law of total
  variance, ``sigma_c^2 = sum_k w_kc sigma_kc^2 + sum_k w_kc (mu_kc - mu_c)^2``. With
  ``include_unsampled=True`` (the reference's ``estimate_mode="all"``) the clients not
  sampled this round count with their class sizes but contribute the previous global
  estimate.

``server_beta`` keeps an exponential moving average: ``g <- beta g + (1 - beta) new``.
"""

import jax
import jax.numpy as jnp

from jaxlab.methods.fedimpro.estimator import FeatureStats


def add_upload_noise(stats: FeatureStats, key: jax.Array, std: jax.Array) -> FeatureStats:
  """Adds ``N(0, std^2)`` noise to both uploaded ``mu`` and ``sigma`` (paper sigma_eps).

  Args:
    stats: one client's FeatureStats [C, D].
    key: PRNG key of this client's upload.
    std: f32[] noise standard deviation (0 = no noise; a traced, sweepable scalar).

  Returns:
    The noised FeatureStats.
  """
  k_mu, k_sd = jax.random.split(key)
  return FeatureStats(
    stats.mu + std * jax.random.normal(k_mu, stats.mu.shape, stats.mu.dtype),
    stats.sigma + std * jax.random.normal(k_sd, stats.sigma.shape, stats.sigma.dtype),
  )


def uniform_mean(uploads: FeatureStats, weight: jax.Array, prev: FeatureStats) -> FeatureStats:
  """Uniform mean over the real clients of the round.

  Args:
    uploads: FeatureStats stacked [S, C, D].
    weight: f32[S]; clients with weight <= 0 are padding and drop out.
    prev: the previous global estimate, returned unchanged if no client is real.

  Returns:
    FeatureStats [C, D].
  """
  real = (weight > 0).astype(jnp.float32)
  total = real.sum()
  w = real / jnp.maximum(total, 1.0)
  mu = jnp.tensordot(w, uploads.mu, axes=1)
  sigma = jnp.tensordot(w, uploads.sigma, axes=1)
  keep = total > 0
  return FeatureStats(jnp.where(keep, mu, prev.mu), jnp.where(keep, sigma, prev.sigma))


def total_variance(
  mu: jax.Array, sigma: jax.Array, counts: jax.Array
) -> FeatureStats:
  """Label-size weighted pooling by the law of total variance.

  Args:
    mu: f32[S, C, D] per-client class means.
    sigma: f32[S, C, D] per-client class stds (population, ddof 0, for an exact pool).
    counts: f32[S, C] per-client class sizes n_kc.

  Returns:
    FeatureStats [C, D]: the mean and std of the pooled class populations. A class
    with no samples anywhere gets the uniform mean of mu and sigma.
  """
  total = counts.sum(0)  # [C]
  w = jnp.where(total > 0, counts / jnp.maximum(total, 1e-12), 1.0 / counts.shape[0])
  w = w[:, :, None]  # [S, C, 1]
  mu_g = (w * mu).sum(0)
  var = (w * sigma**2).sum(0) + (w * (mu - mu_g) ** 2).sum(0)
  return FeatureStats(mu_g, jnp.sqrt(jnp.maximum(var, 0.0)))


def label_size_mean(
  uploads: FeatureStats,
  counts: jax.Array,
  prev: FeatureStats,
  rest_counts: jax.Array | None = None,
) -> FeatureStats:
  """Label-size weighted aggregation of a round's uploads.

  Args:
    uploads: FeatureStats stacked [S, C, D].
    counts: f32[S, C] class sizes of the uploading clients (0 rows for padding).
    prev: the previous global estimate [C, D].
    rest_counts: optional f32[C], the summed class sizes of the clients NOT sampled
      this round; they contribute ``prev`` (the reference's ``estimate_mode="all"``).

  Returns:
    FeatureStats [C, D].
  """
  mu, sigma = uploads.mu, uploads.sigma
  if rest_counts is not None:
    mu = jnp.concatenate([mu, prev.mu[None]], 0)
    sigma = jnp.concatenate([sigma, prev.sigma[None]], 0)
    counts = jnp.concatenate([counts, rest_counts[None]], 0)
  out = total_variance(mu, sigma, counts)
  seen = (counts.sum(0) > 0)[:, None]
  return FeatureStats(jnp.where(seen, out.mu, prev.mu), jnp.where(seen, out.sigma, prev.sigma))


def ema(prev: FeatureStats, new: FeatureStats, beta: jax.Array) -> FeatureStats:
  """``beta * prev + (1 - beta) * new`` (paper Eq. 7's beta_g; 0 = replace)."""
  return jax.tree.map(lambda p, n: beta * p + (1.0 - beta) * n, prev, new)
