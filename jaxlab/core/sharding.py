"""Meshes and shardings: `jit` + `NamedSharding` over `jax.make_mesh`.

No pmap anywhere in jaxlab: a step is jitted with in/out shardings and the
compiler inserts the collectives; `jax.shard_map` is used where a collective
must be explicit. Axis names come from `jaxlab.core.axes`.
"""

import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

from jaxlab.core import axes
from jaxlab.core.errors import ConfigError


def make_mesh(
  shape: Mapping[str, int], devices: list[jax.Device] | None = None
) -> jax.sharding.Mesh:
  """A mesh with named axes; one size may be -1 (all remaining devices).

  Args:
    shape: ``{axis_name: size}`` with names from `jaxlab.core.axes`.
    devices: defaults to ``jax.devices()`` (global, so multi-host ready).
  """
  devices = devices if devices is not None else jax.devices()
  names = tuple(shape)
  for n in names:
    if n not in axes.ALL:
      raise ConfigError(f"unknown mesh axis {n!r}; use one of {', '.join(axes.ALL)}")
  sizes = list(shape.values())
  if sizes.count(-1) > 1:
    raise ConfigError("at most one mesh axis may have size -1")
  known = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if len(devices) % known:
      raise ConfigError(f"{len(devices)} devices do not divide into mesh {dict(shape)}")
    sizes[sizes.index(-1)] = len(devices) // known
  if math.prod(sizes) != len(devices):
    raise ConfigError(
      f"mesh {dict(zip(names, sizes))} needs {math.prod(sizes)} devices,"
      f" but {len(devices)} are available; change the mesh shape"
    )
  return jax.make_mesh(
    tuple(sizes), names, axis_types=(AxisType.Auto,) * len(names), devices=devices
  )


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Every device holds the whole array."""
  return NamedSharding(mesh, P())


def named(mesh: jax.sharding.Mesh, *spec: Any) -> NamedSharding:
  """``NamedSharding(mesh, P(*spec))``."""
  return NamedSharding(mesh, P(*spec))


def leading_axis(mesh: jax.sharding.Mesh, axis: str, tree: Any) -> Any:
  """A sharding tree that splits every leaf's first dimension over ``axis``."""
  return jax.tree.map(
    lambda x: NamedSharding(mesh, P(axis) if np.ndim(x) else P()), tree
  )


def shard_batch(batch: Any, mesh: jax.sharding.Mesh, axis: str = axes.DATA) -> Any:
  """Places a host batch with its leading dimension split over ``axis``.

  On several hosts each process passes its local rows and the result is the
  global array (``jax.make_array_from_process_local_data``).
  """
  def put(x):
    sh = NamedSharding(mesh, P(axis) if np.ndim(x) else P())
    if jax.process_count() > 1:
      return jax.make_array_from_process_local_data(sh, np.asarray(x))
    return jax.device_put(x, sh)

  return jax.tree.map(put, batch)


def put_global(tree: Any, mesh: jax.sharding.Mesh, spec: Any = P()) -> Any:
  """Places host (or local device) arrays on ``NamedSharding(mesh, spec)``.

  Every process passes the same full arrays and fills its own devices' shards
  (``jax.make_array_from_callback``), so this works with several processes, where
  ``jax.device_put`` of a local array onto a global sharding does not.
  """
  sh = NamedSharding(mesh, spec)

  def put(a):
    if isinstance(a, jax.Array) and (a.sharding == sh or jax.process_count() == 1):
      return jax.device_put(a, sh)
    a = np.asarray(a)
    return jax.make_array_from_callback(a.shape, sh, lambda i: a[i])

  return jax.tree.map(put, tree)


def init_on_mesh(
  init_fn: Callable[..., Any], sharding_fn: Callable[[Any], Any], *args: Any
) -> Any:
  """Builds a state directly on its sharding (no host copy, no double compile).

  Args:
    init_fn: pure function ``(*args) -> state``.
    sharding_fn: maps the abstract state (from ``jax.eval_shape``) to a tree
      of shardings.
  """
  abstract = jax.eval_shape(init_fn, *args)
  return jax.jit(init_fn, out_shardings=sharding_fn(abstract))(*args)


def copy_tree(tree: Any) -> Any:
  """Fresh buffers, so donating the result never deletes the input."""
  return jax.tree.map(jnp.copy, tree)
