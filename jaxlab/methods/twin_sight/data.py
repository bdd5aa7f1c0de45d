"""Arrays for the Twin-sight studies: bundled Fashion-MNIST / MNIST, a local CIFAR-10,
or a tiny random CIFAR-shaped set (smoke tests only)."""

from typing import NamedTuple

import numpy as np

from jaxlab.data.arrays import image_arrays, random_images, stratified_subset  # noqa: F401

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


def load(name: str, train_size: int = 0, test_size: int = 0, seed: int = 0) -> Arrays:
  """Loads ``name`` offline (images get a channel axis) and keeps stratified subsets."""
  if name == "random_cifar":
    a = random_images((32, 32, 3), 256, 64, seed)
    return Arrays(*a, *NORM["cifar10"])
  a = image_arrays(name, train_size, test_size, seed,
                   missing_hint=CIFAR_HINT if name in ("cifar10", "cifar-10") else None)
  norm = NORM.get(name, NORM["cifar10"] if a.x_train.shape[-1] == 3 else NORM["mnist"])
  return Arrays(*a, *norm)
