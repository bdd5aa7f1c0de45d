"""Random Hugging Face Llama checkpoints of any size, written layer by layer (benchmarks).

`write_random_llama` never holds more than one layer in memory, so a 1B-parameter checkpoint
can be written on a small machine and then loaded sharded (`load_hf(path, mesh=...)`).
"""

import json
import os

import ml_dtypes  # noqa: F401  (bfloat16 for numpy)
import numpy as np
from safetensors.numpy import save_file

from jaxlab.models.decoder_config import DecoderConfig


def llama_1b() -> DecoderConfig:
  """A Llama-shaped config of 0.98B parameters (D 2048, 18 layers, 16/8 heads, untied)."""
  return DecoderConfig(vocab_size=32000, d_model=2048, n_layers=18, n_heads=16, n_kv_heads=8,
                       d_ff=5632, max_positions=2048, tie_embeddings=False, rope_theta=10000.0)


def n_params(cfg: DecoderConfig) -> int:
  """Parameter count of a llama-variant config."""
  d, h, kv, hd, f, v = (cfg.d_model, cfg.n_heads, cfg.kv_heads, cfg.head_dim, cfg.d_ff,
                        cfg.vocab_size)
  layer = d * hd * (2 * h + 2 * kv) + 3 * d * f + 2 * d
  return cfg.n_layers * layer + v * d * (1 if cfg.tie_embeddings else 2) + d


def hf_config(cfg: DecoderConfig) -> dict:
  """config.json for a llama-variant DecoderConfig."""
  return dict(model_type="llama", vocab_size=cfg.vocab_size, hidden_size=cfg.d_model,
              intermediate_size=cfg.d_ff, num_hidden_layers=cfg.n_layers,
              num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.kv_heads,
              head_dim=cfg.head_dim, max_position_embeddings=cfg.max_positions,
              rope_theta=cfg.rope_theta, rms_norm_eps=cfg.norm_eps,
              tie_word_embeddings=cfg.tie_embeddings)


def _rand(rng, shape, dtype, scale=0.02):
  return (scale * rng.standard_normal(shape, dtype=np.float32)).astype(dtype)


def write_random_llama(cfg: DecoderConfig, path: str, dtype: str = "bfloat16",
                       seed: int = 0) -> int:
  """Writes config.json, one safetensors file per layer (+ embeddings) and the index.

  Returns:
    total tensor bytes written.
  """
  os.makedirs(path, exist_ok=True)
  rng, dt = np.random.default_rng(seed), np.dtype(dtype)
  d, f, hd = cfg.d_model, cfg.d_ff, cfg.head_dim
  wmap, total = {}, 0

  def dump(tensors, fname):
    nonlocal total
    save_file(tensors, os.path.join(path, fname))
    total += sum(t.nbytes for t in tensors.values())
    wmap.update({k: fname for k in tensors})

  emb = {"model.embed_tokens.weight": _rand(rng, (cfg.vocab_size, d), dt),
         "model.norm.weight": np.ones((d,), dt)}
  if not cfg.tie_embeddings:
    emb["lm_head.weight"] = _rand(rng, (cfg.vocab_size, d), dt)
  dump(emb, "model-embed.safetensors")
  for i in range(cfg.n_layers):
    p = f"model.layers.{i}."
    dump({p + "input_layernorm.weight": np.ones((d,), dt),
          p + "post_attention_layernorm.weight": np.ones((d,), dt),
          p + "self_attn.q_proj.weight": _rand(rng, (cfg.n_heads * hd, d), dt),
          p + "self_attn.k_proj.weight": _rand(rng, (cfg.kv_heads * hd, d), dt),
          p + "self_attn.v_proj.weight": _rand(rng, (cfg.kv_heads * hd, d), dt),
          p + "self_attn.o_proj.weight": _rand(rng, (d, cfg.n_heads * hd), dt),
          p + "mlp.gate_proj.weight": _rand(rng, (f, d), dt),
          p + "mlp.up_proj.weight": _rand(rng, (f, d), dt),
          p + "mlp.down_proj.weight": _rand(rng, (d, f), dt)}, f"model-{i:05d}.safetensors")
  with open(os.path.join(path, "model.safetensors.index.json"), "w") as fh:
    json.dump({"metadata": {"total_size": total}, "weight_map": wmap}, fh)
  with open(os.path.join(path, "config.json"), "w") as fh:
    json.dump(hf_config(cfg), fh)
  return total
