"""Element-wise head masks over a decoder's parameter tree (SPT's ``precise_level``).

A mask tree has the structure of the params; each leaf is a bool array that
*broadcasts* against its parameter (e.g. ``[L, 1, H, 1]`` for a stacked
``wq [L, D, H, d]``), so masks are tiny yet element-wise: ``jnp.where(mask, u, 0)``.

Leaves are recognised by name, scanning the key path from the end, so both
``{"wq": array}`` and Flax's ``{"wq": {"kernel": array}}`` work, stacked
(``[L, ...]``) or per-layer (``layers_3/...``).
"""

import dataclasses
import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import jax
import numpy as np

from jaxlab.core.errors import ConfigError

# Attention kernels / biases: (name, unstacked ndim, head axis, uses KV heads).
_ATTN = {
  "wq": (3, 1, False), "wk": (3, 1, True), "wv": (3, 1, True), "wo": (3, 0, False),
  "bq": (2, 0, False), "bk": (2, 0, True), "bv": (2, 0, True),
}
_MLP_NAMES = ("mlp", "w_gate", "w_up", "w_down", "b_gate", "b_up", "b_down", "gate", "up",
              "down", "c_fc")
_EMBED_NAMES = ("embed", "pos_embed", "lm_head", "wte", "wpe", "unembed", "embedding", "w_u")
_LAYER_RE = re.compile(r"(?:layers?|blocks?|h)_?(\d+)$")

Policy = Literal["auto", "qo", "qkvo"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class HeadTuning:
  """Which parts of a decoder are trainable (SPT ``precise_level``, paper 1 MLPs).

  Attributes:
    precise_level: 4 = q (+k/v) slices; 3 = + o slices (default); 2 = + whole MLPs
      of layers holding selected heads; 1 = + embeddings/lm_head; 0 = everything.
    policy: "qo" trains q and o only; "qkvo" also the k/v slices of the selected
      heads' KV groups; "auto" is qkvo for MHA and qo for GQA (SPT's policy).
    mlp_layers: extra whole MLP layers to train (paper 1's "+ top-m MLPs").
    train_biases: also mask-train bq/bk/bv slices (Qwen2, GPT-2).
  """

  precise_level: int = 3
  policy: Policy = "auto"
  mlp_layers: tuple[int, ...] = ()
  train_biases: bool = True

  def __post_init__(self):
    if self.precise_level not in range(5):
      raise ConfigError(f"precise_level={self.precise_level}: use 0..4 (SPT levels).")
    if self.policy not in ("auto", "qo", "qkvo"):
      raise ConfigError(f"policy={self.policy!r}: use 'auto', 'qo' or 'qkvo'.")


def as_head_mask(heads: Any, n_layers: int, n_heads: int) -> np.ndarray:
  """Heads as a bool ``[L, H]`` mask.

  Args:
    heads: a bool/0-1 ``[L, H]`` array, or an iterable of ``(layer, head)`` pairs
      (zero-based, "l.h" as TransformerLens).
    n_layers: L.
    n_heads: H (query heads).

  Returns:
    bool [L, H].
  """
  arr = np.asarray(heads) if not isinstance(heads, (list, tuple)) else None
  if arr is not None and arr.shape == (n_layers, n_heads):
    return arr.astype(bool)
  mask = np.zeros((n_layers, n_heads), bool)
  for pair in heads:
    layer, head = (int(v) for v in pair)
    if not (0 <= layer < n_layers and 0 <= head < n_heads):
      raise ConfigError(
        f"head ({layer}, {head}) outside the model's {n_layers} x {n_heads} heads; "
        "heads are zero-based (layer, head) pairs.")
    mask[layer, head] = True
  return mask


def kv_group(head: int | np.ndarray, n_heads: int, n_kv_heads: int) -> Any:
  """The KV group a query head reads: ``h // (H / H_kv)`` (HF ``repeat_kv`` order)."""
  if n_heads % n_kv_heads:
    raise ConfigError(f"n_heads={n_heads} is not a multiple of n_kv_heads={n_kv_heads}.")
  return head // (n_heads // n_kv_heads)


def kv_mask(head_mask: np.ndarray, n_kv_heads: int) -> np.ndarray:
  """``[L, H]`` query-head mask -> ``[L, H_kv]`` mask of the KV groups they use."""
  n_layers, n_heads = head_mask.shape
  groups = n_heads // n_kv_heads
  return head_mask.reshape(n_layers, n_kv_heads, groups).any(-1)


def random_heads(
  seed: int, n_layers: int, n_heads: int, k: int, exclude: Any = None,
) -> list[tuple[int, int]]:
  """k distinct random heads (a random-k control), optionally avoiding ``exclude``."""
  rng = np.random.default_rng(seed)
  banned = as_head_mask(exclude, n_layers, n_heads) if exclude is not None else None
  pool = np.flatnonzero(~banned.ravel()) if banned is not None else np.arange(n_layers * n_heads)
  if k > pool.size:
    raise ConfigError(f"k={k} random heads requested but only {pool.size} are available.")
  picks = np.sort(rng.choice(pool, size=k, replace=False))
  return [(int(i // n_heads), int(i % n_heads)) for i in picks]


def _key_name(entry: Any) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(entry, attr):
      return str(getattr(entry, attr))
  return str(entry)


def _classify(names: Sequence[str]) -> tuple[str, str | None]:
  """(kind, attn name) for one leaf path; kind in attn/mlp/embed/other."""
  for name in reversed(names):
    low = name.lower()
    if low in _ATTN:
      return "attn", low
  low_names = [n.lower() for n in names]
  if "norm" in low_names[-1]:
    return "other", None
  if any(n in _EMBED_NAMES or n.startswith("embed") for n in low_names):
    return "embed", None
  if any(n in _MLP_NAMES or "mlp" in n for n in low_names):
    return "mlp", None
  return "other", None


def _layer_of(names: Sequence[str]) -> int | None:
  for name in names:
    m = _LAYER_RE.search(name.lower())
    if m:
      return int(m.group(1))
  return None


def _attn_mask(
  name: str, leaf: Any, layer: int | None, heads_q: np.ndarray, heads_kv: np.ndarray | None,
) -> np.ndarray:
  base_ndim, head_axis, uses_kv = _ATTN[name]
  sel = heads_kv if uses_kv else heads_q  # [L, H or H_kv]
  if sel is None:
    return np.zeros((), bool)
  stacked = leaf.ndim == base_ndim + 1
  if not stacked and leaf.ndim != base_ndim:
    raise ConfigError(f"{name} has shape {leaf.shape}; expected {base_ndim} dims or "
                      f"{base_ndim + 1} stacked over layers (spec a.2 layout).")
  if leaf.shape[head_axis + int(stacked)] != sel.shape[1]:
    raise ConfigError(f"{name} has {leaf.shape[head_axis + int(stacked)]} heads on its head "
                      f"axis but the head mask has {sel.shape[1]}; check n_heads/n_kv_heads.")
  shape = [1] * leaf.ndim
  if stacked:
    shape[0], shape[head_axis + 1] = sel.shape
    return sel.reshape(shape)
  if layer is None:
    raise ConfigError(f"cannot tell which layer the unstacked {name} belongs to; name "
                      "layer modules 'layers_<i>' or stack parameters over layers.")
  shape[head_axis] = sel.shape[1]
  return sel[layer].reshape(shape)


def _layer_mask(leaf: Any, layer: int | None, layers: np.ndarray, n_layers: int) -> np.ndarray:
  """Whole-leaf mask for the given layers (stacked: leading axis)."""
  if layer is not None:
    return np.asarray(bool(layers[layer]))
  if leaf.ndim >= 1 and leaf.shape[0] == n_layers:
    return layers.reshape((n_layers,) + (1,) * (leaf.ndim - 1))
  return np.asarray(bool(layers.any()))


def head_masks(
  params: Any,
  heads: Any,
  *,
  n_heads: int,
  n_kv_heads: int | None = None,
  n_layers: int | None = None,
  tuning: HeadTuning = HeadTuning(),
) -> Any:
  """The trainable-entry mask tree for pinpoint tuning of ``heads``.

  Args:
    params: the decoder's parameter tree (spec a.2 layout; arrays or shape structs).
    heads: ``(layer, head)`` pairs or a bool ``[L, H]`` mask.
    n_heads: H.
    n_kv_heads: H_kv (default H).
    n_layers: L (default: inferred from the head mask or the stacked ``wq``).
    tuning: the trainable set (level, GQA policy, extra MLP layers).

  Returns:
    A tree like ``params`` whose leaves are bool arrays broadcastable to each leaf.
  """
  n_kv_heads = n_kv_heads or n_heads
  if n_layers is None:
    n_layers = _infer_layers(params, heads)
  hq = as_head_mask(heads, n_layers, n_heads)
  policy = tuning.policy
  if policy == "auto":
    policy = "qkvo" if n_kv_heads == n_heads else "qo"
  hkv = kv_mask(hq, n_kv_heads) if policy == "qkvo" else None
  level = tuning.precise_level
  mlp_layers = hq.any(-1) if level <= 2 else np.zeros(n_layers, bool)
  for layer in tuning.mlp_layers:
    mlp_layers[layer] = True

  def leaf_mask(path, leaf):
    names = [_key_name(p) for p in path]
    kind, attn_name = _classify(names)
    if level == 0:
      return np.ones((), bool)
    if kind == "embed":
      return np.asarray(level <= 1)
    if kind == "mlp":
      return _layer_mask(leaf, _layer_of(names), mlp_layers, n_layers)
    if kind == "attn":
      if attn_name == "wo" and level == 4:
        return np.zeros((), bool)
      if attn_name.startswith("b") and not tuning.train_biases:
        return np.zeros((), bool)
      return _attn_mask(attn_name, leaf, _layer_of(names), hq, hkv)
    return np.zeros((), bool)

  return jax.tree_util.tree_map_with_path(leaf_mask, params)


def _infer_layers(params: Any, heads: Any) -> int:
  arr = np.asarray(heads) if not isinstance(heads, (list, tuple)) else None
  if arr is not None and arr.ndim == 2 and arr.dtype == bool:
    return arr.shape[0]
  found = []

  def visit(path, leaf):
    names = [_key_name(p) for p in path]
    kind, name = _classify(names)
    if kind == "attn" and name == "wq":
      layer = _layer_of(names)
      found.append(leaf.shape[0] if leaf.ndim == 4 else (layer or 0) + 1)

  jax.tree_util.tree_map_with_path(visit, params)
  if not found:
    raise ConfigError("no 'wq' leaf found in params; pass n_layers= explicitly.")
  return max(found)


def full_masks(params: Any) -> Any:
  """All-trainable mask tree (full fine-tuning through the same code path)."""
  return jax.tree.map(lambda _: np.ones((), bool), params)


def count_trainable(params: Any, masks: Any) -> int:
  """Number of parameter entries a mask tree leaves trainable."""
  total = 0
  for leaf, mask in zip(jax.tree.leaves(params), jax.tree.leaves(masks)):
    total += int(np.broadcast_to(np.asarray(mask), leaf.shape).sum())
  return total


def heads_to_list(head_mask: np.ndarray) -> list[tuple[int, int]]:
  """bool ``[L, H]`` -> sorted ``[(layer, head)]`` (JSON-friendly)."""
  return [(int(a), int(b)) for a, b in zip(*np.nonzero(np.asarray(head_mask)))]


def top_heads(scores: np.ndarray, k: int, *, ascending: bool = True) -> list[tuple[int, int]]:
  """The k heads with the lowest (SPT's ascending ``argsort``) or highest scores."""
  scores = np.asarray(scores)
  order = np.argsort(scores.ravel(), kind="stable")
  if not ascending:
    order = order[::-1]
  n_heads = scores.shape[1]
  return [(int(i // n_heads), int(i % n_heads)) for i in order[:k]]


def union_heads(*head_sets: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
  return sorted({(int(a), int(b)) for s in head_sets for a, b in s})
