"""LoRA on the attention projections, optionally restricted to selected heads.

LoRA params are a separate tree ``{path: {"a": [.., n_in, r], "b": [.., r, n_out]}}``
keyed by the ``/``-joined key path of each target leaf. In the a.2 layout
``wq [(L,) D, H, d]`` is the matrix ``[D, H*d]`` and ``wo [(L,) H, d, D]`` is
``[H*d, D]``. Restricting to heads masks ``b``'s columns for q/k/v (HF's
``lora_B`` rows) and ``a``'s rows for o (HF's ``lora_A`` columns), as SPT does.
"""

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core.errors import ConfigError
from jaxlab.tuning import masks as masks_lib

_IN_SPLIT = {"wq": 1, "wk": 1, "wv": 1, "wo": 2}  # unstacked axes that form n_in


def _targets(params: Any, targets: Sequence[str]) -> dict[str, tuple[str, Any]]:
  found = {}

  def visit(path, leaf):
    names = [masks_lib._key_name(p) for p in path]
    kind, name = masks_lib._classify(names)
    if kind == "attn" and name in targets and name in _IN_SPLIT:
      found["/".join(names)] = (name, leaf)

  jax.tree_util.tree_map_with_path(visit, params)
  if not found:
    raise ConfigError(f"no LoRA targets {tuple(targets)} found in params.")
  return found


def _split(name: str, shape: tuple[int, ...]) -> tuple[tuple[int, ...], int, int]:
  """(stack shape, n_in, n_out) of a target leaf."""
  k = _IN_SPLIT[name]
  stack = shape[: len(shape) - 3]
  core = shape[len(stack):]
  return stack, int(np.prod(core[:k])), int(np.prod(core[k:]))


def lora_init(
  key: jax.Array, params: Any, *, rank: int = 16, targets: Sequence[str] = ("wq", "wk", "wv", "wo"),
) -> dict[str, dict[str, jax.Array]]:
  """LoRA factors: ``a`` Kaiming-uniform-like, ``b`` zeros (so the delta starts at 0)."""
  out = {}
  for i, (path, (name, leaf)) in enumerate(sorted(_targets(params, targets).items())):
    stack, n_in, n_out = _split(name, leaf.shape)
    bound = 1.0 / np.sqrt(n_in)
    a = jax.random.uniform(jax.random.fold_in(key, i), stack + (n_in, rank), jnp.float32,
                           -bound, bound)
    out[path] = {"a": a, "b": jnp.zeros(stack + (rank, n_out), jnp.float32)}
  return out


def lora_merge(params: Any, lora: dict[str, Any], *, scale: float = 2.0) -> Any:
  """``params`` with ``W += scale * a @ b`` on every LoRA target (differentiable)."""

  def merge(path, leaf):
    names = "/".join(masks_lib._key_name(p) for p in path)
    if names not in lora:
      return leaf
    delta = jnp.einsum("...ir,...ro->...io", lora[names]["a"], lora[names]["b"])
    return leaf + (scale * delta).reshape(leaf.shape).astype(leaf.dtype)

  return jax.tree_util.tree_map_with_path(merge, params)


def lora_head_masks(
  lora: dict[str, Any], heads: Any, *, n_layers: int, n_heads: int, n_kv_heads: int | None = None,
  policy: str = "auto",
) -> dict[str, dict[str, np.ndarray]]:
  """Masks restricting LoRA to selected heads (SPT's "LoRA on selected heads").

  For q/k/v the ``b`` columns of the heads' slices train; for o the ``a`` rows.
  k/v use the heads' KV groups and follow the GQA policy (q/o only for GQA).
  """
  n_kv_heads = n_kv_heads or n_heads
  hq = masks_lib.as_head_mask(heads, n_layers, n_heads)
  if policy == "auto":
    policy = "qkvo" if n_kv_heads == n_heads else "qo"
  hkv = masks_lib.kv_mask(hq, n_kv_heads)
  out = {}
  for path, fac in lora.items():
    name = path.split("/")[-1] if path.split("/")[-1] in _IN_SPLIT else [
      n for n in path.split("/") if n in _IN_SPLIT][-1]
    stacked = fac["a"].ndim == 3
    if name in ("wk", "wv") and policy != "qkvo":
      out[path] = {"a": np.zeros((), bool), "b": np.zeros((), bool)}
      continue
    sel = hkv if name in ("wk", "wv") else hq  # [L, heads]
    n_units = sel.shape[1]
    width = (fac["b"].shape[-1] if name != "wo" else fac["a"].shape[-2]) // n_units
    rows = np.repeat(sel, width, axis=1)  # [L, heads*d]
    if not stacked:
      raise ConfigError("lora_head_masks needs layer-stacked params ([L, ...] leaves).")
    if name == "wo":
      out[path] = {"a": rows[:, :, None], "b": np.zeros((), bool)}
    else:
      out[path] = {"a": np.zeros((), bool), "b": rows[:, None, :]}
  # The a (q/k/v) and b (o) factors must also train, else the delta stays 0 forever.
  for path in out:
    name = [n for n in path.split("/") if n in _IN_SPLIT][-1]
    if name == "wo":
      out[path]["b"] = np.asarray(bool(out[path]["a"].any()))
    elif out[path]["b"].ndim:
      layers = out[path]["b"].any(axis=(1, 2))
      out[path]["a"] = layers[:, None, None]
  return out


def restrict_lora(lora: dict[str, Any], lmasks: dict[str, Any]) -> dict[str, Any]:
  """Zeroes the frozen rows of ``a`` for o targets, so the delta lives on the heads.

  ``b`` starts at zero, so masking q/k/v's ``b`` columns is enough; for o the
  delta is ``a @ b`` with ``a`` random, so its frozen rows must start at zero too
  (masking gradients alone, as SPT's hook does, would let the delta leak into
  every head's o columns once ``b`` moves).
  """
  out = {}
  for path, fac in lora.items():
    m = np.asarray(lmasks[path]["a"])
    is_o = path.split("/")[-1] == "wo" or "wo" in path.split("/")
    out[path] = dict(fac, a=jnp.where(m, fac["a"], 0.0)) if is_o and m.ndim else dict(fac)
  return out


def lora_param_count(lora: dict[str, Any], masks: Any | None = None) -> int:
  if masks is None:
    return int(sum(x.size for x in jax.tree.leaves(lora)))
  return masks_lib.count_trainable(lora, masks)
