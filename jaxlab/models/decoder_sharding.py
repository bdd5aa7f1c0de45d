"""The decoder's sharding rules, declared once: logical axis names -> mesh axes.

Megatron-style tensor parallelism over ``model`` plus data parallelism over ``data``:
attention heads (the q/k/v/o head axis) and the MLP hidden axis split over ``model``, the
vocabulary (embedding and unembedding) splits over ``model``, the batch over ``data``.
Every leaf of the parameter tree, every constrained activation and the KV cache carries a
tuple of *logical* axis names (``LEAF_AXES``, ``CACHE_AXES``, the ``constrain`` calls in the
forward); ``spec`` turns them into a ``PartitionSpec`` with ``RULES``. A logical axis stays
replicated when the mesh lacks its mesh axis or when the dimension does not divide by the mesh
axis size (e.g. 2 KV heads on ``model=4``), so one rules table serves any mesh.

Parameters and inputs are placed with ``decoder_mesh``; activations follow via
``constrain``, which is a no-op unless a mesh is set (``with jax.set_mesh(mesh):``).
"""

from collections.abc import Mapping

import jax
from jax.sharding import PartitionSpec as P

from jaxlab.core import axes

RULES: tuple[tuple[str, str], ...] = (
  ("batch", axes.DATA),
  ("heads", axes.MODEL),
  ("kv_heads", axes.MODEL),
  ("mlp", axes.MODEL),
  ("vocab", axes.MODEL),
)
"""Logical axis -> mesh axis. Unlisted logical axes (layers, embed, head_dim, seq,
positions) are replicated."""

_LAYER_LEAF_AXES = {
  "attn_norm_scale": ("embed",), "attn_norm_bias": ("embed",),
  "mlp_norm_scale": ("embed",), "mlp_norm_bias": ("embed",),
  "wq": ("embed", "heads", "head_dim"), "wk": ("embed", "kv_heads", "head_dim"),
  "wv": ("embed", "kv_heads", "head_dim"), "wo": ("heads", "head_dim", "embed"),
  "bq": ("heads", "head_dim"), "bk": ("kv_heads", "head_dim"), "bv": ("kv_heads", "head_dim"),
  "bo": ("embed",),
  "w_gate": ("embed", "mlp"), "w_up": ("embed", "mlp"), "w_down": ("mlp", "embed"),
  "b_gate": ("mlp",), "b_up": ("mlp",), "b_down": ("embed",),
}

LEAF_AXES: dict = {
  "embed": ("vocab", "embed"),
  "unembed": ("embed", "vocab"),
  "pos_embed": ("positions", "embed"),
  "final_norm_scale": ("embed",),
  "final_norm_bias": ("embed",),
  "layers": {k: ("layers",) + v for k, v in _LAYER_LEAF_AXES.items()},
}
"""Logical axes of every parameter (the spec a.2 layout, layers stacked on [L])."""

CACHE_AXES = {"k": ("layers", "batch", "seq", "kv_heads", "head_dim"),
              "v": ("layers", "batch", "seq", "kv_heads", "head_dim"),
              "mask": ("batch", "seq"), "index": ()}
"""Logical axes of the KV cache fields (`decoder.Cache`)."""

ACT_AXES = {
  "resid": ("batch", "seq", "embed"),
  "q": ("batch", "seq", "heads", "head_dim"),
  "kv": ("batch", "seq", "kv_heads", "head_dim"),
  "z": ("batch", "seq", "heads", "head_dim"),
  "logits": ("batch", "seq", "vocab"),
}
"""Logical axes of the activations the forward constrains."""


def spec(logical: tuple, shape: tuple[int, ...], mesh_shape: Mapping[str, int],
         rules: tuple[tuple[str, str], ...] = RULES) -> P:
  """PartitionSpec for one array from its logical axes.

  Args:
    logical: one logical name (or None) per dimension.
    shape: the array's shape (same length as `logical`).
    mesh_shape: ``{mesh axis: size}`` (``mesh.shape``).
    rules: logical -> mesh axis pairs.

  Returns:
    A spec that shards a dimension only when its mesh axis exists, has size > 1, is not
    used by an earlier dimension, and divides the dimension; otherwise replicates it.
  """
  table, used, out = dict(rules), set(), []
  for name, size in zip(logical, shape):
    ax = table.get(name)
    n = mesh_shape.get(ax, 1) if ax is not None else 1
    if n > 1 and ax not in used and size % n == 0:
      used.add(ax)
      out.append(ax)
    else:
      out.append(None)
  return P(*out)


def tree_specs(shapes: dict, mesh_shape: Mapping[str, int], table: dict = LEAF_AXES,
               rules: tuple[tuple[str, str], ...] = RULES) -> dict:
  """PartitionSpecs for a nested dict of shapes (e.g. `decoder.param_shapes(cfg)`)."""
  out = {}
  for name, shape in shapes.items():
    if isinstance(shape, dict):
      out[name] = tree_specs(shape, mesh_shape, table[name], rules)
    else:
      out[name] = spec(table[name], tuple(shape), mesh_shape, rules)
  return out


def current_mesh_shape() -> dict[str, int]:
  """``{axis: size}`` of the mesh set with ``jax.set_mesh`` (empty when none is set)."""
  mesh = jax.sharding.get_abstract_mesh()
  return {} if mesh.empty else dict(mesh.shape)


def constrain(x: jax.Array, kind: str) -> jax.Array:
  """``with_sharding_constraint`` of an activation by its ``ACT_AXES`` kind, under a mesh.

  Outside ``jax.set_mesh`` (one device, or the caller wants the compiler to choose) it
  returns ``x`` unchanged, so the single-device path is untouched.
  """
  mesh_shape = current_mesh_shape()
  logical = ACT_AXES[kind]
  if not mesh_shape or x.ndim != len(logical):
    return x
  return jax.lax.with_sharding_constraint(x, spec(logical, x.shape, mesh_shape))


def constrain_cache(fields: dict) -> dict:
  """`constrain` for the KV cache fields (``k``, ``v``, ``mask``) under a mesh."""
  mesh_shape = current_mesh_shape()
  if not mesh_shape:
    return fields
  return {n: jax.lax.with_sharding_constraint(a, spec(CACHE_AXES[n], a.shape, mesh_shape))
          if n in CACHE_AXES and a.ndim == len(CACHE_AXES[n]) else a
          for n, a in fields.items()}
