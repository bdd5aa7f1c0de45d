"""HF ``LlavaForConditionalGeneration`` directories -> ``jaxlab.models.lvlm`` params.

Reads ``config.json``, ``model.safetensors`` (or a sharded index) and, when present,
``preprocessor_config.json`` and ``tokenizer.json``. Both key layouts are accepted: the
saved (legacy) one, ``language_model.model.*`` / ``language_model.lm_head.weight`` /
``vision_tower[.vision_model].*`` / ``multi_modal_projector.*``, and transformers v5's
in-memory one, ``model.language_model.*`` / ``lm_head.weight`` / ``model.vision_tower.*`` /
``model.multi_modal_projector.*``. Vision layers deeper than the selected feature layer and
``post_layernorm`` are never used by LLaVA, so they are skipped.

Only single-tile LLaVA with a CLIP vision tower and a llama-family decoder is supported;
anything else (LLaVA-NeXT anyres, OneVision, VipLLaVA, SigLIP towers) raises a one-line
``ConfigError``.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from jaxlab.core.errors import AssetMissingError, CheckpointError, ConfigError
from jaxlab.models import clip, clip_io, lvlm
from jaxlab.models.loaders import common
from jaxlab.models.loaders.hf import _reader, config_from_hf
from jaxlab.models.tokenizer import Tokenizer

_OTHER = {"llava_next": "LLaVA-NeXT (anyres tiling)",
          "llava_next_video": "LLaVA-NeXT-Video", "llava_onevision": "LLaVA-OneVision",
          "vipllava": "VipLLaVA", "llava_llama": "the original LLaVA repo format",
          "mistral3": "Mistral3", "video_llava": "Video-LLaVA"}
_TEXT_TYPES = ("llama", "mistral", "qwen2")
_LAYOUTS = (  # (decoder name prefix, lm_head name, vision prefixes, projector prefix)
  ("language_model.", "language_model.lm_head.weight",
   ("vision_tower.vision_model.", "vision_tower."), "multi_modal_projector."),
  ("model.language_model.", "lm_head.weight",
   ("model.vision_tower.vision_model.", "model.vision_tower."), "model.multi_modal_projector."),
)


def config_from_hf_llava(conf: dict) -> lvlm.LVLMConfig:
  """An HF LLaVA ``config.json`` dict -> ``LVLMConfig``; unsupported variants raise."""
  mt = conf.get("model_type")
  if mt != "llava":
    what = _OTHER.get(mt, repr(mt))
    raise ConfigError(f"model_type {mt!r} ({what}) is not supported; only "
                      "LlavaForConditionalGeneration ('llava') checkpoints load.")
  if conf.get("image_grid_pinpoints") is not None:
    raise ConfigError("image_grid_pinpoints (anyres tiling) is not supported; only "
                      "single-tile LLaVA.")
  v, t = dict(conf.get("vision_config") or {}), dict(conf.get("text_config") or {})
  if v.get("model_type", "clip_vision_model") != "clip_vision_model":
    raise ConfigError(f"vision tower {v.get('model_type')!r} is not supported; only CLIP "
                      "('clip_vision_model').")
  t.setdefault("model_type", "llama")
  if t["model_type"] not in _TEXT_TYPES:
    raise ConfigError(f"text model {t['model_type']!r} is not supported; use one of "
                      f"{', '.join(_TEXT_TYPES)}.")
  vision = clip.VisionConfig(
    width=v.get("hidden_size", 1024), layers=v.get("num_hidden_layers", 24),
    heads=v.get("num_attention_heads", 16), mlp=v.get("intermediate_size", 4096),
    image_size=v.get("image_size", 336), patch_size=v.get("patch_size", 14),
    channels=v.get("num_channels", 3), eps=v.get("layer_norm_eps", 1e-5),
    act=v.get("hidden_act", "quick_gelu"))
  if vision.act not in clip.ACTIVATIONS:
    raise ConfigError(f"vision hidden_act {vision.act!r} is not supported.")
  layers = conf.get("vision_feature_layer", -2)
  layers = tuple(layers) if isinstance(layers, list) else (int(layers),)
  return lvlm.LVLMConfig(
    vision=vision, text=config_from_hf(t),
    image_token_id=conf.get("image_token_index", conf.get("image_token_id", 32000)),
    feature_layers=layers, select=conf.get("vision_feature_select_strategy", "default"),
    projector_act=conf.get("projector_hidden_act", "gelu"),
    projector_bias=bool(conf.get("multimodal_projector_bias", True)))


def _layout(names: set[str]):
  for dec, head, vis, proj in _LAYOUTS:
    if any(n.startswith(dec + "model.") or n.startswith(dec + "layers.") for n in names):
      vp = next((p for p in vis if any(n.startswith(p + "embeddings.") for n in names)), None)
      if vp is not None:
        return dec, head, vp, proj
  raise CheckpointError("no LLaVA tensor layout found (expected language_model.* and "
                        "vision_tower.* tensors); is this a LlavaForConditionalGeneration "
                        "checkpoint?")


def _decoder_name(dec: str, names: set[str]):
  """Maps HF decoder names ("model.layers.0....") to the file's names."""
  nested = any(n.startswith(dec + "model.") for n in names)  # language_model.model.layers...

  def name(n: str) -> str:
    if n == "lm_head.weight":
      return n
    return dec + n if nested else dec + n[len("model."):]

  return name


def _vision_params(cfg: lvlm.LVLMConfig, r: common.TensorReader, prefix: str) -> dict:
  keep = {"embeddings", "pre_layrnorm"}
  tensors = {}
  for n in sorted(r.names):
    if not n.startswith(prefix):
      continue
    rest = n[len(prefix):]
    m = re.match(r"encoder\.layers\.(\d+)\.", rest)
    if m and int(m.group(1)) >= cfg.vision_layers_run or rest.startswith("post_layernorm."):
      r.used.add(n)  # never read by LLaVA (deeper layers, post_layernorm)
      continue
    if rest.split(".")[0] in keep or m:
      tensors[rest] = r.read(n)
      r.used.add(n)
  params = clip_io.params_from_hf(tensors)
  want = lvlm.param_shapes(cfg)["vision"]
  _check_shapes(params, want, r.source, prefix)
  return params


def _check_shapes(got, want, source: str, prefix: str, path: str = "") -> None:
  if isinstance(want, dict):
    if not isinstance(got, dict) or set(got) != set(want):
      missing = sorted(set(want) - set(got or {}))
      raise CheckpointError(f"{source}: vision/projector tensors under {prefix!r} do not "
                            f"match the config at {path or '/'} (missing {missing}).")
    for k in want:
      _check_shapes(got[k], want[k], source, prefix, f"{path}/{k}")
    return
  if tuple(np.shape(got)) != tuple(want):
    raise CheckpointError(f"{source}: {prefix}{path} has shape {list(np.shape(got))}, "
                          f"expected {list(want)} from the config.")


def _projector_params(cfg: lvlm.LVLMConfig, r: common.TensorReader, prefix: str) -> dict:
  width = cfg.vision.width * len(cfg.feature_layers)
  d = cfg.text.d_model
  out = {}
  for name, inn in (("linear_1", width), ("linear_2", d)):
    leaf = {"kernel": r.get(f"{prefix}{name}.weight", (d, inn)).T}
    if cfg.projector_bias:
      leaf["bias"] = r.get(f"{prefix}{name}.bias", (d,))
    out[name] = leaf
  return out


def load_llava(path: str, dtype: str | None = None):
  """Load an HF LLaVA checkpoint directory.

  Args:
    path: directory with config.json and model.safetensors (or an index).
    dtype: parameter dtype (default float32).

  Returns:
    (LVLMConfig, params {"vision", "projector", "decoder"}, Tokenizer or None,
    ImageProcessing from preprocessor_config.json, or the CLIP default at the tower's size).
  """
  conf_file = os.path.join(path, "config.json")
  if not os.path.exists(conf_file):
    raise AssetMissingError(f"{path}: no config.json; point to a directory saved by "
                            "LlavaForConditionalGeneration.save_pretrained.")
  with open(conf_file) as f:
    cfg = config_from_hf_llava(json.load(f))
  if dtype is not None:
    cfg = cfg.replace(text=cfg.text.replace(param_dtype=dtype))
  r = _reader(path)
  dec, head, vis, proj = _layout(r.names)
  name = _decoder_name(dec, r.names)
  if cfg.text.tie_embeddings and head in r.names:
    r.used.add(head)
  dparams = common.llama_params(cfg.text, r, lambda n: head if n == "lm_head.weight" else name(n))
  params = {"vision": _vision_params(cfg, r, vis), "projector": _projector_params(cfg, r, proj),
            "decoder": dparams}
  r.finish()
  params = common.to_jax(params, cfg.text.param_dtype)
  tok = Tokenizer.from_dir(path)
  return cfg, params, tok, image_processing(path, cfg)


def image_processing(path: str, cfg: lvlm.LVLMConfig) -> lvlm.ImageProcessing:
  """``preprocessor_config.json`` of `path` (HF settings), else CLIP's at the tower's size."""
  f = os.path.join(path, "preprocessor_config.json")
  if os.path.exists(f):
    with open(f) as fh:
      return lvlm.ImageProcessing.from_hf(json.load(fh))
  s = cfg.vision.image_size
  return lvlm.ImageProcessing(shortest_edge=s, crop_hw=(s, s))
