"""Arrays for the FedImpro experiments: bundled MNIST/FMNIST, a local CIFAR-10, or a
tiny random CIFAR-shaped set (smoke tests)."""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core.errors import DataError

_NORM = {  # per-channel mean, std of [0, 1] pixels
  "mnist": ((0.1307,), (0.3081,)),
  "fashion_mnist": ((0.2860,), (0.3530,)),
  "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}


class Arrays(NamedTuple):
  x_train: np.ndarray  # uint8 [N, H, W] or [N, H, W, 3]
  y_train: np.ndarray  # int32 [N]
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int
  preprocess: Callable[[jax.Array], jax.Array]


def normaliser(mean, std) -> Callable[[jax.Array], jax.Array]:
  """uint8 [B, H, W(, C)] -> f32 [B, H, W, C], standardised per channel."""
  m, s = jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)

  def pre(x):
    x = x.astype(jnp.float32) / 255.0
    x = x[..., None] if x.ndim == 3 else x
    return (x - m) / s

  return pre


def stratified_subset(y: np.ndarray, size: int, seed: int) -> np.ndarray:
  """Sorted indices of a class-stratified random subset of ``size`` rows (0 = all)."""
  if not size or size >= len(y):
    return np.arange(len(y))
  rs = np.random.RandomState(seed)
  classes = np.unique(y)
  keep = []
  for c in classes:
    idx = np.flatnonzero(y == c)
    keep.append(rs.choice(idx, max(1, round(size * len(idx) / len(y))), replace=False))
  return np.sort(np.concatenate(keep))


def random_cifar(n_train: int = 256, n_test: int = 64, seed: int = 0) -> tuple:
  """A tiny random CIFAR-shaped set (uint8 [N, 32, 32, 3], 10 classes) with a weak
  class signal, for smoke tests (never a result)."""
  rs = np.random.RandomState(seed)
  def make(n):
    y = rs.randint(0, 10, n).astype(np.int32)
    x = rs.randint(0, 200, (n, 32, 32, 3)) + 5 * y[:, None, None, None]
    return x.astype(np.uint8), y
  return (*make(n_train), *make(n_test))


def _image_column(split) -> np.ndarray:
  from jaxlab.data import to_numpy

  col = "img" if "img" in split.column_names else "image"
  if col not in split.column_names:
    raise DataError(f"dataset has columns {split.column_names}; need 'img' or 'image' + 'label'")
  import datasets

  if isinstance(split.features[col], datasets.Image):  # PIL images: decode row by row
    return np.stack([np.asarray(im, np.uint8) for im in split[col]])
  return to_numpy(split, [col])[col]


def load(name: str, train_size: int = 0, test_size: int = 0, seed: int = 0) -> Arrays:
  """Loads ``name`` (offline) and keeps stratified subsets of the given sizes."""
  if name == "random_cifar":
    xtr, ytr, xte, yte = random_cifar(seed=seed)
    key = "cifar10"
  else:
    from jaxlab.data import load as load_dd
    from jaxlab.data import to_numpy

    dd = load_dd(name)
    if "test" not in dd or "train" not in dd:
      raise DataError(f"dataset {name!r} needs 'train' and 'test' splits; it has {list(dd)}")
    xtr, xte = _image_column(dd["train"]), _image_column(dd["test"])
    ytr = to_numpy(dd["train"], ["label"])["label"].astype(np.int32)
    yte = to_numpy(dd["test"], ["label"])["label"].astype(np.int32)
    key = name if name in _NORM else ("cifar10" if xtr.ndim == 4 else "mnist")
  tr = stratified_subset(ytr, train_size, seed)
  te = stratified_subset(yte, test_size, seed + 1)
  return Arrays(np.ascontiguousarray(xtr[tr]), ytr[tr], np.ascontiguousarray(xte[te]), yte[te],
                int(max(ytr.max(), yte.max())) + 1, normaliser(*_NORM[key]))
