"""Why FedFed helps or not at a given scale: what the shared features carry.

Reconstruction error of the VAE, the share of the image energy left in x_s, and the
class separability of raw x, x_r, x_s and noised x_s measured by a nearest-class-mean
classifier (means from training rows, accuracy on test rows), plus the accuracy of
the VAE's own classifier g.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.methods.fedfed import losses, share
from jaxlab.methods.fedfed.vae import CVAE


def ncm_accuracy(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray,
                 y_test: np.ndarray, num_classes: int) -> float:
  """Nearest-class-mean accuracy (Euclidean) of flattened features."""
  a, b = f_train.reshape(len(f_train), -1), f_test.reshape(len(f_test), -1)
  means = np.stack([a[y_train == c].mean(0) if np.any(y_train == c) else np.full(a.shape[1], np.inf)
                    for c in range(num_classes)])
  d = ((b[:, None, :] - means[None]) ** 2).sum(-1)
  return float((d.argmin(1) == y_test).mean())


def measure(module: CVAE, variables: dict, x_train: jax.Array, y_train: np.ndarray,
            x_test: jax.Array, y_test: np.ndarray, sigma1: float, key: jax.Array,
            num_classes: int) -> dict:
  """Diagnostics of one trained VAE on [0, 1] images (small subsets; host floats)."""
  xr_tr, xs_tr = jax.jit(lambda x: share.split(module, variables, x))(x_train)
  xr_te, xs_te = jax.jit(lambda x: share.split(module, variables, x))(x_test)
  k1, k2 = jax.random.split(key)
  n_tr = losses.add_noise(k1, xs_tr, sigma1)
  n_te = losses.add_noise(k2, xs_te, sigma1)
  g = module.apply(variables, x_test, False, method=CVAE.classify)
  host = lambda a: np.asarray(jax.device_get(a), np.float64)
  feats = {"x": (x_train, x_test), "x_r": (xr_tr, xr_te), "x_s": (xs_tr, xs_te),
           "x_s_noised": (n_tr, n_te)}
  out = {f"ncm_acc_{k}": ncm_accuracy(host(a), y_train, host(b), y_test, num_classes)
         for k, (a, b) in feats.items()}
  out["recon_mse"] = float(jnp.mean((xr_te - x_test) ** 2))
  out["xs_energy_frac"] = float(jnp.sum(xs_te ** 2) / jnp.sum(x_test ** 2))
  out["g_test_acc"] = float(jnp.mean(g.argmax(-1) == jnp.asarray(y_test)))
  return out
