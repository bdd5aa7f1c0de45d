"""The offline stand-in LVLM: the cached CLIP stand-in's vision tower + SmolLM2-135M-Instruct.

No LVLM weights ship offline, so jaxlab trains one, LLaVA's way: a frozen CLIP vision tower
(by default the quick CLIP stand-in of ``jaxlab.models.clip_standin``, trained on first use;
:func:`clip_tower` lists the options, a random frozen tower among them, labelled so), a
two-layer GELU projector into SmolLM2's embedding space, and the frozen decoder (stage 1:
projector only, on scene captions; stage 2: projector + LoRA, on multiple-choice visual
questions). The data are the generated scenes of
``jaxlab.data.scienceqa`` (held-out seeds for evaluation).
"""

from __future__ import annotations

import os
import pathlib

import jax
import numpy as np

from jaxlab.core import errors
from jaxlab.data import cache_root, scienceqa
from jaxlab.models import clip, clip_io, clip_standin, lvlm
from jaxlab.models.decoder_config import DecoderConfig

WRAP = "<image>\n{}"  # the stand-in's input text around a QVix prompt
IMAGE_TOKEN_NAME = "<|image|>"  # informative; the id is a spare SmolLM2 control token


TOWERS = ("clip-standin", "clip-standin-full", "cached", "random")


def newest_clip_standin() -> pathlib.Path | None:
  """The newest cached CLIP stand-in directory (``$JAXLAB_CACHE`` or ~/.cache/jaxlab)."""
  found = sorted((cache_root() / "clip_standin").glob("*/model.safetensors"),
                 key=lambda p: p.stat().st_mtime)
  return found[-1].parent if found else None


def clip_tower(spec: str, work_dir: str | os.PathLike) -> pathlib.Path | None:
  """The CLIP folder whose vision tower the stand-in LVLM uses; None means random frozen.

  ``spec``: "clip-standin" / "clip-standin-full" is the quick / full CLIP stand-in of
  ``jaxlab.models.clip_standin``, read from the cache or trained now (quick: a few minutes on
  2 cores, checkpointed under ``work_dir`` so it resumes); "cached" is the newest cached
  stand-in, else random; "random" is a random frozen tower; anything else is a local HF CLIP
  folder (``CLIPModel.save_pretrained`` layout).
  """
  if spec in ("clip-standin", "clip-standin-full"):
    cfg = clip_standin.PRESETS["full" if spec.endswith("full") else "quick"]
    if clip_standin.cached_dir(cfg) is None:
      clip_standin.train(cfg, pathlib.Path(work_dir) / f"{spec}-{cfg.tag()}")
    return clip_standin.cache_path(cfg)
  if spec == "cached":
    return newest_clip_standin()
  if spec == "random":
    return None
  if not os.path.isdir(spec):
    raise errors.ConfigError(
      f"vision_tower={spec!r} is neither one of {TOWERS} nor a local CLIP folder; pass one of "
      "those names or the path of a folder saved by CLIPModel.save_pretrained.")
  return pathlib.Path(spec)


def spare_token(tok) -> int:
  """The image placeholder id: the tokenizer's ``<image>`` if it has one, else a SmolLM2
  control token no prompt uses (3..16)."""
  own = tok.tk.token_to_id("<image>")
  if own is not None:
    return own
  used = {tok.bos_id, tok.pad_id, *tok.eos_ids}
  for i in range(16, 2, -1):
    if i not in used:
      return i
  raise ValueError("no spare control token id in 3..16.")


def build(dec_cfg: DecoderConfig, dec_params: dict, tok, key: jax.Array,
          clip_dir: str | os.PathLike | None = None, vision: clip.VisionConfig | None = None):
  """(LVLMConfig, params, source) with the CLIP stand-in's tower (or a random one)."""
  vis_params, source = None, "random-frozen"
  if clip_dir is not None:
    ccfg, cparams = clip_io.load_hf_clip(clip_dir)
    vision, source = ccfg.vision, str(clip_dir)
  vision = vision or clip.VisionConfig(width=64, layers=3, heads=4, mlp=256, image_size=32,
                                       patch_size=8)
  cfg = lvlm.LVLMConfig(vision=vision, text=dec_cfg, image_token_id=spare_token(tok))
  kv, kp = jax.random.split(key)
  init = lvlm.init_params(cfg.replace(text=dec_cfg.replace(n_layers=1, vocab_size=8)), kp)
  params = {"vision": init["vision"], "projector": init["projector"], "decoder": dec_params}
  if clip_dir is not None:
    vm = cparams["vision_model"]
    n = cfg.vision_layers_run
    vis_params = {"embeddings": vm["embeddings"], "pre_layrnorm": vm["pre_layrnorm"],
                  "encoder": {f"layers_{i}": vm["encoder"][f"layers_{i}"] for i in range(n)}}
    params["vision"] = jax.tree.map(np.asarray, vis_params)
  return cfg, params, source


_SLOT = ("on the left", "in the middle", "on the right")


def caption(objs: list[dict]) -> str:
  """A scene caption: count, then each object's size, colour, shape and place."""
  parts = [f"a {('small', 'large')[o['large']]} {o['colour']} {o['shape']} "
           f"{_SLOT[min(int(o['x'] // 11), 2)]}" for o in objs]
  return f"There are {len(objs)} shapes: " + ", ".join(parts) + "."


def vqa_example(item: dict) -> tuple[str, str]:
  """(prompt, target) of a generated item in the baseline QVix format."""
  q = scienceqa.question_string(item["question"], item["choices"])
  return "Question: " + q + "Answer:", " " + item["choices"][item["answer"]]


def eval_items(n: int, seed: int = 10_000) -> list[dict]:
  """Held-out generated items (seeds far from the training seeds) as pipeline dicts."""
  out = []
  for it in scienceqa.synthetic_items(n, seed=seed):
    out.append({"id": it["pid"], "image": it["image"], "skill": it["skill"],
                "question": scienceqa.question_string(it["question"], it["choices"]),
                "choices": it["choices"], "answer": it["choices"][it["answer"]]})
  return out
