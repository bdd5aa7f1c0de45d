"""Host-streamed client data: each round only the sampled clients' rows go to devices.

For datasets that do not fit in device memory the engine keeps ``x``, ``y`` and the
index table as NumPy arrays on the host (``placement="host"``). Per round the host
builds a small ``FedData`` holding the sampled clients' examples only:

* ``x``/``y``: their rows, concatenated client by client and zero-padded to a power
  of two (so a round's data shape takes few values and few compiles);
* ``idx`` [S_pad, width]: each sampled client's positions in that ``x`` (the same
  ``width`` as the full table, so the sampler draws the same permutations);
* ``n`` [S_pad] and ``extra[STREAM_IDS]`` [S_pad]: sizes and global ids per slot.

``stream_sampler`` wraps the batch sampler so that client ``id`` reads its slot
(``argmax(ids == id)``); persistent state and keys still use the global id, so a
host-streamed round equals the on-device round (test). Per-client ``extra`` arrays
(class counts ...) are small and stay on device in full.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core.errors import ConfigError
from jaxlab.federated.types import ClientMeta, FedData, Sampler

STREAM_IDS = "_stream_ids"
HOST_STREAM_BYTES = 2 << 30   # make_fed_data(placement="auto") keeps larger x+y on the host
PLACEMENTS = ("device", "host")
MIN_ROWS = 64


def is_host(data: FedData) -> bool:
  """Whether ``data``'s examples are host NumPy arrays (host-streaming mode)."""
  return isinstance(data.x, np.ndarray)


def check_placement(placement: str | None, data: FedData) -> str:
  """``"host"`` or ``"device"``; None follows where ``data.x`` lives."""
  if placement is not None and placement not in PLACEMENTS:
    raise ConfigError(f"data_placement={placement!r}; use one of {PLACEMENTS} (or None:"
                      " follow make_fed_data's placement)")
  return placement or ("host" if is_host(data) else "device")


def to_host(data: FedData) -> FedData:
  """``x``, ``y``, ``idx``, ``n`` as NumPy (fetched once if they were on device)."""
  get = lambda a: np.asarray(jax.device_get(a))
  return FedData(get(data.x), get(data.y).astype(np.int32), get(data.idx).astype(np.int32),
                 get(data.n).astype(np.int32), data.extra)


def round_data(host: FedData, ids: np.ndarray, put) -> FedData:
  """The round's device ``FedData`` for padded sampled ids [S_pad] (id K = padding).

  Args:
    host: host ``FedData`` (``to_host``).
    ids: every sampled id of the round, padding ids (>= K) included, in any order.
    put: host array -> device array (the engine's placement: replicated on a mesh).
  """
  k, width = host.idx.shape
  real = ids < k
  n = np.where(real, host.n[np.minimum(ids, k - 1)], 0).astype(np.int32)
  offsets = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int32)
  total = int(n.sum())
  rows = max(MIN_ROWS, 1 << max(total - 1, 0).bit_length())
  take = np.concatenate([host.idx[i, :c] for i, c in zip(ids, n) if c] or [np.zeros(0, int)])
  x = np.zeros((rows, *host.x.shape[1:]), host.x.dtype)
  y = np.zeros(rows, np.int32)
  x[:total], y[:total] = host.x[take], host.y[take]
  pos = np.arange(width, dtype=np.int32)
  idx = np.where(pos[None] < n[:, None], offsets[:, None] + pos[None], 0).astype(np.int32)
  return FedData(put(x), put(y), put(idx), put(n),
                 {**host.extra, STREAM_IDS: put(ids.astype(np.int32))})


def stream_sampler(inner: Sampler) -> Sampler:
  """``inner`` reading a streamed round's slot of each client (see module doc)."""
  def local(data: FedData, meta: ClientMeta) -> ClientMeta:
    slot = jnp.argmax(data.extra[STREAM_IDS] == meta.id).astype(meta.id.dtype)
    return meta._replace(id=slot)

  def prepare(data, meta, key):
    return inner.prepare(data, local(data, meta), key)

  def batch(data, meta, state, t):
    return inner.batch(data, local(data, meta), state, t)

  return Sampler(prepare, batch)
