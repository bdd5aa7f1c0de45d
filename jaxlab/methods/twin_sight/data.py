"""Arrays for the Twin-sight studies: bundled Fashion-MNIST / MNIST, a local CIFAR-10,
or a tiny random CIFAR-shaped set (smoke tests only)."""

from typing import NamedTuple

import numpy as np

from jaxlab.core.errors import AssetMissingError, DataError

NORM = {  # per-channel mean, std of [0, 1] pixels
  "mnist": ((0.1307,), (0.3081,)),
  "fashion_mnist": ((0.2860,), (0.3530,)),
  "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
CIFAR_HINT = ("CIFAR-10 is not available offline: jaxlab expects the Hugging Face 'cifar10'"
              " dataset (train/test splits, 'img' + 'label' columns) in the local HF cache,"
              " or --set dataset=PATH to a datasets.save_to_disk folder with those splits")


class Arrays(NamedTuple):
  x_train: np.ndarray   # uint8 [N, H, W, C]
  y_train: np.ndarray   # int32 [N]
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int
  mean: tuple
  std: tuple


def stratified_subset(y: np.ndarray, size: int, seed: int) -> np.ndarray:
  """Sorted indices of a class-stratified random subset of ``size`` rows (0 = all)."""
  if not size or size >= len(y):
    return np.arange(len(y))
  rs = np.random.RandomState(seed)
  keep = [rs.choice(np.flatnonzero(y == c), max(1, round(size * np.mean(y == c))),
                    replace=False) for c in np.unique(y)]
  return np.sort(np.concatenate(keep))


def random_cifar(n_train: int = 256, n_test: int = 64, seed: int = 0) -> tuple:
  """Random uint8 [N, 32, 32, 3] images with a weak class signal (smoke tests only)."""
  rs = np.random.RandomState(seed)
  def make(n):
    y = rs.randint(0, 10, n).astype(np.int32)
    return (rs.randint(0, 200, (n, 32, 32, 3)) + 5 * y[:, None, None, None]).astype(np.uint8), y
  return (*make(n_train), *make(n_test))


def _images(split) -> np.ndarray:
  import datasets
  from jaxlab.data import to_numpy
  col = next((c for c in ("img", "image") if c in split.column_names), None)
  if col is None:
    raise DataError(f"dataset has columns {split.column_names}; need 'img' or 'image' + 'label'")
  if isinstance(split.features[col], datasets.Image):
    return np.stack([np.asarray(im, np.uint8) for im in split[col]])
  return to_numpy(split, [col])[col]


def _load_dd(name: str):
  from jaxlab.data import load as load_dd
  try:
    return load_dd(name)
  except DataError as e:
    if name in ("cifar10", "cifar-10"):
      raise AssetMissingError(CIFAR_HINT) from e
    raise


def load(name: str, train_size: int = 0, test_size: int = 0, seed: int = 0) -> Arrays:
  """Loads ``name`` offline (images get a channel axis) and keeps stratified subsets."""
  if name == "random_cifar":
    xtr, ytr, xte, yte = random_cifar(seed=seed)
    norm = NORM["cifar10"]
  else:
    from jaxlab.data import to_numpy
    dd = _load_dd(name)
    if "train" not in dd or "test" not in dd:
      raise DataError(f"dataset {name!r} needs 'train' and 'test' splits; it has {list(dd)}")
    xtr, xte = _images(dd["train"]), _images(dd["test"])
    ytr = to_numpy(dd["train"], ["label"])["label"].astype(np.int32)
    yte = to_numpy(dd["test"], ["label"])["label"].astype(np.int32)
    norm = NORM.get(name, NORM["cifar10"] if xtr.ndim == 4 else NORM["mnist"])
  xtr = xtr[..., None] if xtr.ndim == 3 else xtr
  xte = xte[..., None] if xte.ndim == 3 else xte
  tr, te = stratified_subset(ytr, train_size, seed), stratified_subset(yte, test_size, seed + 1)
  return Arrays(np.ascontiguousarray(xtr[tr]), ytr[tr], np.ascontiguousarray(xte[te]), yte[te],
                int(max(ytr.max(), yte.max())) + 1, *norm)
