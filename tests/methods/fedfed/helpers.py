"""Tiny FedFed pieces shared by the tests (28x28x1 images, 4-channel VAE)."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.methods.fedfed import FedFedConfig
from jaxlab.methods.fedfed.vae import CVAE
from jaxlab.models import CNN

CFG = FedFedConfig(vae_width=4, vae_batch=8, vae_aug_batch=6, pool_batch=8)


def tiny_vae(channels: int = 1, size: int = 8) -> CVAE:
  g = CNN(num_classes=10, channels=(2, 4), hidden=8)
  return CVAE(width=4, image_size=(size, size), channels=channels, classifier=g)


def images(n: int, size: int = 8, channels: int = 1, seed: int = 0) -> jax.Array:
  return jax.random.uniform(jax.random.key(seed), (n, size, size, channels))


def labels(n: int, seed: int = 0) -> np.ndarray:
  return np.random.RandomState(seed).randint(0, 10, n).astype(np.int32)


def variables(module: CVAE, x: jax.Array, seed: int = 0) -> dict:
  return module.init(jax.random.key(seed), x)


def leaves_equal(a, b) -> list[bool]:
  return [bool(jnp.array_equal(x, y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))]
