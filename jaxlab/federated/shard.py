"""The per-client persistent table split over the ``clients`` mesh axis.

A table leaf is ``[K_pad, ...]`` with ``K_pad = D·ceil(K/D)`` rows (D = size of the
``clients`` axis): device d holds rows ``[d·K_pad/D, (d+1)·K_pad/D)``, so every
device stores ``ceil(K/D)`` rows, i.e. total/D plus at most one row of padding.
Rows ``K .. K_pad-1`` are padding: never read (a gather returns zeros for them, as
for the padding client id ``K``) and never written.

Gathering the round's sampled rows and scattering them back run inside the jitted
round as ``jax.shard_map`` with explicit collectives (works across processes):

* gather: every device looks up the sampled ids that fall in its block (zeros
  elsewhere), then a ``psum_scatter`` over ``clients`` adds the D partial tables
  (exactly one is non-zero per row) and leaves each device the rows of the clients
  it runs (the round's clients axis is split in the same contiguous blocks);
* scatter: the new rows are all-gathered and every device writes those whose id
  falls in its block (``mode="drop"`` for the rest).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxlab.core import axes
from jaxlab.core.errors import ConfigError

TABLE_MODES = ("sharded", "replicated", "host")


def padded_rows(num_clients: int, devices: int) -> int:
  """``K_pad``: the smallest multiple of ``devices`` that is >= ``num_clients``."""
  return devices * math.ceil(num_clients / devices)


def table_sharding(mesh: jax.sharding.Mesh, table) -> object:
  """``P("clients")`` on every table leaf's row axis."""
  sh = NamedSharding(mesh, P(axes.CLIENTS))
  return jax.tree.map(lambda _: sh, table)


def _local_ids(ids: jax.Array, rows: int, num_clients: int) -> jax.Array:
  """Positions of global ``ids`` inside this device's block; ``rows`` (out of range)
  for ids held elsewhere or padding ids (>= K)."""
  start = jax.lax.axis_index(axes.CLIENTS) * rows
  loc = ids - start
  ok = (loc >= 0) & (loc < rows) & (ids < num_clients)
  return jnp.where(ok, loc, rows)


def make_gather(mesh: jax.sharding.Mesh, num_clients: int):
  """``gather(table [K_pad, ...] sharded, ids [S]) -> rows [S, ...]``.

  Rows of ids >= K are zeros (as ``engine.gather``'s ``mode="fill"``). The result is
  split over ``clients`` when S is a multiple of the axis size, else replicated.
  """
  d = mesh.shape[axes.CLIENTS]

  def gather(table, ids):
    split = ids.shape[0] % d == 0

    def local(tab, ids):
      def one(t):
        loc = _local_ids(ids, t.shape[0], num_clients)
        part = t.at[loc].get(mode="fill", fill_value=0)
        if split:
          return jax.lax.psum_scatter(part, axes.CLIENTS, scatter_dimension=0, tiled=True)
        return jax.lax.psum(part, axes.CLIENTS)
      return jax.tree.map(one, tab)

    out = P(axes.CLIENTS) if split else P()
    return jax.shard_map(local, mesh=mesh, in_specs=(P(axes.CLIENTS), P()), out_specs=out,
                         check_vma=False)(table, ids)

  return gather


def make_scatter(mesh: jax.sharding.Mesh, num_clients: int):
  """``scatter(table, ids [S], rows [S, ...]) -> table``: writes rows of ids < K."""
  def scatter(table, ids, rows):
    def local(tab, ids, rows):
      def one(t, r):
        loc = _local_ids(ids, t.shape[0], num_clients)
        return t.at[loc].set(r.astype(t.dtype), mode="drop")
      return jax.tree.map(one, tab, rows)

    return jax.shard_map(local, mesh=mesh, in_specs=(P(axes.CLIENTS), P(), P()),
                         out_specs=P(axes.CLIENTS), check_vma=False)(table, ids, rows)

  return scatter


def check_mode(mode: str | None, mesh) -> str:
  """The table layout an engine uses: ``"sharded"`` by default with a mesh."""
  if mode is not None and mode not in TABLE_MODES:
    raise ConfigError(f"client_table={mode!r}; use one of {TABLE_MODES} (or None)")
  if mesh is None:
    return "host" if mode == "host" else "replicated"   # host: fl.host_table
  if axes.CLIENTS not in mesh.shape:
    raise ConfigError(f"the engine's mesh has axes {tuple(mesh.shape)}; it needs a"
                      f" '{axes.CLIENTS}' axis (fl.clients_mesh())")
  return mode or "sharded"


def device_bytes(tree) -> dict:
  """Bytes of ``tree``'s arrays per device, from their shardings (no transfer).

  Returns:
    ``{"total": logical bytes, "per_device": max bytes any device holds}``.
  """
  per = {}
  total = 0
  for a in jax.tree.leaves(tree):
    total += a.size * a.dtype.itemsize
    shard = a.sharding.shard_shape(a.shape)
    nbytes = int(np.prod(shard)) * a.dtype.itemsize
    for dev in a.sharding.device_set:
      per[dev] = per.get(dev, 0) + nbytes
  return {"total": int(total), "per_device": max(per.values(), default=0)}
