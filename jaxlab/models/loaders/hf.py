"""Hugging Face checkpoints: config.json + safetensors (single file or sharded index)."""

import json
import os

import jax
from safetensors import safe_open

from jaxlab.core.errors import AssetMissingError, CheckpointError, ConfigError
from jaxlab.models import decoder_mesh
from jaxlab.models.decoder_config import DecoderConfig
from jaxlab.models.loaders import common, sharded
from jaxlab.models.tokenizer import Tokenizer

SUPPORTED = ("llama", "mistral", "qwen2", "gpt2")
_BUFFERS = (r"rotary_emb\.inv_freq$", r"attn\.bias$", r"attn\.masked_bias$")


def config_from_hf(conf: dict) -> DecoderConfig:
  """Map an HF config.json dict to a DecoderConfig; unsupported options raise ConfigError."""
  mt = conf.get("model_type")
  if mt not in SUPPORTED:
    raise ConfigError(f"model_type {mt!r} is not supported; supported: {', '.join(SUPPORTED)}.")
  if mt == "gpt2":
    return _gpt2_config(conf)
  return _llama_config(conf, mt)


def _ids(conf: dict) -> dict:
  eos = conf.get("eos_token_id")
  eos = tuple(eos) if isinstance(eos, list) else (() if eos is None else (eos,))
  return {"bos_id": conf.get("bos_token_id"), "pad_id": conf.get("pad_token_id"), "eos_ids": eos}


def _llama_config(conf: dict, mt: str) -> DecoderConfig:
  if conf.get("hidden_act", "silu") != "silu":
    raise ConfigError(f"hidden_act={conf['hidden_act']!r} is not supported; only 'silu'.")
  if conf.get("use_sliding_window"):
    raise ConfigError("use_sliding_window=true is not supported (full attention only).")
  rope = dict(conf.get("rope_parameters") or {})
  theta = rope.get("rope_theta", conf.get("rope_theta", 10000.0))
  scaling = conf.get("rope_scaling") or (rope if rope.get("rope_type", "default") != "default"
                                         else None)
  llama3 = None
  if scaling:
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind != "llama3":
      raise ConfigError(f"rope scaling {kind!r} is not supported; only 'llama3' or none.")
    llama3 = (float(scaling["factor"]), float(scaling["low_freq_factor"]),
              float(scaling["high_freq_factor"]),
              int(scaling["original_max_position_embeddings"]))
  bias = bool(conf.get("attention_bias", False))
  n_heads = conf["num_attention_heads"]
  return DecoderConfig(
    arch="llama", vocab_size=conf["vocab_size"], d_model=conf["hidden_size"],
    n_layers=conf["num_hidden_layers"], n_heads=n_heads,
    n_kv_heads=conf.get("num_key_value_heads") or n_heads, d_head=conf.get("head_dim"),
    d_ff=conf["intermediate_size"], norm="rms", norm_eps=conf.get("rms_norm_eps", 1e-6),
    pos="rope", rope_theta=float(theta), rope_llama3=llama3,
    max_positions=conf.get("max_position_embeddings", 2048), mlp="swiglu",
    sliding_window=conf.get("sliding_window") if mt == "mistral" else None,
    qkv_bias=(mt == "qwen2") or bias, o_bias=bias and mt != "qwen2",
    mlp_bias=bool(conf.get("mlp_bias", False)),
    tie_embeddings=bool(conf.get("tie_word_embeddings", False)), **_ids(conf))


def _gpt2_config(conf: dict) -> DecoderConfig:
  for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
    if conf.get(flag):
      raise ConfigError(f"GPT-2 option {flag}=true is not supported; set it false.")
  if not conf.get("scale_attn_weights", True):
    raise ConfigError("GPT-2 option scale_attn_weights=false is not supported.")
  act = conf.get("activation_function", "gelu_new")
  if act not in ("gelu_new", "gelu_pytorch_tanh"):
    raise ConfigError(f"GPT-2 activation_function={act!r} is not supported; use gelu_new.")
  d = conf["n_embd"]
  return DecoderConfig(
    arch="gpt2", vocab_size=conf["vocab_size"], d_model=d, n_layers=conf["n_layer"],
    n_heads=conf["n_head"], d_ff=conf.get("n_inner") or 4 * d, norm="layer",
    norm_eps=conf.get("layer_norm_epsilon", 1e-5), pos="learned",
    max_positions=conf["n_positions"], mlp="gelu_tanh", qkv_bias=True, o_bias=True,
    mlp_bias=True, tie_embeddings=True, **_ids(conf))


def _reader(path: str) -> common.TensorReader:
  index = os.path.join(path, "model.safetensors.index.json")
  single = os.path.join(path, "model.safetensors")
  if os.path.exists(index):
    with open(index) as f:
      wmap = json.load(f)["weight_map"]
  elif os.path.exists(single):
    with safe_open(single, framework="np") as f:
      wmap = {k: "model.safetensors" for k in f.keys()}
  else:
    raise AssetMissingError(f"{path}: no model.safetensors or model.safetensors.index.json; "
                            "point to a Hugging Face checkpoint directory.")
  handles: dict = {}

  def handle(name):
    shard = wmap[name]
    if shard not in handles:
      handles[shard] = safe_open(os.path.join(path, shard), framework="np")
    return handles[shard]

  r = common.TensorReader(wmap, lambda name: handle(name).get_tensor(name), path,
                          ignore=_BUFFERS)

  blocks: dict = {}

  def read_slice(name, shape, idx):
    """Only the rows of block `idx` of tensor `name` (checked to have `shape`) are read."""
    if name not in wmap:
      raise CheckpointError(f"{path}: missing tensor {name!r} (expected shape {list(shape)}).")
    shard = wmap[name]
    if shard not in blocks:
      blocks[shard] = sharded.SafetensorsBlocks(os.path.join(path, shard))
    got = blocks[shard].shape(name)
    if got != tuple(shape):
      raise CheckpointError(f"{path}: tensor {name!r} has shape {list(got)}, "
                            f"expected {list(shape)} from the config.")
    r.used.add(name)
    return blocks[shard].block(name, tuple(idx))

  r.read_slice = read_slice
  return r


def load_hf(path: str, dtype: str | None = None, mesh: jax.sharding.Mesh | None = None):
  """Load an HF decoder checkpoint directory.

  Args:
    path: directory with config.json and model.safetensors (or a sharded index).
    dtype: parameter dtype (default float32; bf16 file values convert exactly).
    mesh: load straight into shards on this mesh (`decoder_sharding` rules): each device
      reads only its blocks from the files (llama family; GPT-2 is loaded whole, then placed).

  Returns:
    (DecoderConfig, params, Tokenizer or None when the directory has no tokenizer.json).
  """
  conf_file = os.path.join(path, "config.json")
  if not os.path.exists(conf_file):
    raise AssetMissingError(f"{path}: no config.json; point to a Hugging Face checkpoint "
                            "directory (or a .gguf file).")
  with open(conf_file) as f:
    conf = json.load(f)
  cfg = config_from_hf(conf)
  if dtype is not None:
    cfg = cfg.replace(param_dtype=dtype)
  r = _reader(path)
  tok = Tokenizer.from_dir(path)
  if tok is not None and not cfg.eos_ids and tok.eos_ids:
    cfg = cfg.replace(eos_ids=tok.eos_ids)
  if cfg.arch == "gpt2":
    prefix = "transformer." if any(n.startswith("transformer.") for n in r.names) else ""
    params = common.gpt2_params(cfg, r, prefix)
  elif mesh is not None:
    leaves = sharded.llama_leaves(cfg, r.read_slice, lambda n: n)
    params = sharded.place(leaves, decoder_mesh.param_shardings(cfg, mesh), cfg.param_dtype)
  else:
    params = common.llama_params(cfg, r, lambda n: n)
  if cfg.arch != "gpt2" and cfg.tie_embeddings and "lm_head.weight" in r.names:
    r.used.add("lm_head.weight")
  r.finish()
  if mesh is not None and cfg.arch != "gpt2":
    return cfg, params, tok
  try:
    params = common.to_jax(params, cfg.param_dtype)
  except ValueError as e:  # pragma: no cover - dtype conversion failures
    raise CheckpointError(f"{path}: cannot convert tensors to {cfg.param_dtype}: {e}") from e
  if mesh is not None:
    params = decoder_mesh.shard_params(cfg, params, mesh)
  return cfg, params, tok
