"""CoOp/CoCoOp evaluation protocols: base/novel split, k-shot sampling, harmonic mean."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from jaxlab.core import errors


def base_novel_split(labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
  """CoOp's rule: sort the label ids, the first ``ceil(n / 2)`` are base, the rest novel."""
  ids = np.unique(np.asarray(labels))
  m = math.ceil(len(ids) / 2)
  return ids[:m], ids[m:]


def select_classes(labels: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Rows whose label is in ``keep`` and their labels relabelled 0..len(keep)-1 in order."""
  keep = np.asarray(keep)
  lookup = np.full(int(max(labels.max(), keep.max())) + 1, -1, np.int64)
  lookup[keep] = np.arange(len(keep))
  rows = np.nonzero(np.isin(labels, keep))[0]
  return rows, lookup[labels[rows]].astype(np.int32)


def few_shot_indices(labels: np.ndarray, shots: int, seed: int,
                     classes: Sequence[int] | None = None) -> np.ndarray:
  """``shots`` rows per class, seeded and deterministic, ordered by class then draw.

  Raises:
    DataError: a class has fewer than ``shots`` rows.
  """
  rng = np.random.default_rng(seed)
  out = []
  for c in (np.unique(labels) if classes is None else classes):
    rows = np.nonzero(labels == c)[0]
    if len(rows) < shots:
      raise errors.DataError(f"class {c} has {len(rows)} rows < {shots} shots; lower shots")
    out.append(rng.choice(rows, shots, replace=False))
  return np.concatenate(out)


def val_shots(shots: int) -> int:
  """CoOp's validation size per class: ``min(shots, 4)``."""
  return min(shots, 4)


def harmonic_mean(base: float, novel: float) -> float:
  """HM = 2BN / (B + N) (0 when both are 0)."""
  return 0.0 if base + novel == 0 else 2 * base * novel / (base + novel)


def average_row(bases: Sequence[float], novels: Sequence[float]) -> dict[str, float]:
  """The "Average" row: HM of the averaged base and novel accuracies (not the mean of HMs)."""
  b, n = float(np.mean(bases)), float(np.mean(novels))
  return {"base": b, "novel": n, "hm": harmonic_mean(b, n)}
