"""jaxlab LVLM params -> an HF ``LlavaForConditionalGeneration`` directory (no torch).

``save_llava(path, cfg, params, tokenizer=None)`` writes ``config.json`` and
``model.safetensors`` in the saved (legacy) key layout, so ``load_llava`` and
``transformers.LlavaForConditionalGeneration.from_pretrained`` both read it. Unused vision
layers and ``post_layernorm`` are written as identity/zero tensors (LLaVA never reads them).
``tiny_random_llava(path)`` makes a tiny random checkpoint with a byte-level tokenizer, for
smoke runs and benchmarks.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np

from jaxlab.models import clip, clip_io, lvlm
from jaxlab.models.decoder_config import DecoderConfig
from jaxlab.models.loaders.export import hf_llama_tensors

IMAGE_TOKEN = "<image>"


def _config_json(cfg: lvlm.LVLMConfig) -> dict:
  v, t = cfg.vision, cfg.text
  layers = list(cfg.feature_layers)
  return {
    "architectures": ["LlavaForConditionalGeneration"], "model_type": "llava",
    "image_token_index": cfg.image_token_id, "image_seq_length": cfg.num_image_tokens,
    "projector_hidden_act": cfg.projector_act, "multimodal_projector_bias": cfg.projector_bias,
    "vision_feature_layer": layers[0] if len(layers) == 1 else layers,
    "vision_feature_select_strategy": cfg.select, "tie_word_embeddings": t.tie_embeddings,
    "vision_config": {"model_type": "clip_vision_model", "hidden_size": v.width,
                      "intermediate_size": v.mlp, "num_hidden_layers": v.layers,
                      "num_attention_heads": v.heads, "image_size": v.image_size,
                      "patch_size": v.patch_size, "num_channels": v.channels,
                      "layer_norm_eps": v.eps, "hidden_act": v.act, "projection_dim": 16},
    "text_config": {"model_type": "llama", "vocab_size": t.vocab_size, "hidden_size": t.d_model,
                    "intermediate_size": t.d_ff, "num_hidden_layers": t.n_layers,
                    "num_attention_heads": t.n_heads, "num_key_value_heads": t.kv_heads,
                    "head_dim": t.head_dim, "rms_norm_eps": t.norm_eps,
                    "rope_theta": t.rope_theta, "max_position_embeddings": t.max_positions,
                    "tie_word_embeddings": t.tie_embeddings, "bos_token_id": t.bos_id,
                    "eos_token_id": list(t.eos_ids) or None, "pad_token_id": t.pad_id},
  }


def _vision_tensors(cfg: lvlm.LVLMConfig, vparams: dict) -> dict:
  v = cfg.vision
  params = jax.tree.map(np.asarray, vparams)
  enc = dict(params["encoder"])
  donor = enc["layers_0"]
  for i in range(cfg.vision_layers_run, v.layers):  # never read: written as zeros
    enc[f"layers_{i}"] = jax.tree.map(np.zeros_like, donor)
  full = {**params, "encoder": enc,
          "post_layernorm": {"scale": np.ones(v.width, np.float32),
                             "bias": np.zeros(v.width, np.float32)}}
  return {"vision_tower.vision_model." + k: val for k, val in clip_io.params_to_hf(full).items()}


def save_llava(path: str | os.PathLike, cfg: lvlm.LVLMConfig, params: dict,
               tokenizer_json: str | None = None) -> None:
  """Writes an HF LLaVA directory (config.json, model.safetensors[, tokenizer.json])."""
  from safetensors.numpy import save_file  # noqa: PLC0415

  os.makedirs(path, exist_ok=True)
  if cfg.text.arch != "llama":
    raise ValueError("only llama-family decoders export to LLaVA.")
  tensors = {"language_model." + k: v  # language_model.model.* and language_model.lm_head
             for k, v in hf_llama_tensors(cfg.text, params["decoder"]).items()}
  tensors.update(_vision_tensors(cfg, params["vision"]))
  for name, leaf in params["projector"].items():
    tensors[f"multi_modal_projector.{name}.weight"] = np.asarray(leaf["kernel"]).T
    if "bias" in leaf:
      tensors[f"multi_modal_projector.{name}.bias"] = np.asarray(leaf["bias"])
  save_file({k: np.ascontiguousarray(v, np.float32) for k, v in tensors.items()},
            os.path.join(path, "model.safetensors"))
  with open(os.path.join(path, "config.json"), "w") as f:
    json.dump(_config_json(cfg), f, indent=1)
  if tokenizer_json is not None:
    with open(os.path.join(path, "tokenizer.json"), "w") as f:
      f.write(tokenizer_json)


def byte_tokenizer_json() -> tuple[str, int]:
  """A byte-level BPE tokenizer (256 bytes, no merges) + <s>, </s>, <image>; (json, vocab)."""
  import tokenizers  # noqa: PLC0415
  from tokenizers import decoders, models, pre_tokenizers  # noqa: PLC0415

  alphabet = pre_tokenizers.ByteLevel.alphabet()
  vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
  tk = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=[]))
  tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tk.decoder = decoders.ByteLevel()
  tk.add_special_tokens(["<s>", "</s>", IMAGE_TOKEN])
  return tk.to_str(), tk.get_vocab_size(with_added_tokens=True)


def tiny_config(vocab: int, image_token_id: int, *, d_model: int = 64, layers: int = 2,
                vision: clip.VisionConfig | None = None) -> lvlm.LVLMConfig:
  """A tiny LLaVA: CLIP 32px / patch 8 (16 image tokens), Llama GQA decoder."""
  vision = vision or clip.VisionConfig(width=32, layers=3, heads=4, mlp=64, image_size=32,
                                       patch_size=8)
  text = DecoderConfig(vocab_size=vocab, d_model=d_model, n_layers=layers, n_heads=4,
                       n_kv_heads=2, d_ff=2 * d_model, norm_eps=1e-5, max_positions=1024,
                       tie_embeddings=False, bos_id=vocab - 3, eos_ids=(vocab - 2,), pad_id=0)
  return lvlm.LVLMConfig(vision=vision, text=text, image_token_id=image_token_id)


def tiny_random_llava(path: str | os.PathLike, seed: int = 0, **kw) -> lvlm.LVLMConfig:
  """Writes a tiny random LLaVA with a byte-level tokenizer to ``path``; returns its config."""
  tok_json, vocab = byte_tokenizer_json()
  cfg = tiny_config(vocab, vocab - 1, **kw)
  params = lvlm.init_params(cfg, jax.random.key(seed))
  save_llava(path, cfg, params, tok_json)
  with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
    json.dump({"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True}, f)
  return cfg
