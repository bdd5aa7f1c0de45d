"""FedFed's phase-1 losses: the three local passes (spec §4.1), pure functions.

``variables`` are the CVAE's ``{"params", "batch_stats"}``; each pass returns
``(loss, new batch_stats)`` and forwards only what its loss uses, so the parts a
pass does not train keep their BN statistics too.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab.methods.fedfed import augment
from jaxlab.methods.fedfed.config import FedFedConfig
from jaxlab.methods.fedfed.vae import CVAE

# Loss scales (re, ce, kl, x_ce) per client property: 0 none, 1 quantity skew, 2 label skew.
PROPERTY_SCALES = np.array([[1.0, 1.0, 1.0, 1.0], [5.0, 1.0, 0.5, 1.0], [1.0, 5.0, 5.0, 5.0]],
                           np.float32)


def client_properties(n: np.ndarray, class_counts: np.ndarray, quantity_frac: float = 0.2,
                      label_frac: float = 0.7) -> np.ndarray:
  """Host: int32[K] property per client: 1 if n_k < q·N/K (quantity skew), 2 if
  n_k > q·N/K and its largest class holds > l·n_k samples (label skew), else 0."""
  n = np.asarray(n, np.float64)
  cut = quantity_frac * n.sum() / len(n)
  prop = np.zeros(len(n), np.int32)
  prop[n < cut] = 1
  prop[(n > cut) & (np.asarray(class_counts).max(1) > label_frac * n)] = 2
  return prop


def ce(logits: jax.Array, y: jax.Array) -> jax.Array:
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def kl(mu: jax.Array, logvar: jax.Array, channels: int) -> jax.Array:
  """-1/2 sum(1 + logvar - mu^2 - e^logvar) / (B·channels·z), as coded."""
  s = jnp.sum(1.0 + logvar - mu ** 2 - jnp.exp(logvar))
  return -0.5 * s / (mu.shape[0] * channels * mu.shape[1])


def add_noise(key: jax.Array, xs: jax.Array, sigma: jax.Array, per_batch: int | None = None
              ) -> jax.Array:
  """xs + N(0, sigma^2): one draw per sample, or with ``per_batch`` one draw per block of
  ``per_batch`` consecutive rows broadcast over the block (the reference's quirk)."""
  if per_batch is None:
    return xs + sigma * jax.random.normal(key, xs.shape)
  nb = -(-xs.shape[0] // per_batch)
  noise = jax.random.normal(key, (nb, *xs.shape[1:]))
  return xs + sigma * jnp.repeat(noise, per_batch, axis=0)[: xs.shape[0]]


def _apply(module: CVAE, variables: dict, method, *args):
  out, new = module.apply(variables, *args, method=method, mutable=["batch_stats"])
  return out, new["batch_stats"]


def classifier_pass(module, cfg: FedFedConfig, variables, x, y, key, scales):
  """Pass 1, classifier warm-up: mixup on crop/flip images, CE through g only."""
  del scales
  ka, km = jax.random.split(key)
  x = augment.crop_flip(ka, x, cfg.crop_pad, cfg.flip)
  mixed, perm, lam = augment.mixup(km, x, cfg.mixup_alpha)
  logits, bs = _apply(module, variables, CVAE.classify, mixed, True)
  return lam * ce(logits, y) + (1.0 - lam) * ce(logits, y[perm]), bs


def vae_pass(module, cfg: FedFedConfig, variables, x, y, key, scales):
  """Pass 2, VAE warm-up: mosaic + Cutout batch, re·MSE + kl·KL (g untouched)."""
  del y
  ka, km, kz = jax.random.split(key, 3)
  xa = augment.mosaic(km, augment.crop_flip(ka, x, cfg.crop_pad, cfg.flip), cfg.vae_aug_batch)
  (xr, mu, lv), bs = _apply(module, variables, CVAE.reconstruct, xa, True, kz)
  loss = (scales[0] * cfg.recon_weight * jnp.mean((xr - xa) ** 2)
          + scales[2] * cfg.kl_weight * kl(mu, lv, x.shape[-1]))
  return loss, bs


def joint_pass(module, cfg: FedFedConfig, variables, x, y, key, scales, sigma1, sigma2):
  """Pass 3: re·MSE(x_r, x) + ce·CE(g([x~1; x~2]), [y; y]) + kl·KL + x_ce·CE(g(x), y)."""
  ka, kz, k1, k2 = jax.random.split(key, 4)
  x = augment.crop_flip(ka, x, cfg.crop_pad, cfg.flip)
  (xr, mu, lv), bs = _apply(module, variables, CVAE.reconstruct, x, True, kz)
  xs = x - xr
  pb = x.shape[0] if cfg.quirk_noise_per_batch else None
  x1, x2 = add_noise(k1, xs, sigma1, pb), add_noise(k2, xs, sigma2, pb)
  b = x.shape[0]
  logits, bs = _apply(module, {**variables, "batch_stats": bs}, CVAE.classify,
                      jnp.concatenate([x1, x2, x]), True)
  loss = (scales[0] * cfg.recon_weight * jnp.mean((xr - x) ** 2)
          + scales[1] * cfg.ce_weight * ce(logits[: 2 * b], jnp.concatenate([y, y]))
          + scales[2] * cfg.kl_weight * kl(mu, lv, x.shape[-1])
          + scales[3] * cfg.x_ce_weight * ce(logits[2 * b:], y))
  return loss, bs
