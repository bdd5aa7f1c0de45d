"""The batched weak/strong views equal a per-example NumPy crop/flip with the same draws."""

import jax
import numpy as np

from jaxlab.methods.twin_sight import augment


def _np_crop_flip(im, key, pad, flip):
  """Independent reference: draws as documented (split(key, 3): row, column, flip), then
  NumPy pad, slice and mirror."""
  k1, k2, k3 = jax.random.split(key, 3)
  h, w, _ = im.shape
  i = int(jax.random.randint(k1, [], 0, 2 * pad + 1)) if pad else 0
  j = int(jax.random.randint(k2, [], 0, 2 * pad + 1)) if pad else 0
  out = np.pad(np.asarray(im), ((pad, pad), (pad, pad), (0, 0)))[i:i + h, j:j + w]
  return out[:, ::-1] if flip and bool(jax.random.bernoulli(k3)) else out


def _np_views(x, key, cfg):
  kw, ks = jax.random.split(key)
  b = x.shape[0]
  weak, strong = [], []
  for kb, sb, im in zip(jax.random.split(kw, b), jax.random.split(ks, b), x):
    k1, _ = jax.random.split(kb)
    weak.append(_np_crop_flip(im, k1, cfg.crop_pad, cfg.flip))
    s1, s2 = jax.random.split(sb)
    im_s = augment.rand_augment(im, s2, cfg.ra_n, cfg.ra_m) if cfg.strong == "randaugment" else im
    strong.append(_np_crop_flip(im_s, jax.random.split(s1)[0], cfg.crop_pad, cfg.flip))
  norm = lambda a: (np.stack(a) - np.float32(cfg.mean[0])) / np.float32(cfg.std[0])
  return norm(weak), norm(strong)


def test_views_equal_per_example_reference_bitwise():
  x = jax.random.uniform(jax.random.key(0), (12, 10, 10, 1))
  for cfg in (augment.AugConfig(crop_pad=2), augment.AugConfig(crop_pad=4, flip=False),
              augment.AugConfig(crop_pad=2, strong="randaugment")):
    got = jax.jit(lambda a, k: augment.views(a, k, cfg))(x, jax.random.key(5))
    want = _np_views(x, jax.random.key(5), cfg)
    for g, w in zip(got, want):
      if cfg.strong == "randaugment":   # RandAugment's own arithmetic: eager vs jit, 1 ulp
        np.testing.assert_allclose(np.asarray(g), w, rtol=0, atol=1e-6)
      else:
        np.testing.assert_array_equal(np.asarray(g), w)
  assert not np.array_equal(np.asarray(got[0]), np.asarray(got[1]))   # two different views


def test_single_example_crop_flip_equals_reference():
  im = jax.random.uniform(jax.random.key(1), (9, 7, 3))
  for s in range(6):
    np.testing.assert_array_equal(np.asarray(augment.crop_flip(im, jax.random.key(s), 3)),
                                  _np_crop_flip(im, jax.random.key(s), 3, True))
