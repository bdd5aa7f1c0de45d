"""Shapes scenes: determinism, colours inside the mask, sizes, captions, task labels."""

import numpy as np
import pytest

from jaxlab.core import errors
from jaxlab.data import shapes


def test_deterministic_and_attributes_visible():
  a, b = shapes.sample(64, seed=3), shapes.sample(64, seed=3)
  np.testing.assert_array_equal(a["image"], b["image"])
  assert a["image"].shape == (64, 32, 32, 3) and a["image"].dtype == np.uint8
  img = a["image"].astype(np.float32)
  fg = img.max(-1) > 80  # background is < 40 + noise
  for i in range(64):
    mean = img[i][fg[i]].mean(0)
    assert np.abs(mean - shapes.RGB[a["colour"][i]]).max() < 25
  area = fg.sum((1, 2))
  large, small = area[a["size"] == 1], area[a["size"] == 0]
  assert np.median(large) > 2 * np.median(small)
  xs = (np.arange(32)[None, None, :] * fg).sum((1, 2)) / np.maximum(area, 1)
  assert xs[a["position"] == 0].max() < xs[a["position"] == 2].min()


def test_captions_and_tasks():
  assert shapes.caption(7, 0, 1, 1) == "a large red star in the center"
  assert shapes.caption(0, 2, 0, 0, template=1) == "a photo of a blue circle."
  a = shapes.sample(10, seed=0)
  labels, names = shapes.task_labels("colour_shape", a)
  assert len(names) == 64 and labels.max() < 64
  assert names[labels[0]] == f"{shapes.COLOURS[a['colour'][0]]} {shapes.SHAPES[a['shape'][0]]}"
  with pytest.raises(errors.DataError):
    shapes.task_labels("texture", a)
