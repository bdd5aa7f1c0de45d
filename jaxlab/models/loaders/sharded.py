"""Loading straight into shards: every device reads only its block of every tensor.

A leaf of the decoder tree is described by a `Leaf` (its shape and a `block(index)` reader);
`place` builds each array with `jax.make_array_from_callback`, so the full model is never
materialised on one device (nor, for safetensors, in host memory: `SafetensorsBlocks` reads
only the requested rows with `os.pread`, never a memory map whose touched pages would stay
resident). On several hosts each process reads only the blocks of its own devices. The HF
[out, in] -> spec a.2 layout maps index ranges directly: a head range ``h0:h1`` of
``wq [D, H, d]`` is rows ``h0*d:h1*d`` of ``q_proj.weight``.
"""

import json
import os
from collections.abc import Callable
from typing import NamedTuple

import jax
import ml_dtypes  # noqa: F401  (bfloat16 for numpy)
import numpy as np

from jaxlab.core.errors import CheckpointError
from jaxlab.models.decoder_config import DecoderConfig

ReadSlice = Callable[[str, tuple[int, ...], tuple[slice, ...]], np.ndarray]


class Leaf(NamedTuple):
  """A lazily read parameter: `block(index)` returns ``array[index]`` (index: slices)."""

  shape: tuple[int, ...]
  block: Callable[[tuple[slice, ...]], np.ndarray]


def _bounds(s: slice, n: int) -> tuple[int, int]:
  start, stop, step = s.indices(n)
  if step != 1:
    raise CheckpointError(f"strided shard index {s} is not supported.")
  return start, stop


def direct(read: ReadSlice, name: str, shape: tuple[int, ...]) -> Callable:
  """Target == source tensor (norms, biases [n], embeddings [V, D])."""
  return lambda idx: read(name, shape, tuple(idx))


def transposed(read: ReadSlice, name: str, out: int, inn: int) -> Callable:
  """Target [in, out] from an nn.Linear weight [out, in]."""
  return lambda idx: read(name, (out, inn), (idx[1], idx[0])).T


def heads_out(read: ReadSlice, name: str, h: int, d: int, dm: int) -> Callable:
  """Target [D, H, d] (wq/wk/wv) from W [H*d, D]: a head range is a row range."""

  def block(idx):
    s_m, s_h, s_d = idx
    h0, h1 = _bounds(s_h, h)
    w = read(name, (h * d, dm), (slice(h0 * d, h1 * d), s_m))
    return w.T.reshape(w.shape[1], h1 - h0, d)[:, :, s_d]

  return block


def heads_in(read: ReadSlice, name: str, h: int, d: int, dm: int) -> Callable:
  """Target [H, d, D] (wo) from W [D, H*d]: a head range is a column range."""

  def block(idx):
    s_h, s_d, s_m = idx
    h0, h1 = _bounds(s_h, h)
    w = read(name, (dm, h * d), (s_m, slice(h0 * d, h1 * d)))
    return w.T.reshape(h1 - h0, d, w.shape[0])[:, s_d, :]

  return block


def heads_vec(read: ReadSlice, name: str, h: int, d: int) -> Callable:
  """Target [H, d] (bq/bk/bv) from a bias [H*d]."""

  def block(idx):
    s_h, s_d = idx
    h0, h1 = _bounds(s_h, h)
    return read(name, (h * d,), (slice(h0 * d, h1 * d),)).reshape(h1 - h0, d)[:, s_d]

  return block


def stacked(n_layers: int, per_layer: Callable[[int], Callable], shape: tuple[int, ...]) -> Leaf:
  """A [L, ...] leaf whose layer i block comes from `per_layer(i)`."""

  def block(idx):
    l0, l1 = _bounds(idx[0], n_layers)
    out = None
    for i in range(l0, l1):  # filled in place: one layer's block is the only temporary
      b = per_layer(i)(tuple(idx[1:]))
      if out is None:
        out = np.empty((l1 - l0,) + b.shape, b.dtype)
      out[i - l0] = b
    return out

  return Leaf((n_layers,) + tuple(shape), block)


def llama_leaves(cfg: DecoderConfig, read: ReadSlice, name: Callable[[str], str]) -> dict:
  """The decoder tree of `Leaf`s for HF Llama/Mistral/Qwen2 tensor names.

  Args:
    cfg: config.
    read: ``(file tensor name, its full shape, slices) -> block``; checks the shape.
    name: HF name -> the file's tensor name.
  """
  h, kv, d, dm, f, v = (cfg.n_heads, cfg.kv_heads, cfg.head_dim, cfg.d_model, cfg.d_ff,
                        cfg.vocab_size)
  at = lambda i, s: name(f"model.layers.{i}.{s}")
  spec = {
    "attn_norm_scale": ((dm,), lambda i: direct(read, at(i, "input_layernorm.weight"), (dm,))),
    "mlp_norm_scale": ((dm,), lambda i: direct(read, at(i, "post_attention_layernorm.weight"),
                                              (dm,))),
    "wq": ((dm, h, d), lambda i: heads_out(read, at(i, "self_attn.q_proj.weight"), h, d, dm)),
    "wk": ((dm, kv, d), lambda i: heads_out(read, at(i, "self_attn.k_proj.weight"), kv, d, dm)),
    "wv": ((dm, kv, d), lambda i: heads_out(read, at(i, "self_attn.v_proj.weight"), kv, d, dm)),
    "wo": ((h, d, dm), lambda i: heads_in(read, at(i, "self_attn.o_proj.weight"), h, d, dm)),
    "w_gate": ((dm, f), lambda i: transposed(read, at(i, "mlp.gate_proj.weight"), f, dm)),
    "w_up": ((dm, f), lambda i: transposed(read, at(i, "mlp.up_proj.weight"), f, dm)),
    "w_down": ((f, dm), lambda i: transposed(read, at(i, "mlp.down_proj.weight"), dm, f)),
  }
  if cfg.qkv_bias:
    spec.update(
      bq=((h, d), lambda i: heads_vec(read, at(i, "self_attn.q_proj.bias"), h, d)),
      bk=((kv, d), lambda i: heads_vec(read, at(i, "self_attn.k_proj.bias"), kv, d)),
      bv=((kv, d), lambda i: heads_vec(read, at(i, "self_attn.v_proj.bias"), kv, d)))
  if cfg.o_bias:
    spec["bo"] = ((dm,), lambda i: direct(read, at(i, "self_attn.o_proj.bias"), (dm,)))
  if cfg.mlp_bias:
    spec.update(b_gate=((f,), lambda i: direct(read, at(i, "mlp.gate_proj.bias"), (f,))),
                b_up=((f,), lambda i: direct(read, at(i, "mlp.up_proj.bias"), (f,))),
                b_down=((dm,), lambda i: direct(read, at(i, "mlp.down_proj.bias"), (dm,))))
  out = {"layers": {k: stacked(cfg.n_layers, fn, shape) for k, (shape, fn) in spec.items()},
         "embed": Leaf((v, dm), direct(read, name("model.embed_tokens.weight"), (v, dm))),
         "final_norm_scale": Leaf((dm,), direct(read, name("model.norm.weight"), (dm,)))}
  if not cfg.tie_embeddings:
    out["unembed"] = Leaf((dm, v), transposed(read, name("lm_head.weight"), v, dm))
  return out


def place(leaves: dict, shardings: dict, dtype: str) -> dict:
  """`jax.make_array_from_callback` for every leaf: each device reads only its block."""
  dt = np.dtype(dtype)

  def one(leaf: Leaf, sharding):
    return jax.make_array_from_callback(
      leaf.shape, sharding,
      lambda idx: np.ascontiguousarray(leaf.block(idx).astype(dt, copy=False)))

  return jax.tree.map(one, leaves, shardings, is_leaf=lambda x: isinstance(x, Leaf))


_ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16,
              "BF16": ml_dtypes.bfloat16, "I64": np.int64, "I32": np.int32, "I16": np.int16,
              "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


class SafetensorsBlocks:
  """Reads row ranges of tensors in one .safetensors file with `os.pread` (no mmap).

  `safe_open` memory-maps the file, and every page a slice touches then counts in the
  process's resident memory until the map closes; plain reads leave only the block itself.
  """

  def __init__(self, path: str):
    self.path = path
    with open(path, "rb") as f:
      n = int.from_bytes(f.read(8), "little")
      header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    self.base, self.header = 8 + n, header

  def shape(self, name: str) -> tuple[int, ...]:
    return tuple(self.header[name]["shape"])

  def block(self, name: str, idx: tuple[slice, ...]) -> np.ndarray:
    """``tensor[idx]``: reads only the rows ``idx[0]`` selects (all columns), then slices."""
    info = self.header[name]
    dt, shape = np.dtype(_ST_DTYPES[info["dtype"]]), tuple(info["shape"])
    start = self.base + info["data_offsets"][0]
    if not shape:
      rows, r0 = 1, 0
    else:
      r0, r1 = _bounds(idx[0], shape[0])
      rows = r1 - r0
    row_bytes = dt.itemsize * int(np.prod(shape[1:], dtype=np.int64))
    fd = os.open(self.path, os.O_RDONLY)
    try:
      buf = os.pread(fd, rows * row_bytes, start + r0 * row_bytes)
    finally:
      os.close(fd)
    arr = np.frombuffer(buf, dt).reshape((rows,) + shape[1:]) if shape else \
      np.frombuffer(buf, dt).reshape(())
    if not shape:
      return arr
    # a copy, so a column block does not keep the whole row buffer alive while layers stack
    return np.array(arr[(slice(None),) + tuple(idx[1:])])
