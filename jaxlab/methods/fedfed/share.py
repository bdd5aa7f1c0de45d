"""The one-shot share: the final VAE in eval mode over every client's data, two noised
copies of the performance-sensitive part, one global pool (``fl.pool``).

x_r = decoder(mu(x)) (eval mode: h = mu, BN running statistics, no augmentation),
x_s = x - x_r, x~1 = x_s + N(0, sigma1^2), x~2 = x_s + N(0, sigma2^2).
"""

import jax
import jax.numpy as jnp

from jaxlab.federated import pool as pool_lib
from jaxlab.methods.fedfed import losses
from jaxlab.methods.fedfed.config import SIGMA1, SIGMA2, FedFedConfig
from jaxlab.methods.fedfed.vae import CVAE

VAE = "vae"   # ServerState.ext key of the handed-off phase-1 variables


def split(module: CVAE, variables: dict, x: jax.Array, chunk: int = 256):
  """(x_r, x_s) of images x [N, H, W, C] in [0, 1], eval mode, ``chunk`` rows at a time."""
  def one(xi):   # one image; lax.map vmaps it over ``chunk`` rows
    return module.apply(variables, xi[None], False, method=CVAE.reconstruct)[0][0]
  xr = jax.lax.map(one, x, batch_size=min(chunk, x.shape[0]))
  return xr, x - xr


def noised_copies(key: jax.Array, xs: jax.Array, sigma1, sigma2, per_batch: int | None = None):
  """The two shared copies x_s + N(0, sigma_i^2) (independent draws)."""
  k1, k2 = jax.random.split(key)
  return losses.add_noise(k1, xs, sigma1, per_batch), losses.add_noise(k2, xs, sigma2, per_batch)


def make_pool(module: CVAE, cfg: FedFedConfig, rows: int, preprocess) -> pool_lib.Pool:
  """A ``fl.pool.Pool`` of rows f32[2, H, W, C] (the two noised copies), one per sample.

  The pool is one array, not a dict (the engine's packed sweep path takes a pool
  leaf's runs flag as one bool); its labels follow from the index table
  (``resample.pool_labels``), since ``fl.pool.build`` keeps client order.

  Args:
    rows: the index-table width n_max (each client's map is padded to it).
    preprocess: uint8 rows -> f32 [B, H, W, C] in [0, 1].
  """
  per_batch = cfg.share_batch if cfg.quirk_noise_per_batch else None

  def map_fn(server, data, meta, key):
    row = jnp.take(data.idx, meta.id, axis=0, mode="fill", fill_value=0)
    x = preprocess(data.x[row])
    _, xs = split(module, server.ext[VAE], x)
    x1, x2 = noised_copies(key, xs, server.hparams[SIGMA1], server.hparams[SIGMA2], per_batch)
    return jnp.stack([x1, x2], axis=1), meta.n

  return pool_lib.Pool(rows, map_fn)


def handoff(phase_server, main_server):
  """Phase-1 server -> main server: the trained VAE variables into ``ext[VAE]``."""
  vae = {"params": phase_server.params, **phase_server.model_state}
  ext = main_server.ext if isinstance(main_server.ext, dict) else {}
  return main_server._replace(ext={**ext, VAE: vae})
