"""The per-client persistent table on the host (``client_table="host"``).

The K-row table (a pytree of ``[K, ...]`` leaves) lives in host NumPy arrays, or in
``.npy`` files opened as ``np.memmap`` when the engine has ``client_table_path``
(one file per leaf, ``leaf_<i>.npy``). Each round the host gathers the sampled
clients' rows (zeros for padding ids >= K), the engine puts them on the devices as a
``SubTable`` (split over ``clients`` on a mesh), the jitted round reads and writes
them by slot exactly as it would the full table, and the new rows are fetched and
written back into the host table, in place (the round consumes its input state, as
the on-device rounds donate theirs).

A memmap's touched pages are dropped from the process after each write
(``madvise(MADV_DONTNEED)``; dirty pages stay in the page cache and reach the file),
so the process's RSS stays ~ one round's rows, not the file size.
"""

import mmap
import pathlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core.errors import ConfigError

FILL_BYTES = 64 << 20   # a memmap table is filled (or copied) this many bytes at a time


class SubTable(NamedTuple):
  """The round's rows on device: ``ids`` [S] (global ids, K = padding) and ``rows``
  (the table's pytree with [S, ...] leaves, row i = client ``ids[i]``)."""
  ids: jax.Array
  rows: object


def check(path) -> None:
  """Refuses what the host table cannot do (several processes)."""
  if jax.process_count() > 1:
    raise ConfigError(f"client_table='host' runs in one process only ({jax.process_count()}"
                      " processes here); use client_table='sharded' for multi-process runs")
  if path is not None and pathlib.Path(path).exists() and not pathlib.Path(path).is_dir():
    raise ConfigError(f"client_table_path={str(path)!r} is a file; pass a directory for the"
                      " table's .npy files")


def _leaf_file(path, i: int) -> pathlib.Path:
  return pathlib.Path(path) / f"leaf_{i}.npy"


def new_table(row, num_clients: int, path=None):
  """A host table of ``num_clients`` copies of ``row`` (a pytree of host arrays):
  NumPy arrays, or ``.npy`` memmaps under ``path`` (created, overwritten)."""
  leaves, tree = jax.tree.flatten(jax.device_get(row))
  out = []
  if path is not None:
    pathlib.Path(path).mkdir(parents=True, exist_ok=True)
  for i, r in enumerate(leaves):
    r = np.asarray(r)
    shape = (num_clients, *r.shape)
    if path is None:
      t = np.empty(shape, r.dtype)
      t[...] = r
    else:
      t = np.lib.format.open_memmap(_leaf_file(path, i), mode="w+", dtype=r.dtype, shape=shape)
      step = _fill_rows(r.nbytes)
      for a in range(0, num_clients, step):
        t[a:a + step] = r
        _release(t)
    out.append(t)
  return jax.tree.unflatten(tree, out)


def _fill_rows(row_bytes: int) -> int:
  return max(1, FILL_BYTES // max(row_bytes, 1))


def adopt(table, path=None):
  """``table`` as writable host arrays: kept if already so (NumPy or memmap), else
  copied once (a restored checkpoint's arrays) into NumPy or into ``path``'s files."""
  leaves, tree = jax.tree.flatten(table)
  ok = all(isinstance(t, np.ndarray) and t.flags.writeable
           and (path is None or isinstance(t, np.memmap)) for t in leaves)
  if ok:
    return table
  out = []
  for i, t in enumerate(leaves):
    if path is None:
      out.append(np.array(jax.device_get(t)))
      continue
    f = _leaf_file(path, i)
    pathlib.Path(path).mkdir(parents=True, exist_ok=True)
    m = np.lib.format.open_memmap(f, mode="w+", dtype=t.dtype, shape=t.shape)
    step = _fill_rows(t.dtype.itemsize * int(np.prod(t.shape[1:])))
    for a in range(0, t.shape[0], step):
      m[a:a + step] = np.asarray(jax.device_get(t[a:a + step]))
      _release(m)
    out.append(m)
  return jax.tree.unflatten(tree, out)


def gather_rows(table, ids: np.ndarray, num_clients: int):
  """Host rows [S, ...] of ``ids`` (zeros for padding ids >= K)."""
  real = ids < num_clients
  safe = np.where(real, ids, 0)

  def one(t):
    rows = np.asarray(t[safe])
    rows[~real] = 0
    return rows
  return jax.tree.map(one, table)


def write_rows(table, ids: np.ndarray, rows, num_clients: int) -> None:
  """Writes ``rows`` [S, ...] into ``table`` for ids < K (in place)."""
  real = ids < num_clients

  def one(t, r):
    t[ids[real]] = np.asarray(r)[real].astype(t.dtype)
    _release(t)
  jax.tree.map(one, table, rows)


def _release(t) -> None:
  """Drops a memmap's resident pages from this process (the data stays in the file)."""
  m = getattr(t, "_mmap", None)
  if isinstance(t, np.memmap) and m is not None and hasattr(m, "madvise"):
    m.madvise(mmap.MADV_DONTNEED)


def make_ops(num_clients: int, mesh=None):
  """(gather, scatter) over a ``SubTable``, addressed by global ids like the full
  table's pair: id -> its slot in ``SubTable.ids``; padding ids (>= K) read zeros and
  are not written. On a mesh the rows are split over ``clients`` and read and written
  with ``fl.shard``'s collectives (slots play the role of ids)."""
  if mesh is not None:
    from jaxlab.federated import shard as shard_lib
    big = np.iinfo(np.int32).max
    get_rows, put_rows = shard_lib.make_gather(mesh, big), shard_lib.make_scatter(mesh, big)
  else:
    get_rows = lambda rows, s: jax.tree.map(
      lambda t: t.at[s].get(mode="fill", fill_value=0), rows)
    put_rows = lambda rows, s, new: jax.tree.map(
      lambda t, r: t.at[s].set(r.astype(t.dtype), mode="drop"), rows, new)

  def slots(sub: SubTable, ids):
    s = jnp.argmax(ids[:, None] == sub.ids[None, :], axis=1).astype(jnp.int32)
    return jnp.where(ids < num_clients, s, sub.ids.shape[0])

  def get(sub: SubTable, ids):
    return get_rows(sub.rows, slots(sub, ids))

  def put(sub: SubTable, ids, new):
    return SubTable(sub.ids, put_rows(sub.rows, slots(sub, ids), new))

  return get, put


def host_bytes(table) -> int:
  """Bytes of the host table's leaves."""
  return int(sum(t.size * t.dtype.itemsize for t in jax.tree.leaves(table)))
