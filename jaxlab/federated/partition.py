"""Host NumPy partitioners, stream-compatible with the FedML/NIID-Bench lineage.

Each returns a list of K int64 index arrays (client k's sample ids in the
partitioner's final order). ``np.random.RandomState(seed)`` reproduces the
reference repos' global ``np.random.seed(seed)`` stream, so with the same label
vector the index lists match the references exactly.
"""

import logging
import random

import numpy as np

from jaxlab.core.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def _check(labels: np.ndarray, num_clients: int) -> np.ndarray:
  labels = np.asarray(labels)
  if labels.ndim != 1:
    raise DataError(f"labels must be 1-D, got shape {labels.shape}; pass y[N]")
  if num_clients < 1:
    raise ConfigError(f"num_clients={num_clients} must be >= 1")
  if num_clients > len(labels):
    raise ConfigError(
      f"num_clients={num_clients} exceeds the {len(labels)} samples; use fewer clients")
  return labels


def hetero(labels: np.ndarray, num_clients: int, alpha: float, seed: int = 0,
           min_require: int | str = "num_classes", max_tries: int = 1000
           ) -> list[np.ndarray]:
  """Dirichlet label skew (``hetero``), as FedFed/FedImpro/Twin-sight/NIID-Bench.

  Per class: shuffle its indices, draw ``p ~ Dir(alpha·1_K)``, zero clients that
  already hold >= N/K samples (balance trick), renormalise, split at
  ``(cumsum(p)·n_c).astype(int)[:-1]``. Redraw (RNG not reseeded) until the
  smallest client holds >= ``min_require`` samples; finally shuffle each client.

  Args:
    labels: int[N] label vector (dataset order).
    num_clients: K.
    alpha: Dirichlet concentration (> 0).
    seed: the ``RandomState`` seed.
    min_require: minimum client size; ``"num_classes"`` (FedFed/FedImpro/FedLab)
      or an int (10 in NIID-Bench/FedML).
    max_tries: redraws before giving up.

  Returns:
    K index arrays.
  """
  labels = _check(labels, num_clients)
  if not alpha > 0:
    raise ConfigError(f"Dirichlet alpha={alpha} must be > 0 (e.g. 0.1 or 0.5)")
  classes = int(labels.max()) + 1
  if min_require == "num_classes":
    min_require = classes
  n = len(labels)
  if min_require * num_clients > n:
    raise ConfigError(
      f"min_require={min_require} x {num_clients} clients needs more than the {n}"
      " samples; lower min_require or the number of clients")
  rng = np.random.RandomState(seed)
  min_size, tries = -1, 0
  while min_size < min_require:
    if tries >= max_tries:
      raise DataError(
        f"no Dirichlet split with every client >= {min_require} samples after"
        f" {max_tries} tries (alpha={alpha}, K={num_clients}); raise alpha or"
        " lower min_require")
    tries += 1
    batches = [[] for _ in range(num_clients)]
    for c in range(classes):
      idx_c = np.where(labels == c)[0]
      rng.shuffle(idx_c)
      p = rng.dirichlet(np.repeat(alpha, num_clients))
      p = np.array([q * (len(b) < n / num_clients) for q, b in zip(p, batches)])
      p = p / p.sum()
      cut = (np.cumsum(p) * len(idx_c)).astype(int)[:-1]
      batches = [b + part.tolist() for b, part in zip(batches, np.split(idx_c, cut))]
      min_size = min(len(b) for b in batches)
  log.info("hetero partition: %d tries, sizes %d..%d", tries, min_size,
           max(len(b) for b in batches))
  out = []
  for b in batches:
    rng.shuffle(b)
    out.append(np.asarray(b, dtype=np.int64))
  return out


def iid(labels: np.ndarray, num_clients: int, seed: int = 0) -> list[np.ndarray]:
  """``homo``: a random permutation split into K near-equal parts."""
  labels = _check(labels, num_clients)
  perm = np.random.RandomState(seed).permutation(len(labels))
  return [np.asarray(a, np.int64) for a in np.array_split(perm, num_clients)]


def shards(labels: np.ndarray, num_clients: int, num_shards: int, seed: int = 0
           ) -> list[np.ndarray]:
  """McMahan et al. shards: sort by label, deal ``num_shards // K`` shards each."""
  labels = _check(labels, num_clients)
  if num_shards < num_clients or num_shards > len(labels):
    raise ConfigError(
      f"num_shards={num_shards} must lie in [num_clients={num_clients}, N={len(labels)}]")
  size = len(labels) // num_shards
  idxs = np.arange(num_shards * size)
  order = np.argsort(labels[: num_shards * size])
  idxs = idxs[order]
  perm = np.random.RandomState(seed).permutation(num_shards)
  spc = num_shards // num_clients
  return [np.concatenate([idxs[s * size:(s + 1) * size] for s in perm[c * spc:(c + 1) * spc]])
          for c in range(num_clients)]


def label_k(labels: np.ndarray, num_clients: int, k: int, seed: int = 0
            ) -> list[np.ndarray]:
  """NIID-Bench ``noniid-#label{k}``: client i holds label i % C plus k-1 others."""
  labels = _check(labels, num_clients)
  classes = int(labels.max()) + 1
  if not 1 <= k <= classes:
    raise ConfigError(f"k={k} labels per client must lie in [1, {classes}]")
  rng, pyrng = np.random.RandomState(seed), random.Random(seed)
  held = []
  for i in range(num_clients):
    cur = [i % classes]
    while len(cur) < k:
      c = pyrng.randint(0, classes - 1)
      if c not in cur:
        cur.append(c)
    held.append(cur)
  out = [[] for _ in range(num_clients)]
  for c in range(classes):
    owners = [i for i in range(num_clients) if c in held[i]]
    if not owners:
      continue
    idx_c = np.where(labels == c)[0]
    rng.shuffle(idx_c)
    for i, part in zip(owners, np.array_split(idx_c, len(owners))):
      out[i].extend(part.tolist())
  return [np.asarray(o, np.int64) for o in out]


def histogram(labels: np.ndarray, parts: list[np.ndarray], num_classes: int | None = None
              ) -> np.ndarray:
  """Per-client label counts int64[K, C] (``record_net_data_stats``)."""
  labels = np.asarray(labels)
  c = num_classes or int(labels.max()) + 1
  return np.stack([np.bincount(labels[p], minlength=c) for p in parts])


def plot(path, labels: np.ndarray, parts: list[np.ndarray], title: str = "partition") -> None:
  """Stacked bar chart of per-client label counts (PNG)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  h = histogram(labels, parts)
  k = np.arange(len(parts))
  fig, ax = plt.subplots(figsize=(max(6, len(parts) * 0.08 + 4), 3.5))
  bottom = np.zeros(len(parts))
  cmap = plt.get_cmap("tab10" if h.shape[1] <= 10 else "tab20")
  for c in range(h.shape[1]):
    ax.bar(k, h[:, c], bottom=bottom, color=cmap(c % cmap.N), width=1.0, label=str(c))
    bottom += h[:, c]
  ax.set_xlabel("client"), ax.set_ylabel("samples"), ax.set_title(title)
  ax.legend(ncol=min(10, h.shape[1]), fontsize=6, loc="upper right")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def parse_setting(text: str) -> tuple[float, int, int]:
  """``"alpha/K/S"`` (Dirichlet alpha, clients, clients per round), e.g. ``"0.1/10/5"``."""
  try:
    a, k, s = text.split("/")
    alpha, k, s = float(a), int(k), int(s)
  except ValueError:
    raise ConfigError(f"setting {text!r}: expected 'alpha/K/S', e.g. '0.1/10/5'") from None
  if not (alpha > 0 and 1 <= s <= k):
    raise ConfigError(f"setting {text!r}: need alpha > 0 and 1 <= S <= K")
  return alpha, k, s
