"""FedFed's augmentations as pure JAX functions of a key (vmap them per client).

RandAugment is not implemented (the reference uses none for Fashion-MNIST; on CIFAR
this is a documented deviation).
"""

import jax
import jax.numpy as jnp


def crop_flip(key: jax.Array, x: jax.Array, pad: int, flip: bool) -> jax.Array:
  """Random crop after zero padding by ``pad`` and a random horizontal flip, per image.

  Args:
    x: [B, H, W, C].
  """
  b, h, w, _ = x.shape
  kc, kf = jax.random.split(key)
  off = jax.random.randint(kc, (b, 2), 0, 2 * pad + 1)
  xp = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  out = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, x.shape[3])))(
    xp, off)
  if not flip:
    return out
  f = jax.random.bernoulli(kf, 0.5, (b,))
  return jnp.where(f[:, None, None, None], out[:, :, ::-1], out)


def mixup(key: jax.Array, x: jax.Array, alpha: float):
  """(mixed x, permutation, lambda): lam ~ Beta(alpha, alpha), x' = lam x + (1-lam) x[perm]."""
  kl, kp = jax.random.split(key)
  lam = jax.random.beta(kl, alpha, alpha)
  perm = jax.random.permutation(kp, x.shape[0])
  return lam * x + (1.0 - lam) * x[perm], perm, lam


def cutout(key: jax.Array, x: jax.Array, size: int) -> jax.Array:
  """One ``size`` x ``size`` hole per image, centre uniform in the image, clipped."""
  b, h, w, _ = x.shape
  c = jax.random.randint(key, (b, 2), 0, jnp.array([h, w]))
  rows, cols = jnp.arange(h)[None, :, None], jnp.arange(w)[None, None, :]
  cy, cx = c[:, 0, None, None], c[:, 1, None, None]
  hole = ((rows >= cy - size // 2) & (rows < cy - size // 2 + size)
          & (cols >= cx - size // 2) & (cols < cx - size // 2 + size))
  return jnp.where(hole[..., None], 0.0, x)


def mosaic(key: jax.Array, x: jax.Array, num: int) -> jax.Array:
  """``num`` mosaics of four (H/2 x W/2) crops (offsets in [0, H/2]) of random batch
  images, one per quadrant, then Cutout with one (H/2)-pixel hole (spec §4.1 pass 2).

  Args:
    x: [B, H, W, C]; returns [num, H, W, C].
  """
  b, h, w, c = x.shape
  hh, hw = h // 2, w // 2
  ki, ko, kc = jax.random.split(key, 3)
  src = jax.random.randint(ki, (num, 4), 0, b)
  off = jax.random.randint(ko, (num, 4, 2), 0, jnp.array([h - hh + 1, w - hw + 1]))

  def one(s, o):
    tiles = [jax.lax.dynamic_slice(x[s[i]], (o[i, 0], o[i, 1], 0), (hh, hw, c)) for i in range(4)]
    top = jnp.concatenate(tiles[:2], axis=1)
    bot = jnp.concatenate(tiles[2:], axis=1)
    out = jnp.concatenate([top, bot], axis=0)
    return jnp.pad(out, ((0, h - 2 * hh), (0, w - 2 * hw), (0, 0)))

  return cutout(kc, jax.vmap(one)(src, off), hh)
