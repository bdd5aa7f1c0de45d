"""Head slices as the trainable tree: gather the selected heads, scatter them back.

Pinpoint tuning trains only the q (and k/v) / o slices of k heads. Rather than
differentiating whole ``[L, D, H, d]`` kernels and masking (what ``pinpoint`` does),
the trainable tree here *is* the slices: ``wq[l, :, h, :]`` for each selected
``(l, h)`` becomes one row of a ``[k, D, d]`` array. Gradients, Adam moments and
weight decay then exist only for selected entries; everything else is frozen by
construction (bit-identical), and a sweep over random head sets vmaps because the
head indices are arrays of a fixed length k.

Index layout (all int32 numpy/jax arrays):
  ``q``: ``[k, 2]`` (layer, query head) pairs for wq / wo (and bq);
  ``kv``: ``[g, 2]`` (layer, KV group) pairs for wk / wv (and bk / bv); ``g`` may be 0;
  ``mlp``: ``[m]`` whole MLP layers (paper 1's "+ top-m MLPs").
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core.errors import ConfigError
from jaxlab.tuning import masks as masks_lib

_Q = {"wq": "d", "bq": "b", "wo": "o"}  # leaf -> how its head axis is laid out
_KV = {"wk": "d", "wv": "d", "bk": "b", "bv": "b"}
_MLP = ("w_gate", "w_up", "w_down", "b_gate", "b_up", "b_down")


def select(cfg: Any, heads: Any, *, policy: str = "auto", mlp_layers: tuple[int, ...] = (),
           ) -> dict[str, np.ndarray]:
  """Index arrays for ``heads`` (``(layer, head)`` pairs or a bool ``[L, H]`` mask).

  Args:
    cfg: decoder config (n_layers, n_heads, kv_heads).
    heads: the selected query heads.
    policy: "qo", "qkvo", or "auto" (qkvo for MHA, qo for GQA: SPT's policy).
    mlp_layers: whole MLP layers to train as well.

  Returns:
    ``{"q": [k, 2], "kv": [g, 2], "mlp": [m]}`` int32, sorted; empty entries omitted.
  """
  hm = masks_lib.as_head_mask(heads, cfg.n_layers, cfg.n_heads)
  if policy == "auto":
    policy = "qkvo" if cfg.kv_heads == cfg.n_heads else "qo"
  if policy not in ("qo", "qkvo"):
    raise ConfigError(f"policy={policy!r}: use 'auto', 'qo' or 'qkvo'.")
  q = np.argwhere(hm).astype(np.int32).reshape(-1, 2)
  kv = (np.argwhere(masks_lib.kv_mask(hm, cfg.kv_heads)).astype(np.int32).reshape(-1, 2)
        if policy == "qkvo" else np.zeros((0, 2), np.int32))
  mlp = np.asarray(sorted(set(int(x) for x in mlp_layers)), np.int32)
  if mlp.size and not (0 <= mlp.min() and mlp.max() < cfg.n_layers):
    raise ConfigError(f"mlp_layers={tuple(mlp)} outside 0..{cfg.n_layers - 1}.")
  # Empty entries are left out (orbax cannot checkpoint zero-size arrays).
  return {k: v for k, v in (("q", q), ("kv", kv), ("mlp", mlp)) if v.size}


def first_layer(index: dict[str, Any]) -> int:
  """The lowest layer any index touches (the static ``start_layer``); host numpy only."""
  layers = [np.asarray(index[k])[..., 0].ravel() for k in ("q", "kv") if k in index]
  layers += [np.asarray(index["mlp"]).ravel()] if "mlp" in index else []
  flat = np.concatenate([x for x in layers if x.size] or [np.zeros(0, np.int32)])
  if not flat.size:
    raise ConfigError("the selection is empty; pass at least one head or MLP layer.")
  return int(flat.min())


def _take(leaf: jax.Array, pairs: jax.Array, layout: str) -> jax.Array:
  leaf, ls, hs = jnp.asarray(leaf), pairs[:, 0], pairs[:, 1]
  if layout == "d":  # [L, D, H, d] -> [k, D, d]
    return leaf[ls, :, hs, :]
  return leaf[ls, hs]  # "b": [L, H, d] -> [k, d]; "o": [L, H, d, D] -> [k, d, D]


def _put(leaf: jax.Array, pairs: jax.Array, layout: str, value: jax.Array) -> jax.Array:
  leaf, ls, hs = jnp.asarray(leaf), pairs[:, 0], pairs[:, 1]
  if layout == "d":
    return leaf.at[ls, :, hs, :].set(value.astype(leaf.dtype))
  return leaf.at[ls, hs].set(value.astype(leaf.dtype))


def gather(params: dict, index: dict[str, Any], *, level: int = 3) -> dict[str, jax.Array]:
  """The trainable slices of ``params`` (level 3: q (+kv) and o; level 4: no o)."""
  lay = params["layers"]
  out = {}
  for name, layout in _Q.items():
    if name in lay and not (name == "wo" and level == 4) and "q" in index:
      out[name] = _take(lay[name], jnp.asarray(index["q"]), layout)
  for name, layout in _KV.items():
    if name in lay and "kv" in index:
      out[name] = _take(lay[name], jnp.asarray(index["kv"]), layout)
  for name in _MLP:
    if name in lay and "mlp" in index:
      out[name] = jnp.asarray(lay[name])[jnp.asarray(index["mlp"])]
  return out


def scatter(params: dict, index: dict[str, Any], slices: dict[str, jax.Array]) -> dict:
  """``params`` with the selected slices replaced by ``slices`` (differentiable in slices)."""
  lay = dict(params["layers"])
  for name, value in slices.items():
    if name in _Q:
      lay[name] = _put(lay[name], jnp.asarray(index["q"]), _Q[name], value)
    elif name in _KV:
      lay[name] = _put(lay[name], jnp.asarray(index["kv"]), _KV[name], value)
    else:
      leaf = jnp.asarray(lay[name])
      lay[name] = leaf.at[jnp.asarray(index["mlp"])].set(value.astype(leaf.dtype))
  return dict(params, layers=lay)


def count(slices: dict[str, Any]) -> int:
  """Trainable entries (duplicates impossible: the indices are unique pairs)."""
  return int(sum(np.prod(v.shape) for v in jax.tree.leaves(slices)))
