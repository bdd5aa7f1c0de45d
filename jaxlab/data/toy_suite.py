"""The toy downstream suite: bundled image sets as 32x32 RGB, class names, corruptions.

Every set is brought to ``uint8 [N, 32, 32, 3]``: MNIST/Fashion-MNIST are padded 28 -> 32 and
grey replicated; sklearn digits (8x8, values 0-16) are upsampled 4x; shapes are native.
Images become model inputs with :func:`to_pixels` (``(x / 255 - 0.5) / 0.5``) inside jit.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core import errors
from jaxlab.data import shapes

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FASHION = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
           "bag", "ankle boot")
DATASETS = ("mnist", "fashion_mnist", "digits", "shapes", "colours", "colour_shapes",
            "size_shapes")
_SHAPE_TASKS = {"shapes": "shape", "colours": "colour", "colour_shapes": "colour_shape",
                "size_shapes": "size_shape"}
CORRUPTIONS = ("rotate", "invert", "noise", "blur")


@dataclasses.dataclass(frozen=True)
class ImageSet:
  """One split: ``images`` uint8 [N, 32, 32, 3], ``labels`` int32 [N], ``classnames``."""
  images: np.ndarray
  labels: np.ndarray
  classnames: tuple[str, ...]

  def subset(self, idx: np.ndarray) -> ImageSet:
    return ImageSet(self.images[idx], self.labels[idx], self.classnames)


def classnames(name: str) -> tuple[str, ...]:
  """Class names used in ``"a photo of a {name}."``."""
  if name in ("mnist", "digits"):
    return tuple(f"digit {w}" for w in NUMBER_WORDS)
  if name == "fashion_mnist":
    return FASHION
  if name in _SHAPE_TASKS:
    return tuple(shapes.task_labels(_SHAPE_TASKS[name], shapes.sample(1, 0))[1])
  raise errors.DataError(f"unknown toy dataset {name!r}; use one of {DATASETS}")


def to_rgb32(images: np.ndarray) -> np.ndarray:
  """uint8 [N, H, W] (28x28 or 8x8 with max 16) or [N, 32, 32, 3] -> uint8 [N, 32, 32, 3]."""
  x = np.asarray(images)
  if x.ndim == 4:
    return x.astype(np.uint8)
  if x.shape[1:] == (8, 8):
    x = np.clip(x.astype(np.float32) * (255 / 16), 0, 255).astype(np.uint8)
    x = x.repeat(4, 1).repeat(4, 2)
  elif x.shape[1:] == (28, 28):
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))
  else:
    raise errors.DataError(f"cannot bring images of shape {x.shape[1:]} to 32x32")
  return np.repeat(x[..., None], 3, axis=-1).astype(np.uint8)


def load(name: str, split: str, limit: int | None = None, seed: int = 0) -> ImageSet:
  """A toy set's split ("train"/"test"), optionally a seeded random subset of ``limit`` rows."""
  if name in _SHAPE_TASKS:
    n = limit or (6000 if split == "train" else 2000)
    a = shapes.sample(n, seed=(1000 if split == "train" else 2000) + seed)
    labels, names = shapes.task_labels(_SHAPE_TASKS[name], a)
    return ImageSet(a["image"], labels.astype(np.int32), tuple(names))
  import jaxlab.data as jdata
  ds = jdata.load(name)
  if split not in ds:
    raise errors.DataError(f"{name} has splits {list(ds)}, not {split!r}")
  arrays = jdata.to_numpy(ds[split], ["image", "label"])
  images, labels = arrays["image"], arrays["label"].astype(np.int32)
  if limit is not None and limit < len(labels):
    idx = np.sort(np.random.default_rng(seed).choice(len(labels), limit, replace=False))
    images, labels = images[idx], labels[idx]
  return ImageSet(to_rgb32(images), labels, classnames(name))


def to_pixels(images: jax.Array) -> jax.Array:
  """uint8 [..., 32, 32, 3] -> float32 in [-1, 1]."""
  return (images.astype(jnp.float32) / 255.0 - 0.5) / 0.5


def corrupt(images: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
  """Domain-shift analogues of a uint8 [N, 32, 32, 3] set: rotate/invert/noise/blur."""
  x = images.astype(np.float32)
  if kind == "rotate":  # 90 degrees: a large, label-preserving shift for shapes and clothes
    out = np.rot90(x, k=1, axes=(1, 2))
  elif kind == "invert":
    out = 255.0 - x
  elif kind == "noise":
    out = x + np.random.default_rng(seed).normal(0, 60, x.shape)
  elif kind == "blur":  # 5x5 box blur
    p = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="edge")
    out = sum(p[:, i:i + 32, j:j + 32] for i in range(5) for j in range(5)) / 25.0
  else:
    raise errors.DataError(f"unknown corruption {kind!r}; use one of {CORRUPTIONS}")
  return np.clip(out, 0, 255).astype(np.uint8)
