"""Weak and strong views as pure JAX functions of a key (one example; vmap for a batch).

Images are f32 [H, W, C] in [0, 1]. Weak = random crop with zero padding + horizontal
flip (torchvision ``RandomCrop(padding=p)``, ``RandomHorizontalFlip``). Strong =
a RandAugment subset (FixMatch's RandAugmentMC style: n ops drawn uniformly, each
applied with probability 1/2 at a random magnitude up to m) then the weak pipeline;
colour jitter + random grayscale only for colour images. The op list is a subset and
no PIL pixel parity is attempted (spec §6: a documented deviation).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp


class AugConfig(NamedTuple):
  """Static augmentation settings (hashable)."""
  crop_pad: int = 4
  flip: bool = True
  strong: str = "weak"            # "weak" (FMNIST: weak pipeline twice) or "randaugment"
  ra_n: int = 3
  ra_m: int = 5
  color_jitter: float = 0.0       # strength (SVHN: 0.8); only applied when C == 3
  mean: tuple = (0.5,)
  std: tuple = (0.5,)


def crop_flip(x: jax.Array, key: jax.Array, pad: int, flip: bool = True) -> jax.Array:
  """Random crop of the zero-padded image back to its size, then a random flip."""
  h, w, _ = x.shape
  k1, k2, k3 = jax.random.split(key, 3)
  if pad > 0:
    xp = jnp.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    i = jax.random.randint(k1, [], 0, 2 * pad + 1)
    j = jax.random.randint(k2, [], 0, 2 * pad + 1)
    x = jax.lax.dynamic_slice(xp, (i, j, 0), x.shape)
  if flip:
    x = jnp.where(jax.random.bernoulli(k3), x[:, ::-1], x)
  return x


def _shift(x: jax.Array, s: jax.Array, axis: int) -> jax.Array:
  """Translate by ``s`` pixels along ``axis``, filling with zeros."""
  n = x.shape[axis]
  pos = jnp.arange(n) - s
  keep = (pos >= 0) & (pos < n)
  shape = [1, 1, 1]
  shape[axis] = n
  return jnp.roll(x, s, axis=axis) * keep.reshape(shape)


def _cutout(x: jax.Array, key: jax.Array, size: jax.Array) -> jax.Array:
  h, w, _ = x.shape
  ci, cj = jax.random.randint(key, [2], 0, jnp.array([h, w]))
  ii, jj = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
  hole = (jnp.abs(ii - ci) <= size // 2) & (jnp.abs(jj - cj) <= size // 2)
  return jnp.where(hole[..., None], 0.5, x)


def _ops(x: jax.Array, v: jax.Array, key: jax.Array):
  """The RandAugment subset; ``v`` in (0, 1] is the relative magnitude."""
  h = x.shape[0]
  mean = x.mean()
  lo, hi = x.min((0, 1)), x.max((0, 1))
  shift = jnp.round(v * 0.3 * h).astype(jnp.int32)
  bits = 8 - jnp.round(v * 4).astype(jnp.int32)
  q = (2.0 ** bits.astype(jnp.float32))
  return [
    lambda: x,                                                    # identity
    lambda: (x - lo) / jnp.maximum(hi - lo, 1e-3),                # autocontrast
    lambda: x * (1.0 - 0.9 * v),                                  # brightness (darker)
    lambda: mean + (x - mean) * (1.0 - 0.9 * v),                  # contrast (lower)
    lambda: jnp.floor(x * (q - 1e-3)) / q,                        # posterize 8 -> 4 bits
    lambda: jnp.where(x >= 1.0 - v, 1.0 - x, x),                  # solarize
    lambda: _shift(x, shift, 0),                                  # translate y
    lambda: _shift(x, shift, 1),                                  # translate x
    lambda: _cutout(x, key, jnp.round(v * 0.5 * h).astype(jnp.int32)),   # cutout
  ]


NUM_OPS = 9


def rand_augment(x: jax.Array, key: jax.Array, n: int, m: int) -> jax.Array:
  """``n`` ops drawn uniformly, each applied with probability 1/2 at magnitude
  uniform in [1, m] (out of 10)."""
  for k in jax.random.split(key, n):
    ko, kp, kv, kc = jax.random.split(k, 4)
    op = jax.random.randint(ko, [], 0, NUM_OPS)
    v = jax.random.uniform(kv, [], minval=1.0, maxval=max(m, 1)) / 10.0
    out = jax.lax.switch(op, [lambda f=f: f() for f in _ops(x, v, kc)])
    x = jnp.clip(jnp.where(jax.random.bernoulli(kp), out, x), 0.0, 1.0)
  return x


def color_jitter(x: jax.Array, key: jax.Array, strength: float) -> jax.Array:
  """Brightness/contrast/saturation jitter (p = 0.8), then grayscale (p = 0.2)."""
  kb, kc, ks, kp, kg = jax.random.split(key, 5)
  f = lambda k: jax.random.uniform(k, [], minval=1 - strength, maxval=1 + strength)
  gray = lambda im: jnp.broadcast_to((im * jnp.array([0.299, 0.587, 0.114])).sum(-1,
                                      keepdims=True), im.shape)
  y = x * f(kb)
  y = y.mean() + (y - y.mean()) * f(kc)
  y = gray(y) + (y - gray(y)) * f(ks)
  y = jnp.where(jax.random.bernoulli(kp, 0.8), jnp.clip(y, 0, 1), x)
  return jnp.where(jax.random.bernoulli(kg, 0.2), gray(y), y)


def normalise(x: jax.Array, cfg: AugConfig) -> jax.Array:
  return (x - jnp.asarray(cfg.mean, jnp.float32)) / jnp.asarray(cfg.std, jnp.float32)


def weak(x: jax.Array, key: jax.Array, cfg: AugConfig) -> jax.Array:
  k1, k2 = jax.random.split(key)
  if cfg.color_jitter > 0 and x.shape[-1] == 3:
    x = color_jitter(x, k2, cfg.color_jitter)
  return crop_flip(x, k1, cfg.crop_pad, cfg.flip)


def strong(x: jax.Array, key: jax.Array, cfg: AugConfig) -> jax.Array:
  k1, k2 = jax.random.split(key)
  if cfg.strong == "randaugment":
    x = rand_augment(x, k2, cfg.ra_n, cfg.ra_m)
  return weak(x, k1, cfg)


def views(x: jax.Array, key: jax.Array, cfg: AugConfig) -> tuple[jax.Array, jax.Array]:
  """(weak, strong) normalised views of a batch ``x`` [B, H, W, C] in [0, 1]."""
  kw, ks = jax.random.split(key)
  b = x.shape[0]
  xw = jax.vmap(lambda im, k: weak(im, k, cfg))(x, jax.random.split(kw, b))
  xs = jax.vmap(lambda im, k: strong(im, k, cfg))(x, jax.random.split(ks, b))
  return normalise(xw, cfg), normalise(xs, cfg)
