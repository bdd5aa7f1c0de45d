"""Partial-client (PC) and partial-data (PD) label settings, after the Dirichlet split.

Host NumPy. PC: the reference's hard-coded unlabeled client ids
(``data_preprocessing/loader.py::partial_labeled_client``, spec §5.1), a seeded random
draw for any other (K, fraction). PD: ``ceil(fraction * n_k)`` random labeled samples
per client, the rest unlabeled.
"""

import math

import numpy as np

from jaxlab.core.errors import ConfigError

_BASE6 = {"cifar10": [0, 7, 5, 4, 9, 2], "cifar100": [2, 6, 9, 3, 4, 5],
          "fashion_mnist": [4, 8, 6, 0, 7, 2], "svhn": [8, 6, 7, 5, 3, 0]}
_BASE5 = {k: v[:5] for k, v in _BASE6.items()}
_BASE4 = {"cifar10": [0, 7, 4, 9], "cifar100": [2, 6, 3, 4], "fashion_mnist": [4, 8, 0, 7],
          "svhn": [8, 6, 5, 3]}
_EXTRA = {"cifar10": [1, 3, 6], "cifar100": [1, 0, 8], "fashion_mnist": [3, 1, 9],
          "svhn": [2, 1, 4]}
_K50 = [26, 37, 9, 36, 31, 18, 46, 39, 4, 12, 25, 28, 5, 6, 24, 3, 21, 29, 45, 40, 48, 49, 16,
        38, 2, 32, 8, 47, 17, 22]
_K100 = [31, 46, 22, 24, 17, 35, 11, 88, 56, 97, 99, 66, 27, 53, 98, 51, 77, 40, 47, 13, 73,
         63, 90, 4, 23, 67, 25, 43, 83, 74, 81, 16, 1, 61, 34, 33, 38, 50, 72, 85, 87, 30, 21,
         5, 2, 0, 15, 57, 41, 42, 36, 92, 62, 54, 44, 32, 82, 58, 39, 6]
ALIASES = {"fmnist": "fashion_mnist", "random_cifar": "cifar10"}


def reference_unlabeled_ids(dataset: str, num_clients: int, fraction: float) -> list[int] | None:
  """The reference's hard-coded unlabeled ids, or None where it draws at random."""
  ds = ALIASES.get(dataset, dataset)
  if ds not in _BASE6:
    return None
  if num_clients == 10:
    table = {0.4: _BASE4[ds], 0.5: _BASE5[ds], 0.6: _BASE6[ds]}
    for extra, frac in enumerate((0.7, 0.8, 0.9), start=1):
      table[frac] = _BASE6[ds] + _EXTRA[ds][:extra]
    return table.get(round(fraction, 2))
  if round(fraction, 2) == 0.6:
    return {50: _K50, 100: _K100}.get(num_clients)
  return None


def pc_labeled(dataset: str, num_clients: int, unlabeled_fraction: float, seed: int = 0
               ) -> np.ndarray:
  """f32[K]: 1 for a labeled client, 0 for one of the ``ceil(fraction * K)`` unlabeled."""
  if not 0.0 <= unlabeled_fraction < 1.0:
    raise ConfigError(f"unlabeled_fraction={unlabeled_fraction}; use a value in [0, 1)")
  ids = reference_unlabeled_ids(dataset, num_clients, unlabeled_fraction)
  if ids is None:
    n_u = math.ceil(unlabeled_fraction * num_clients)
    ids = np.random.RandomState(seed).choice(num_clients, n_u, replace=False).tolist()
  lab = np.ones(num_clients, np.float32)
  lab[ids] = 0.0
  return lab


def pd_split(parts: list[np.ndarray], labeled_fraction: float = 0.05, seed: int = 0
             ) -> tuple[list[np.ndarray], list[np.ndarray]]:
  """Per client: ``ceil(fraction * n_k)`` labeled ids (random), the rest unlabeled (sorted).

  Draws with ``RandomState(seed + 1)`` (the reference continues the partition's global
  stream; jaxlab's partitioner owns its stream, so this split is not stream-exact).
  """
  if not 0.0 < labeled_fraction <= 1.0:
    raise ConfigError(f"labeled_fraction={labeled_fraction}; use a value in (0, 1]")
  rs = np.random.RandomState(seed + 1)
  lb, ulb = [], []
  for p in parts:
    chosen = rs.choice(p, math.ceil(labeled_fraction * len(p)), replace=False)
    lb.append(chosen)
    ulb.append(np.setdiff1d(p, chosen))
  return lb, ulb


def _table(rows: list[np.ndarray], width: int) -> np.ndarray:
  out = np.zeros((len(rows), width), np.int32)
  for k, r in enumerate(rows):
    out[k, : len(r)] = r
  return out


def pc_extra(labeled: np.ndarray):
  """``Sweep``/``make_fed_data`` extras for PC: ``{"labeled": f32[K]}``."""
  return lambda parts: {"labeled": np.asarray(labeled, np.float32)}


def pd_extra(labeled_fraction: float, width: int, seeds: dict | None = None, seed: int = 0):
  """Extras for PD: per-client labeled/unlabeled index tables (padded to ``width``) and
  sizes; ``labeled`` is all ones (every client holds some labels)."""
  def extra(parts):
    s = (seeds or {}).get(id(parts[0]), seed)
    lb, ulb = pd_split(parts, labeled_fraction, s)
    if min(len(u) for u in ulb) == 0:
      raise ConfigError("a PD client has no unlabeled samples; lower labeled_fraction")
    return {"labeled": np.ones(len(parts), np.float32),
            "idx_lb": _table(lb, width), "n_lb": np.array([len(a) for a in lb], np.int32),
            "idx_ulb": _table(ulb, width), "n_ulb": np.array([len(a) for a in ulb], np.int32)}
  return extra
