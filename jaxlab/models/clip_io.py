"""Hugging Face CLIP safetensors <-> jaxlab CLIP params, by a naming rule.

``text_model.encoder.layers.3.self_attn.q_proj.weight`` (torch ``(out, in)``) becomes
``params['text_model']['encoder']['layers_3']['self_attn']['q_proj']['kernel']`` (``(in, out)``);
LayerNorm ``weight`` becomes ``scale``; embeddings keep their ``(num, dim)`` table; the patch
Conv2d goes OIHW -> HWIO. ``position_ids`` buffers are ignored.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np

from jaxlab.core import errors
from jaxlab.models.clip import CLIPConfig

_LAYER = re.compile(r"\.layers\.(\d+)\.")
_EMBEDS = ("token_embedding", "position_embedding")


def _leaf_name(parent: str, leaf: str, value: np.ndarray) -> tuple[str, np.ndarray]:
  if leaf != "weight":
    return leaf, value
  if parent in _EMBEDS:
    return "embedding", value
  if parent == "patch_embedding":
    return "kernel", value.transpose(2, 3, 1, 0)
  if "norm" in parent or "layrnorm" in parent:
    return "scale", value
  return "kernel", value.T


def params_from_hf(tensors: dict[str, np.ndarray]) -> dict[str, Any]:
  """HF CLIP state dict (numpy) -> nested Flax params (float32 numpy leaves)."""
  params: dict[str, Any] = {}
  for key, value in tensors.items():
    if key.endswith("position_ids"):
      continue
    parts = _LAYER.sub(lambda m: f".layers_{m.group(1)}.", key).split(".")
    parent = parts[-2] if len(parts) > 1 else ""
    value = np.asarray(value, np.float32)
    if key == "logit_scale":
      value = value.reshape(())
    name, value = _leaf_name(parent, parts[-1], value)
    node = params
    for p in parts[:-1]:
      node = node.setdefault(p, {})
    node[name] = value
  return params


def params_to_hf(params: dict[str, Any]) -> dict[str, np.ndarray]:
  """Inverse of :func:`params_from_hf` (contiguous float32 numpy arrays)."""
  out: dict[str, np.ndarray] = {}

  def walk(node: Any, path: list[str]) -> None:
    if isinstance(node, dict):
      for k, v in node.items():
        walk(v, path + [k])
      return
    value = np.asarray(node, np.float32)
    parent, leaf = (path[-2] if len(path) > 1 else ""), path[-1]
    if leaf == "embedding" or leaf == "scale":
      leaf = "weight"
    elif leaf == "kernel":
      leaf = "weight"
      value = value.transpose(3, 2, 0, 1) if parent == "patch_embedding" else value.T
    key = ".".join(path[:-1] + [leaf])
    key = re.sub(r"\.layers_(\d+)\.", lambda m: f".layers.{m.group(1)}.", key)
    out[key] = np.array(value, np.float32, order="C")  # keeps 0-d logit_scale 0-d

  walk(params, [])
  return out


def load_hf_clip(path: str | os.PathLike) -> tuple[CLIPConfig, dict[str, Any]]:
  """Loads ``config.json`` + ``model.safetensors`` from an HF CLIP folder (no torch).

  Raises:
    AssetMissingError: the folder or one of the two files is absent.
  """
  from safetensors.numpy import load_file
  cfg_path = os.path.join(path, "config.json")
  st_path = os.path.join(path, "model.safetensors")
  for f in (cfg_path, st_path):
    if not os.path.exists(f):
      raise errors.AssetMissingError(
        f"{f} not found; pass a folder saved by CLIPModel.save_pretrained (e.g. a local "
        "snapshot of openai/clip-vit-base-patch16) or run `jaxlab run clip-pretrain`")
  with open(cfg_path) as fh:
    cfg = CLIPConfig.from_hf(json.load(fh))
  return cfg, params_from_hf(load_file(st_path))


def save_hf_clip(path: str | os.PathLike, cfg: CLIPConfig, params: dict[str, Any],
                 extra: dict[str, Any] | None = None) -> None:
  """Writes an HF-layout folder (``config.json`` + ``model.safetensors``)."""
  from safetensors.numpy import save_file
  os.makedirs(path, exist_ok=True)
  d = cfg.to_hf()
  if extra:
    d["jaxlab"] = extra
  with open(os.path.join(path, "config.json"), "w") as fh:
    json.dump(d, fh, indent=1)
  save_file(params_to_hf(params), os.path.join(path, "model.safetensors"))
