"""FedData: the dataset once on device plus a padded index table per client."""

import jax.numpy as jnp
import numpy as np

from jaxlab.core.errors import DataError
from jaxlab.federated import stream
from jaxlab.federated.types import FedData


def index_table(parts: list[np.ndarray], width: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
  """Padded ids int32[K, width] (padding 0; width defaults to n_max) and sizes int32[K]."""
  n = np.array([len(p) for p in parts], np.int32)
  if (n == 0).any():
    raise DataError(f"clients {np.flatnonzero(n == 0)[:10].tolist()} hold no samples;"
                    " use a partition with min_require >= 1")
  width = int(n.max()) if width is None else width
  if width < n.max():
    raise DataError(f"index width {width} < largest client ({int(n.max())} samples)")
  idx = np.zeros((len(parts), width), np.int32)
  for k, p in enumerate(parts):
    idx[k, : len(p)] = p
  return idx, n


def make_fed_data(x: np.ndarray, y: np.ndarray, parts: list[np.ndarray],
                  extra: dict | None = None, width: int | None = None,
                  placement: str = "device") -> FedData:
  """Builds device-resident ``FedData``.

  Args:
    x: raw inputs [N, ...] (uint8 images stay uint8).
    y: labels [N].
    parts: K index arrays from ``jaxlab.federated.partition``.
    extra: other arrays (e.g. class counts [K, C]).
    width: pad the index table to this many columns (e.g. the largest client over
      several partitions, so that they share shapes and compiled rounds); default
      n_max, the largest client (never N: the table is [K, n_max]).
    placement: ``"device"`` (device arrays), ``"host"`` (NumPy ``x``, ``y``,
      ``idx``, ``n``: the engine streams each round's sampled clients, ``fl.stream``)
      or ``"auto"`` (host when ``x`` and ``y`` exceed ``fl.stream.HOST_STREAM_BYTES``,
      2 GiB).
  """
  if placement not in ("device", "host", "auto"):
    raise DataError(f"placement={placement!r}; use 'device', 'host' or 'auto'")
  if placement == "auto":
    big = np.asarray(x).nbytes + np.asarray(y).nbytes > stream.HOST_STREAM_BYTES
    placement = "host" if big else "device"
  if len(x) != len(y):
    raise DataError(f"x has {len(x)} rows but y has {len(y)}; pass matching arrays")
  idx, n = index_table(parts, width)
  if idx.max() >= len(x):
    raise DataError(f"partition index {int(idx.max())} >= N={len(x)}")
  if placement == "host":
    return FedData(np.asarray(x), np.asarray(y, np.int32), idx, n,
                   {k: jnp.asarray(v) for k, v in (extra or {}).items()})
  return FedData(jnp.asarray(x), jnp.asarray(y, jnp.int32), jnp.asarray(idx),
                 jnp.asarray(n), {k: jnp.asarray(v) for k, v in (extra or {}).items()})
