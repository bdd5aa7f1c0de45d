"""Labelled image datasets as NumPy arrays: stratified subsets, random smoke images."""

from typing import NamedTuple

import numpy as np

from jaxlab.core.errors import AssetMissingError, DataError


class ImageArrays(NamedTuple):
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


def random_images(shape: tuple[int, ...], n_train: int, n_test: int,
                  seed: int = 0) -> ImageArrays:
  """Tiny random uint8 images with a weak class signal (smoke runs only, never a result)."""
  rs = np.random.RandomState(seed)

  def make(n):
    y = rs.randint(0, 10, n).astype(np.int32)
    x = rs.randint(0, 200, (n, *shape)) + 5 * y.reshape(-1, *[1] * len(shape))
    return x.astype(np.uint8), y

  return ImageArrays(*make(n_train), *make(n_test), 10)


def split_images(split) -> np.ndarray:
  """uint8 [N, H, W, C] from a split's 'img' or 'image' column (a channel axis is added)."""
  import datasets

  from jaxlab.data.loading import to_numpy
  col = next((c for c in ("img", "image") if c in split.column_names), None)
  if col is None:
    raise DataError(f"dataset has columns {split.column_names}; need 'img' or 'image' + 'label'")
  if isinstance(split.features[col], datasets.Image):
    x = np.stack([np.asarray(im, np.uint8) for im in split[col]])
  else:
    x = to_numpy(split, [col])[col].astype(np.uint8)
  return x[..., None] if x.ndim == 3 else x


def image_arrays(name: str, train_size: int = 0, test_size: int = 0, seed: int = 0,
                 missing_hint: str | None = None) -> ImageArrays:
  """``jaxlab.data.load(name)`` as arrays, with stratified train/test subsets (0 = all).

  ``missing_hint``: raised as ``AssetMissingError`` when the dataset is not available
  offline (e.g. where to put a local CIFAR-10).
  """
  from jaxlab.data.loading import load, to_numpy
  try:
    dd = load(name)
  except DataError:
    if missing_hint:
      raise AssetMissingError(missing_hint) from None
    raise
  if "train" not in dd or "test" not in dd:
    raise DataError(f"dataset {name!r} needs 'train' and 'test' splits; it has {list(dd)}")
  xtr, xte = split_images(dd["train"]), split_images(dd["test"])
  ytr = to_numpy(dd["train"], ["label"])["label"].astype(np.int32)
  yte = to_numpy(dd["test"], ["label"])["label"].astype(np.int32)
  tr, te = stratified_subset(ytr, train_size, seed), stratified_subset(yte, test_size, seed + 1)
  return ImageArrays(np.ascontiguousarray(xtr[tr]), ytr[tr], np.ascontiguousarray(xte[te]),
                     yte[te], int(max(ytr.max(), yte.max())) + 1)
