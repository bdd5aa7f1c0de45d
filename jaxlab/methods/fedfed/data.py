"""Image arrays for the FedFed studies: bundled MNIST / Fashion-MNIST, a user's local
CIFAR-10, or tiny random sets for smoke runs. Images stay uint8; the VAE and both
classifiers see [0, 1] pixels (``schedule.default_preprocess``), as in the reference."""

from typing import NamedTuple

import numpy as np

from jaxlab.core.errors import AssetMissingError, DataError

CIFAR_HINT = ("CIFAR-10 not found: put it in the local Hugging Face cache as 'cifar10' (train and"
              " test splits with 'img' and 'label' columns) or pass --set dataset=PATH (a"
              " save_to_disk folder with dataset_dict.json); jaxlab never downloads")


class Arrays(NamedTuple):
  x_train: np.ndarray  # uint8 [N, H, W, C]
  y_train: np.ndarray  # int32 [N]
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int


def stratified_subset(y: np.ndarray, size: int, seed: int) -> np.ndarray:
  """Sorted ids of a class-stratified random subset of ``size`` rows (0 = all)."""
  if not size or size >= len(y):
    return np.arange(len(y))
  rs = np.random.RandomState(seed)
  keep = [rs.choice(np.flatnonzero(y == c), max(1, round(size * np.mean(y == c))), replace=False)
          for c in np.unique(y)]
  return np.sort(np.concatenate(keep))


def random_images(shape: tuple[int, ...], n_train: int, n_test: int, seed: int = 0) -> Arrays:
  """Tiny random uint8 images with a weak class signal (smoke runs only, never a result)."""
  rs = np.random.RandomState(seed)

  def make(n):
    y = rs.randint(0, 10, n).astype(np.int32)
    x = rs.randint(0, 200, (n, *shape)) + 5 * y.reshape(-1, *[1] * len(shape))
    return x.astype(np.uint8), y

  return Arrays(*make(n_train), *make(n_test), 10)


def _images(split) -> np.ndarray:
  import datasets

  from jaxlab.data import to_numpy
  col = "img" if "img" in split.column_names else "image"
  if col not in split.column_names:
    raise DataError(f"dataset has columns {split.column_names}; need 'img' or 'image' + 'label'")
  if isinstance(split.features[col], datasets.Image):
    x = np.stack([np.asarray(im, np.uint8) for im in split[col]])
  else:
    x = to_numpy(split, [col])[col].astype(np.uint8)
  return x[..., None] if x.ndim == 3 else x


def load(name: str, train_size: int = 0, test_size: int = 0, seed: int = 0) -> Arrays:
  """``name``: mnist, fashion_mnist, cifar10 (local cache or path), random_cifar, random_mnist."""
  if name == "random_cifar":
    return random_images((32, 32, 3), 256, 64, seed)
  if name == "random_mnist":
    return random_images((28, 28, 1), 256, 64, seed)
  from jaxlab.data import load as load_dd
  from jaxlab.data import to_numpy
  try:
    dd = load_dd(name)
  except DataError:
    if "cifar" in name.lower():
      raise AssetMissingError(CIFAR_HINT) from None
    raise
  if "train" not in dd or "test" not in dd:
    raise DataError(f"dataset {name!r} needs 'train' and 'test' splits; it has {list(dd)}")
  xtr, xte = _images(dd["train"]), _images(dd["test"])
  ytr = to_numpy(dd["train"], ["label"])["label"].astype(np.int32)
  yte = to_numpy(dd["test"], ["label"])["label"].astype(np.int32)
  tr, te = stratified_subset(ytr, train_size, seed), stratified_subset(yte, test_size, seed + 1)
  return Arrays(np.ascontiguousarray(xtr[tr]), ytr[tr], np.ascontiguousarray(xte[te]), yte[te],
                int(max(ytr.max(), yte.max())) + 1)
