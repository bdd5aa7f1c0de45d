"""A procedural shapes-colours-positions scene generator with compositional captions.

Each 32x32 RGB scene holds one object with four attributes: shape (8), colour (8), size (2)
and horizontal position (3), plus rotation/position jitter and pixel noise on a dark
background. Everything is a pure function of the seed. Labels for the classification tasks:

* ``"shape"`` (8 classes), ``"colour"`` (8), ``"colour_shape"`` (64: colour * 8 + shape),
  ``"size_shape"`` (16: size * 8 + shape).
"""

from __future__ import annotations

import numpy as np

from jaxlab.core import errors

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring", "hexagon", "star")
COLOURS = ("red", "green", "blue", "yellow", "cyan", "magenta", "white", "orange")
SIZES = ("small", "large")
POSITIONS = ("left", "center", "right")
RGB = np.array([(230, 40, 40), (40, 200, 60), (50, 80, 235), (240, 220, 40),
                (40, 220, 220), (220, 50, 220), (240, 240, 240), (250, 140, 30)], np.float32)
TASKS = ("shape", "colour", "colour_shape", "size_shape")
_RADIUS = (4.5, 7.5)
_X = (9.0, 16.0, 23.0)
SIZE = 32


def _regular(u, v, r, k, theta):
  """Inside a regular k-gon of circumradius r (half-plane test) [N, H, W] bool."""
  inside = np.ones(u.shape, bool)
  for i in range(k):
    phi = theta + 2 * np.pi * i / k
    inside &= u * np.cos(phi) + v * np.sin(phi) <= r * np.cos(np.pi / k)
  return inside


def _mask(shape: int, u, v, r, theta):
  """One shape's mask for a batch of (u, v) grids [N, H, W]; r, theta [N, 1, 1]."""
  d2 = u ** 2 + v ** 2
  cu, sv = u * np.cos(theta) + v * np.sin(theta), -u * np.sin(theta) + v * np.cos(theta)
  name = SHAPES[shape]
  if name == "circle":
    return d2 <= r ** 2
  if name == "square":
    return _regular(u, v, r, 4, theta)
  if name == "triangle":
    return _regular(u, v, r, 3, theta - np.pi / 2)
  if name == "diamond":
    return (np.abs(cu) / r + np.abs(sv) / (0.7 * r)) <= 1
  if name == "cross":
    arm = r / 3
    return ((np.abs(cu) <= arm) & (np.abs(sv) <= r)) | ((np.abs(sv) <= arm) & (np.abs(cu) <= r))
  if name == "ring":
    return (d2 <= r ** 2) & (d2 >= (0.55 * r) ** 2)
  if name == "hexagon":
    return _regular(u, v, r, 6, theta)
  return _regular(u, v, r, 3, theta - np.pi / 2) | _regular(u, v, r, 3, theta + np.pi / 2)


def render(shape: np.ndarray, colour: np.ndarray, size: np.ndarray, position: np.ndarray,
           seed: int = 0, noise: float = 8.0) -> np.ndarray:
  """Draws scenes from integer attribute arrays [N] -> uint8 images [N, 32, 32, 3]."""
  n = len(shape)
  rng = np.random.default_rng(seed)
  cx = np.asarray(_X, np.float32)[position] + rng.uniform(-1.5, 1.5, n)
  cy = 16.0 + rng.uniform(-3, 3, n)
  r = np.asarray(_RADIUS, np.float32)[size] * rng.uniform(0.9, 1.1, n)
  theta = rng.uniform(-0.3, 0.3, n)
  yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5
  u, v = xx[None] - cx[:, None, None], yy[None] - cy[:, None, None]
  r3, t3 = r[:, None, None], theta[:, None, None]
  mask = np.zeros((n, SIZE, SIZE), bool)
  for s in range(len(SHAPES)):
    sel = shape == s
    if sel.any():
      mask[sel] = _mask(s, u[sel], v[sel], r3[sel], t3[sel])
  bg = rng.uniform(0, 40, (n, 1, 1, 1)).astype(np.float32)
  img = np.where(mask[..., None], RGB[colour][:, None, None, :], bg)
  img = img + rng.normal(0, noise, img.shape)
  return np.clip(img, 0, 255).astype(np.uint8)


def sample(n: int, seed: int = 0) -> dict[str, np.ndarray]:
  """n random scenes: ``image`` [n, 32, 32, 3] uint8 and int attribute columns [n]."""
  rng = np.random.default_rng(seed)
  attrs = {"shape": rng.integers(0, len(SHAPES), n), "colour": rng.integers(0, len(COLOURS), n),
           "size": rng.integers(0, len(SIZES), n), "position": rng.integers(0, len(POSITIONS), n)}
  attrs["image"] = render(attrs["shape"], attrs["colour"], attrs["size"], attrs["position"],
                          seed=seed + 1)
  return attrs


CAPTION_TEMPLATES = (
  "a {size} {colour} {shape} on the {position}",
  "a photo of a {colour} {shape}.",
  "a {colour} {shape}",
  "a {size} {shape}",
  "a {shape} on the {position}",
  "a photo of a {shape}.",
  "a photo of a {size} {shape}.",
  "the colour {colour}",
  "a photo of a {colour} thing.",
)


def caption(shape: int, colour: int, size: int, position: int, template: int = 0) -> str:
  """A compositional caption; ``position`` 1 reads "in the center"."""
  pos = "center" if POSITIONS[position] == "center" else POSITIONS[position]
  text = CAPTION_TEMPLATES[template].format(
    shape=SHAPES[shape], colour=COLOURS[colour], size=SIZES[size], position=pos)
  return text.replace("on the center", "in the center")


def task_labels(task: str, attrs: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str]]:
  """Integer labels [n] and class names (for "a photo of a {name}.") of a task."""
  if task == "shape":
    return attrs["shape"], list(SHAPES)
  if task == "colour":
    return attrs["colour"], [f"{c} thing" for c in COLOURS]
  if task == "colour_shape":
    return attrs["colour"] * len(SHAPES) + attrs["shape"], [
      f"{c} {s}" for c in COLOURS for s in SHAPES]
  if task == "size_shape":
    return attrs["size"] * len(SHAPES) + attrs["shape"], [
      f"{z} {s}" for z in SIZES for s in SHAPES]
  raise errors.DataError(f"unknown shapes task {task!r}; use one of {TASKS}")
