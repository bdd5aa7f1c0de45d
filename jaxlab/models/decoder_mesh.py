"""Placing a decoder on a (`data`, `model`) mesh with the rules of `decoder_sharding`.

Typical use (the same for forward, generation, patching and tuning)::

  mesh = core.sharding.make_mesh({"data": 2, "model": 4})
  params = decoder_mesh.shard_params(cfg, params, mesh)
  ids, mask = decoder_mesh.shard_batch(mesh, ids, mask)
  with jax.set_mesh(mesh):                  # activations follow the same rules table
    logits, _ = decoder.jit_apply(cfg, params, ids, mask)
"""

from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxlab.models import decoder_sharding as rules_lib
from jaxlab.models.decoder import Cache, param_shapes
from jaxlab.models.decoder_config import DecoderConfig


def param_specs(cfg: DecoderConfig, mesh: jax.sharding.Mesh) -> dict:
  """PartitionSpec tree of the parameters (same structure as `param_shapes(cfg)`)."""
  return rules_lib.tree_specs(param_shapes(cfg), dict(mesh.shape))


def param_shardings(cfg: DecoderConfig, mesh: jax.sharding.Mesh) -> dict:
  """NamedSharding tree of the parameters."""
  return jax.tree.map(lambda s: NamedSharding(mesh, s), param_specs(cfg, mesh),
                      is_leaf=lambda x: isinstance(x, P))


def shard_params(cfg: DecoderConfig, params: dict, mesh: jax.sharding.Mesh) -> dict:
  """Places (or re-places) a parameter tree on the mesh by the rules."""
  return jax.device_put(params, param_shardings(cfg, mesh))


def constrain_params(cfg: DecoderConfig, params: dict) -> dict:
  """Inside jit under ``jax.set_mesh``: pin a parameter tree to the rules (else no-op)."""
  mesh_shape = rules_lib.current_mesh_shape()
  if not mesh_shape:
    return params
  specs = rules_lib.tree_specs(param_shapes(cfg), mesh_shape)
  return jax.tree.map(jax.lax.with_sharding_constraint, params, specs)


def batch_sharding(mesh: jax.sharding.Mesh, shape: tuple[int, ...]) -> NamedSharding:
  """Rows over `data` (when they divide), everything else replicated."""
  logical = ("batch",) + (None,) * (len(shape) - 1)
  return NamedSharding(mesh, rules_lib.spec(logical, shape, dict(mesh.shape)))


def shard_batch(mesh: jax.sharding.Mesh, *arrays: Any) -> tuple:
  """Places [b, ...] host arrays with their rows over `data`.

  On several hosts every process passes the same global arrays (each keeps its own rows).
  """
  out = []
  for a in arrays:
    a = np.asarray(a)
    sh = batch_sharding(mesh, a.shape)
    out.append(jax.make_array_from_callback(a.shape, sh, lambda idx, a=a: a[idx]))
  return tuple(out)


def cache_shardings(cfg: DecoderConfig, mesh: jax.sharding.Mesh, batch: int,
                    max_len: int) -> Cache:
  """NamedShardings of a `Cache` for `batch` rows and `max_len` slots."""
  kv = (cfg.n_layers, batch, max_len, cfg.kv_heads, cfg.head_dim)
  shapes = {"k": kv, "v": kv, "mask": (batch, max_len), "index": ()}
  ms = dict(mesh.shape)
  return Cache(**{n: NamedSharding(mesh, rules_lib.spec(rules_lib.CACHE_AXES[n], s, ms))
                  for n, s in shapes.items()})


def bytes_per_device(tree: Any) -> dict[int, int]:
  """``{device id: bytes}`` held by the addressable shards of every array in `tree`."""
  out: dict[int, int] = {}
  for leaf in jax.tree.leaves(tree):
    for s in leaf.addressable_shards:
      out[s.device.id] = out.get(s.device.id, 0) + s.data.nbytes
  return out
