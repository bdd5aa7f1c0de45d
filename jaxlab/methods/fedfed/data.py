"""Image arrays for the FedFed studies: bundled MNIST / Fashion-MNIST, a user's local
CIFAR-10, or tiny random sets for smoke runs. Images stay uint8; the VAE and both
classifiers see [0, 1] pixels (``schedule.default_preprocess``), as in the reference."""

import numpy as np

from jaxlab.data.arrays import ImageArrays as Arrays
from jaxlab.data.arrays import image_arrays, random_images, stratified_subset

CIFAR_HINT = ("CIFAR-10 not found: put it in the local Hugging Face cache as 'cifar10' (train and"
              " test splits with 'img' and 'label' columns) or pass --set dataset=PATH (a"
              " save_to_disk folder with dataset_dict.json); jaxlab never downloads")


__all__ = ["Arrays", "CIFAR_HINT", "load", "random_images", "stratified_subset"]


def load(name: str, train_size: int = 0, test_size: int = 0, seed: int = 0) -> Arrays:
  """``name``: mnist, fashion_mnist, cifar10 (local cache or path), random_cifar, random_mnist."""
  if name == "random_cifar":
    return random_images((32, 32, 3), 256, 64, seed)
  if name == "random_mnist":
    return random_images((28, 28, 1), 256, 64, seed)
  return image_arrays(name, train_size, test_size, seed,
                      missing_hint=CIFAR_HINT if "cifar" in name.lower() else None)
