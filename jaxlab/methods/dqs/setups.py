"""Optical setups as padded arrays, and the reference's random distribution.

A setup is N/2 down-conversion sources followed by up to T devices. The
reference records each element as a 4-tuple ``(id, p1, p2, k)``; here a batch
of setups is a `Setups` pytree of fixed-shape arrays, device id 0 marking a
padding slot (the identity), so every batch has static shapes.
"""

from typing import NamedTuple

import numpy as np

from jaxlab.core.errors import DataError
from jaxlab.methods.dqs import config as C


class Setups(NamedTuple):
  """A batch of setups (numpy or jax arrays).

  Attributes:
    sources: [B, N/2] int32 source types in {6, 7, 8}; source i feeds paths
      (2i, 2i+1).
    devices: [B, T, 4] int32 rows ``(id, p1, p2, k)``; id 0 = padding.
    angles: [B, T] float32 waveplate angle theta in radians (used by HWP/QWP;
      k pi/4 in the reference's quantize45 mode).
  """

  sources: np.ndarray
  devices: np.ndarray
  angles: np.ndarray

  @property
  def n_devices(self) -> np.ndarray:
    """[B] number of real devices."""
    return (np.asarray(self.devices)[..., 0] > 0).sum(-1)

  def __len__(self) -> int:
    return int(np.shape(self.sources)[0])

  def take(self, idx) -> "Setups":
    return Setups(*(np.asarray(x)[idx] for x in self))


def concat(parts: list[Setups]) -> Setups:
  return Setups(*(np.concatenate(xs) for xs in zip(*parts)))


def sample_setups(rng: np.random.Generator, n: int, cfg: C.SimConfig) -> Setups:
  """Draws ``n`` setups from the reference generator's distribution.

  Sources i.i.d. uniform over {DC0011, DC00, DC11}; device count uniform in
  [min_devices, max_devices]; device id uniform over {BS, PBS, HWP, QWP, R};
  BS/PBS get an ordered pair of distinct paths; HWP/QWP get k uniform in 1..4
  (theta = k pi/4; ``continuous`` draws theta uniform in [0, pi) instead and
  keeps k as the pi/4 bin it falls in); single-path devices have p2 = p1.
  """
  N, T = cfg.n_photons, cfg.max_devices
  sources = rng.choice(np.asarray(C.SOURCE_TYPES), size=(n, cfg.n_sources))
  n_dev = rng.integers(cfg.min_devices, cfg.max_devices + 1, size=n)
  ids = rng.integers(1, 6, size=(n, T))
  p1 = rng.integers(0, N, size=(n, T))
  p2 = (p1 + rng.integers(1, N, size=(n, T))) % N
  k = rng.integers(1, 5, size=(n, T))
  if cfg.angle_mode == "continuous":
    theta = rng.uniform(0.0, np.pi, size=(n, T))
    k = np.minimum(np.floor(theta / (np.pi / 4)).astype(int) + 1, 4)
  else:
    theta = k * (np.pi / 4)
  real = np.arange(T)[None, :] < n_dev[:, None]
  ids = np.where(real, ids, 0)
  two = np.isin(ids, C.TWO_PATH)
  angled = np.isin(ids, C.ANGLED)
  p1 = np.where(real, p1, 0)
  p2 = np.where(two, p2, p1)
  k = np.where(angled, k, 0)
  theta = np.where(angled, theta, 0.0)
  devices = np.stack([ids, p1, p2, k], -1).astype(np.int32)
  return Setups(sources.astype(np.int32), devices, theta.astype(np.float32))


def from_tuples(rows: list[list[tuple[int, int, int, int]]], cfg: C.SimConfig) -> Setups:
  """Builds `Setups` from reference-format rows (sources first, then devices).

  Angles are k pi/4 (quantize45). Raises `DataError` on a malformed row.
  """
  n_src, T = cfg.n_sources, cfg.max_devices
  sources = np.zeros((len(rows), n_src), np.int32)
  devices = np.zeros((len(rows), T, 4), np.int32)
  for b, row in enumerate(rows):
    src, dev = row[:n_src], row[n_src:]
    if len(dev) > T or any(s[0] not in C.SOURCE_TYPES for s in src):
      raise DataError(
        f"setup {b} has {len(dev)} devices (max {T}) or a bad source {src};"
        " sources (types 6/7/8) come first, then at most max_devices devices"
      )
    sources[b] = [s[0] for s in src]
    for t, d in enumerate(dev):
      if d[0] not in C.DEVICE_TYPES or not (0 <= d[1] < cfg.n_photons):
        raise DataError(f"setup {b} device {t} = {d} is not a valid (id, p1, p2, k)")
      devices[b, t] = d
  angles = (devices[..., 3] * (np.pi / 4)).astype(np.float32)
  return Setups(sources, devices, angles)


def to_tuples(setups: Setups, b: int) -> list[tuple[int, int, int, int]]:
  """The reference 4-tuple list of setup ``b`` (sources as (type, 2i, 2i+1, 0))."""
  src = [(int(t), 2 * i, 2 * i + 1, 0) for i, t in enumerate(np.asarray(setups.sources[b]))]
  dev = [tuple(int(v) for v in d) for d in np.asarray(setups.devices[b]) if d[0] > 0]
  return src + dev
