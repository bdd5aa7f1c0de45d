"""Shared loader pieces: a checked tensor reader and the HF-name -> a.2-layout mapping."""

import re
from collections.abc import Callable, Iterable

import jax.numpy as jnp
import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy before any safetensors read)
import numpy as np

from jaxlab.core.errors import CheckpointError
from jaxlab.models.decoder_config import DecoderConfig


class TensorReader:
  """Reads named tensors once each, checking presence and shape.

  Args:
    names: every tensor name in the checkpoint.
    read: name -> np.ndarray.
    source: file or directory, for error messages.
    ignore: regexes of names that may stay unread (buffers).
  """

  def __init__(self, names: Iterable[str], read: Callable[[str], np.ndarray], source: str,
               ignore: Iterable[str] = ()):
    self.names, self.read, self.source = set(names), read, source
    self.ignore = [re.compile(p) for p in ignore]
    self.used: set[str] = set()

  def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """The tensor `name`, which must have `shape`."""
    if name not in self.names:
      raise CheckpointError(f"{self.source}: missing tensor {name!r} (expected shape "
                            f"{list(shape)}); is this checkpoint the architecture its config "
                            "says?")
    arr = self.read(name)
    if tuple(arr.shape) != tuple(shape):
      raise CheckpointError(f"{self.source}: tensor {name!r} has shape {list(arr.shape)}, "
                            f"expected {list(shape)} from the config.")
    self.used.add(name)
    return arr

  def finish(self) -> None:
    """Raise if tensors remain that were neither read nor ignorable buffers."""
    left = sorted(n for n in self.names - self.used
                  if not any(p.search(n) for p in self.ignore))
    if left:
      more = f" (+{len(left) - 5} more)" if len(left) > 5 else ""
      raise CheckpointError(f"{self.source}: unexpected tensors {left[:5]}{more}; the config "
                            "does not describe this checkpoint (wrong architecture or sizes?).")


def llama_params(cfg: DecoderConfig, r: TensorReader, name: Callable[[str], str]) -> dict:
  """HF Llama/Mistral/Qwen2 tensors -> a.2 layout (stacked numpy).

  Args:
    cfg: config.
    r: reader.
    name: maps HF names (e.g. "model.layers.0.self_attn.q_proj.weight") to the file's names.
  """
  n_h, n_kv, d, dm, f, v = (cfg.n_heads, cfg.kv_heads, cfg.head_dim, cfg.d_model, cfg.d_ff,
                            cfg.vocab_size)
  lin = lambda key, out, inn: r.get(name(key), (out, inn)).T  # [in, out]
  per_layer = {k: [] for k in ("attn_norm_scale", "wq", "wk", "wv", "wo", "mlp_norm_scale",
                               "w_gate", "w_up", "w_down")}
  if cfg.qkv_bias:
    per_layer.update(bq=[], bk=[], bv=[])
  if cfg.o_bias:
    per_layer["bo"] = []
  if cfg.mlp_bias:
    per_layer.update(b_gate=[], b_up=[], b_down=[])
  for i in range(cfg.n_layers):
    p = f"model.layers.{i}."
    a, m = p + "self_attn.", p + "mlp."
    got = {"attn_norm_scale": r.get(name(p + "input_layernorm.weight"), (dm,)),
           "wq": lin(a + "q_proj.weight", n_h * d, dm).reshape(dm, n_h, d),
           "wk": lin(a + "k_proj.weight", n_kv * d, dm).reshape(dm, n_kv, d),
           "wv": lin(a + "v_proj.weight", n_kv * d, dm).reshape(dm, n_kv, d),
           "wo": lin(a + "o_proj.weight", dm, n_h * d).reshape(n_h, d, dm),
           "mlp_norm_scale": r.get(name(p + "post_attention_layernorm.weight"), (dm,)),
           "w_gate": lin(m + "gate_proj.weight", f, dm), "w_up": lin(m + "up_proj.weight", f, dm),
           "w_down": lin(m + "down_proj.weight", dm, f)}
    if cfg.qkv_bias:
      got.update(bq=r.get(name(a + "q_proj.bias"), (n_h * d,)).reshape(n_h, d),
                 bk=r.get(name(a + "k_proj.bias"), (n_kv * d,)).reshape(n_kv, d),
                 bv=r.get(name(a + "v_proj.bias"), (n_kv * d,)).reshape(n_kv, d))
    if cfg.o_bias:
      got["bo"] = r.get(name(a + "o_proj.bias"), (dm,))
    if cfg.mlp_bias:
      got.update(b_gate=r.get(name(m + "gate_proj.bias"), (f,)),
                 b_up=r.get(name(m + "up_proj.bias"), (f,)),
                 b_down=r.get(name(m + "down_proj.bias"), (dm,)))
    for k, val in got.items():
      per_layer[k].append(val)
  out = {"embed": r.get(name("model.embed_tokens.weight"), (v, dm)),
         "layers": {k: np.stack(vals) for k, vals in per_layer.items()},
         "final_norm_scale": r.get(name("model.norm.weight"), (dm,))}
  if not cfg.tie_embeddings:
    out["unembed"] = r.get(name("lm_head.weight"), (v, dm)).T
  return out


def gpt2_params(cfg: DecoderConfig, r: TensorReader, prefix: str) -> dict:
  """HF GPT-2 (Conv1D [in, out]) tensors -> a.2 layout; `prefix` is "" or "transformer."."""
  n_h, d, dm, f = cfg.n_heads, cfg.head_dim, cfg.d_model, cfg.d_ff
  g = lambda key, shape: r.get(prefix + key, shape)
  per_layer: dict[str, list] = {}
  for i in range(cfg.n_layers):
    p = f"h.{i}."
    w_qkv = g(p + "attn.c_attn.weight", (dm, 3 * dm))
    b_qkv = g(p + "attn.c_attn.bias", (3 * dm,))
    wq, wk, wv = (w.reshape(dm, n_h, d) for w in np.split(w_qkv, 3, axis=1))
    bq, bk, bv = (b.reshape(n_h, d) for b in np.split(b_qkv, 3))
    got = {"attn_norm_scale": g(p + "ln_1.weight", (dm,)),
           "attn_norm_bias": g(p + "ln_1.bias", (dm,)),
           "wq": wq, "wk": wk, "wv": wv, "bq": bq, "bk": bk, "bv": bv,
           "wo": g(p + "attn.c_proj.weight", (dm, dm)).reshape(n_h, d, dm),
           "bo": g(p + "attn.c_proj.bias", (dm,)),
           "mlp_norm_scale": g(p + "ln_2.weight", (dm,)),
           "mlp_norm_bias": g(p + "ln_2.bias", (dm,)),
           "w_up": g(p + "mlp.c_fc.weight", (dm, f)), "b_up": g(p + "mlp.c_fc.bias", (f,)),
           "w_down": g(p + "mlp.c_proj.weight", (f, dm)), "b_down": g(p + "mlp.c_proj.bias", (dm,))}
    for k, val in got.items():
      per_layer.setdefault(k, []).append(val)
  out = {"embed": g("wte.weight", (cfg.vocab_size, dm)),
         "pos_embed": g("wpe.weight", (cfg.max_positions, dm)),
         "layers": {k: np.stack(vals) for k, vals in per_layer.items()},
         "final_norm_scale": g("ln_f.weight", (dm,)), "final_norm_bias": g("ln_f.bias", (dm,))}
  if "lm_head.weight" in r.names:
    head = r.get("lm_head.weight", (cfg.vocab_size, dm))
    if not np.array_equal(head, out["embed"]):
      raise CheckpointError(f"{r.source}: lm_head.weight differs from wte.weight, but GPT-2's "
                            "unembedding is tied; this checkpoint is not supported.")
  return out


def to_jax(tree: dict, dtype: str) -> dict:
  """numpy tree -> jax arrays of `dtype` (bf16 values are converted exactly)."""
  dt = jnp.dtype(dtype)
  return {k: to_jax(v, dtype) if isinstance(v, dict) else jnp.asarray(np.asarray(v).astype(dt))
          for k, v in tree.items()}
