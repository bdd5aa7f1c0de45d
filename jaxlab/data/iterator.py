"""A deterministic, resumable batch iterator over in-memory numpy arrays."""

from typing import Any

import numpy as np

from jaxlab.core.errors import DataError


class BatchIterator:
  """Full batches of shuffled rows; each epoch's order is a pure function of
  ``(seed, epoch)``, so the position ``(epoch, index)`` is all a checkpoint needs.

  Args:
    arrays: ``{name: array}`` with equal leading dimensions.
    batch_size: rows per batch; the last partial batch of an epoch is dropped.
    seed: shuffling seed.
    shuffle: when False, rows come in order.
  """

  def __init__(self, arrays: dict[str, np.ndarray], batch_size: int, seed: int = 0,
               shuffle: bool = True):
    sizes = {k: len(v) for k, v in arrays.items()}
    if len(set(sizes.values())) != 1:
      raise DataError(f"arrays have different lengths {sizes}; pass aligned columns")
    self.n = next(iter(sizes.values()))
    if not 0 < batch_size <= self.n:
      raise DataError(f"batch_size {batch_size} must be in [1, {self.n}] (the row count)")
    self.arrays, self.batch_size, self.seed, self.shuffle = arrays, batch_size, seed, shuffle
    self.epoch, self.index = 0, 0
    self._order = self._perm(0)

  def _perm(self, epoch: int) -> np.ndarray:
    if not self.shuffle:
      return np.arange(self.n)
    return np.random.default_rng([self.seed, epoch]).permutation(self.n)

  @property
  def steps_per_epoch(self) -> int:
    return self.n // self.batch_size

  def __iter__(self) -> "BatchIterator":
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    if self.index + self.batch_size > self.n:
      self.epoch, self.index = self.epoch + 1, 0
      self._order = self._perm(self.epoch)
    idx = self._order[self.index:self.index + self.batch_size]
    self.index += self.batch_size
    return {k: v[idx] for k, v in self.arrays.items()}

  def state(self) -> dict[str, Any]:
    """The position, JSON-ready."""
    return {"epoch": self.epoch, "index": self.index, "seed": self.seed}

  def restore(self, state: dict[str, Any]) -> None:
    if state.get("seed", self.seed) != self.seed:
      raise DataError(f"iterator state has seed {state['seed']}, this run uses {self.seed}")
    self.epoch, self.index = int(state["epoch"]), int(state["index"])
    self._order = self._perm(self.epoch)
