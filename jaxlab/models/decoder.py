"""Head-addressable decoder LM (llama / mistral / qwen2 / smollm2 and gpt2 variants).

The forward is one pure function `apply(cfg, params, ids, mask, ...)`; interventions are
arrays (`Intervention`), captures are static flags (`Capture`). Layers are stacked with a
leading [L] axis and run under `lax.scan`. See docs/decoder.md for the full contract.
"""

import dataclasses
import functools
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.core.errors import ConfigError
from jaxlab.models import decoder_ops as ops
from jaxlab.models import decoder_sharding as shd
from jaxlab.models.decoder_config import DecoderConfig, smollm2_135m, tiny_llama

__all__ = ["DecoderConfig", "Capture", "Intervention", "Cache", "Decoder", "apply", "extend",
           "init_cache", "init_params", "prefill", "jit_prefill", "param_shapes", "jit_apply", "jit_extend",
           "final_logits", "layer_params", "mlp_block",
           "tiny_llama", "smollm2_135m"]

_LAYER_ACTS = ("resid_pre", "attn_in", "q", "k", "v", "pattern", "z", "head_out", "attn_out",
               "resid_mid", "mlp_in", "mlp_out")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Capture:
  """Which intermediates `apply` returns (static). `at`: "all" | "last" | "index"."""

  resid_pre: bool = False
  attn_in: bool = False
  q: bool = False
  k: bool = False
  v: bool = False
  pattern: bool = False
  z: bool = False
  head_out: bool = False
  attn_out: bool = False
  resid_mid: bool = False
  mlp_in: bool = False
  mlp_out: bool = False
  resid_final: bool = False
  at: str = "all"

  def __post_init__(self):
    if self.at not in ("all", "last", "index"):
      raise ConfigError(f"Capture.at={self.at!r}; use 'all', 'last' or 'index'.")

  @classmethod
  def all(cls, at: str = "all") -> "Capture":
    """Capture every intermediate."""
    return cls(**{n: True for n in _LAYER_ACTS + ("resid_final",)}, at=at)

  def layer_names(self) -> tuple[str, ...]:
    """Requested per-layer keys."""
    return tuple(n for n in _LAYER_ACTS if getattr(self, n))


class Intervention(NamedTuple):
  """Array-valued interventions; None fields are absent. Shapes in docs/decoder.md."""

  z_pos: jax.Array | None = None          # [b, t] mask or [b] index; None = all positions
  z_scale: jax.Array | None = None        # [L, H]
  z_mask: jax.Array | None = None         # [L, H]
  z_value: jax.Array | None = None        # [L, b, H, d] or [L, b, t, H, d]
  z_delta: jax.Array | None = None        # [L, b, H, d] or [L, b, t, H, d]
  attn_in_freeze: jax.Array | None = None  # [L]
  attn_in_value: jax.Array | None = None  # [L, b, D] or [L, b, t, D]
  mlp_out_mask: jax.Array | None = None   # [L]
  mlp_out_value: jax.Array | None = None  # [L, b, D] or [L, b, t, D]
  embed_value: jax.Array | None = None    # [b, t, D]


_PER_LAYER = ("z_scale", "z_mask", "z_value", "z_delta", "attn_in_freeze", "attn_in_value",
              "mlp_out_mask", "mlp_out_value")


class Cache(NamedTuple):
  """KV cache: k, v [L, b, S, H_kv, d] (k after RoPE), mask [b, S], index (next free slot)."""

  k: jax.Array
  v: jax.Array
  mask: jax.Array
  index: jax.Array


def init_cache(cfg: DecoderConfig, batch: int, max_len: int, dtype: str | None = None) -> Cache:
  """An empty cache for `batch` rows and `max_len` slots."""
  shape = (cfg.n_layers, batch, max_len, cfg.kv_heads, cfg.head_dim)
  dt = jnp.dtype(dtype or cfg.compute_dtype)
  return Cache(jnp.zeros(shape, dt), jnp.zeros(shape, dt), jnp.zeros((batch, max_len), jnp.int32),
               jnp.zeros((), jnp.int32))


def param_shapes(cfg: DecoderConfig) -> dict:
  """Nested dict of parameter shapes (the a.2 layout, layers stacked on a leading [L])."""
  n, d_m, h, kv, d, f = (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.kv_heads, cfg.head_dim,
                         cfg.d_ff)
  lay = {"attn_norm_scale": (n, d_m), "wq": (n, d_m, h, d), "wk": (n, d_m, kv, d),
         "wv": (n, d_m, kv, d), "wo": (n, h, d, d_m), "mlp_norm_scale": (n, d_m),
         "w_up": (n, d_m, f), "w_down": (n, f, d_m)}
  if cfg.norm == "layer":
    lay.update(attn_norm_bias=(n, d_m), mlp_norm_bias=(n, d_m))
  if cfg.qkv_bias:
    lay.update(bq=(n, h, d), bk=(n, kv, d), bv=(n, kv, d))
  if cfg.o_bias:
    lay["bo"] = (n, d_m)
  if cfg.mlp == "swiglu":
    lay["w_gate"] = (n, d_m, f)
  if cfg.mlp_bias:
    lay.update(b_up=(n, f), b_down=(n, d_m))
    if cfg.mlp == "swiglu":
      lay["b_gate"] = (n, f)
  out = {"embed": (cfg.vocab_size, d_m), "layers": lay, "final_norm_scale": (d_m,)}
  if cfg.pos == "learned":
    out["pos_embed"] = (cfg.max_positions, d_m)
  if cfg.norm == "layer":
    out["final_norm_bias"] = (d_m,)
  if not cfg.tie_embeddings:
    out["unembed"] = (d_m, cfg.vocab_size)
  return out


def _init_leaf(name: str, shape: tuple, key: jax.Array, dtype) -> jax.Array:
  if "norm_scale" in name:
    return jnp.ones(shape, dtype)
  if name.startswith("b") or "norm_bias" in name:
    return jnp.zeros(shape, dtype)
  return (0.02 * jax.random.normal(key, shape)).astype(dtype)


def _init_entry(cfg: DecoderConfig, name: str, key: jax.Array):
  """Initial value of top-level entry `name` (a dict for "layers")."""
  shape, dt = param_shapes(cfg)[name], jnp.dtype(cfg.param_dtype)
  if isinstance(shape, tuple):
    return _init_leaf(name, shape, key, dt)
  keys = jax.random.split(key, len(shape))
  return {n: _init_leaf(n, s, k, dt) for (n, s), k in zip(sorted(shape.items()), keys)}


@functools.partial(jax.jit, static_argnums=0)
def init_params(cfg: DecoderConfig, key: jax.Array) -> dict:
  """Random parameters (normal 0.02, unit norms, zero biases) in `cfg.param_dtype`."""
  names = sorted(param_shapes(cfg))
  return {n: _init_entry(cfg, n, k) for n, k in zip(names, jax.random.split(key, len(names)))}


class Decoder(nn.Module):
  """Linen wrapper: declares the same parameter tree as `init_params` and calls `apply`."""

  cfg: DecoderConfig

  @nn.compact
  def __call__(self, ids, mask, capture: Capture = Capture(), intervene=None):
    params = {n: self.param(n, functools.partial(_init_entry, self.cfg, n))
              for n in sorted(param_shapes(self.cfg))}
    return apply(self.cfg, params, ids, mask, capture=capture, intervene=intervene)


# ---------------------------------------------------------------------------- forward


def _pos_mask(z_pos, t: int):
  """[b, t] bool from a [b, t] mask or a [b] index; None stays None (= all positions)."""
  if z_pos is None:
    return None
  z_pos = jnp.asarray(z_pos)
  if z_pos.ndim == 1:
    return jnp.arange(t)[None, :] == z_pos[:, None]
  return z_pos.astype(bool)


def _put(x, sel, value, pos, n_tail: int):
  """where(sel & pos, value, x); value without a t axis broadcasts over positions."""
  value = value.astype(x.dtype)
  if value.ndim == x.ndim - 1:
    value = value[:, None]
  if pos is not None:
    sel = sel & pos.reshape(pos.shape + (1,) * n_tail)
  return jnp.where(sel, value, x)


def _selector(at: str, capture_pos):
  """Position selector for captures: a -> a[:, pos] on the t axis (axis 1)."""
  if at == "all":
    return lambda a, axis=1: a
  if at == "last":
    return lambda a, axis=1: jnp.take(a, -1, axis=axis)
  if capture_pos is None:
    raise ConfigError("Capture(at='index') needs capture_pos, an int32 [b] array.")
  idx = jnp.asarray(capture_pos)
  return lambda a, axis=1: jax.vmap(lambda r, i: jnp.take(r, i, axis=axis - 1))(a, idx)


def _layer(cfg, lp, iv, x, ctx, names, sel):
  """One transformer block; returns the new residual, captured acts and new k, v."""
  dt, pos = x.dtype, ctx["posmask"]
  acts = {"resid_pre": x}
  a = ops.norm(cfg, x, lp["attn_norm_scale"], lp.get("attn_norm_bias"))
  if "attn_in_freeze" in iv:
    a = _put(a, iv["attn_in_freeze"].astype(bool), iv["attn_in_value"], pos, 1)
  acts["attn_in"] = a

  def proj(w, b):
    y = ops.mm("btm,mhd->bthd", a, lp[w].astype(dt))
    return y + lp[b].astype(dt) if b in lp else y

  q, k, v = proj("wq", "bq"), proj("wk", "bk"), proj("wv", "bv")
  if cfg.pos == "rope":
    q, k = ops.apply_rope(q, *ctx["rope"]), ops.apply_rope(k, *ctx["rope"])
  q, k, v = shd.constrain(q, "q"), shd.constrain(k, "kv"), shd.constrain(v, "kv")
  acts.update(q=q, k=k, v=v)
  if "cache_k" in lp:  # cached slots and new tokens as two segments of one softmax
    ck, cv = lp["cache_k"], lp["cache_v"]
    z, p = ops.attention(q, [(ck.astype(dt), cv.astype(dt), ctx["allowed_cache"]),
                             (k, v, ctx["allowed"])], cfg.group)
    if "pattern" in names:  # put the new tokens' columns into their cache slots
      s = ck.shape[1]
      p = jax.lax.dynamic_update_slice(p[..., :s], p[..., s:], (0, 0, 0, ctx["index"]))
    start = (0, ctx["index"], 0, 0)
    new_kv = (jax.lax.dynamic_update_slice(ck, k.astype(ck.dtype), start),
              jax.lax.dynamic_update_slice(cv, v.astype(cv.dtype), start))
  else:
    z, p = ops.attention(q, [(k, v, ctx["allowed"])], cfg.group)
    new_kv = (k, v) if ctx.get("emit_kv") else ()
  acts["pattern"] = p
  z = shd.constrain(_intervene_z(z, iv, pos), "z")
  acts["z"] = z
  wo = lp["wo"].astype(dt)
  if "head_out" in names:
    acts["head_out"] = ops.mm("bthd,hdm->bthm", z, wo)
  attn = ops.mm("bthd,hdm->btm", z, wo)
  if "bo" in lp:
    attn = attn + lp["bo"].astype(dt)
  acts["attn_out"] = attn
  x = x + attn
  acts["resid_mid"] = x
  m_in = ops.norm(cfg, x, lp["mlp_norm_scale"], lp.get("mlp_norm_bias"))
  acts["mlp_in"] = m_in
  m_out = ops.mlp(cfg, lp, m_in)
  if "mlp_out_mask" in iv:
    m_out = _put(m_out, iv["mlp_out_mask"].astype(bool), iv["mlp_out_value"], pos, 1)
  acts["mlp_out"] = m_out
  out = {n: sel(acts[n], axis=2 if n == "pattern" else 1) for n in names}
  return shd.constrain(x + m_out, "resid"), out, new_kv


def _intervene_z(z, iv, pos):
  """z * z_scale, then overwrite (z_mask, z_value) at pos, then + z_delta at pos."""
  if "z_scale" in iv:
    z = z * iv["z_scale"].astype(z.dtype)[None, None, :, None]
  if "z_mask" in iv:
    z = _put(z, iv["z_mask"].astype(bool)[:, None], iv["z_value"], pos, 2)
  if "z_delta" in iv:
    delta = iv["z_delta"].astype(z.dtype)
    delta = delta[:, None] if delta.ndim == 3 else delta
    if pos is not None:
      delta = jnp.where(pos[:, :, None, None], delta, 0)
    z = z + delta
  return z


def _per_layer(intervene: Intervention | None, start: int, stop: int) -> dict:
  if intervene is None:
    return {}
  return {n: getattr(intervene, n)[start:stop] for n in _PER_LAYER
          if getattr(intervene, n) is not None}


def _embed(cfg, params, ids, pos, intervene, posmask, dt):
  x = jnp.take(params["embed"], ids, axis=0).astype(dt)
  if cfg.pos == "learned":
    x = x + jnp.take(params["pos_embed"], pos, axis=0).astype(dt)
  if intervene is not None and intervene.embed_value is not None:
    x = _put(x, jnp.asarray(True), intervene.embed_value, posmask, 1)
  return shd.constrain(x, "resid")


def _unembed(cfg, params, x):
  h = ops.norm(cfg, x, params["final_norm_scale"], params.get("final_norm_bias"))
  w = params["embed"].T if cfg.tie_embeddings else params["unembed"]
  logits = ops.mm("...m,mv->...v", h, w.astype(h.dtype), out=jnp.float32)
  return shd.constrain(logits, "logits")


def final_logits(cfg: DecoderConfig, params: dict, resid: jax.Array) -> jax.Array:
  """Final norm + unembedding of a residual [..., D] -> fp32 logits [..., V]."""
  return _unembed(cfg, params, resid)


def layer_params(params: dict, layer: int | jax.Array) -> dict:
  """The parameters of one layer (index the stacked [L] axis)."""
  return jax.tree.map(lambda a: a[layer], params["layers"])


def mlp_block(cfg: DecoderConfig, params: dict, layer: int | jax.Array,
              resid_mid: jax.Array) -> jax.Array:
  """MLP output of `layer` for a residual [..., D] (its norm included): `mlp_out[layer]`."""
  lp = layer_params(params, layer)
  a = ops.norm(cfg, resid_mid.astype(cfg.compute_dtype), lp["mlp_norm_scale"],
               lp.get("mlp_norm_bias"))
  return ops.mlp(cfg, lp, a)


def _run(cfg, params, ids, mask, *, capture, intervene, capture_pos, start, stop, resid,
         allowed, pos, cache, emit_kv=False):
  dt = jnp.dtype(cfg.compute_dtype)
  t = ids.shape[1]
  span = t if cache is None else cache.k.shape[2]
  if cfg.sliding_window is not None and span > cfg.sliding_window:
    raise ConfigError(f"{span} positions exceed sliding_window={cfg.sliding_window}; sliding-"
                      "window attention is not implemented, so keep sequences (and caches) "
                      "within the window.")
  if cfg.pos == "learned" and span > cfg.max_positions:
    raise ConfigError(f"{span} positions exceed the learned position table "
                      f"({cfg.max_positions}); shorten the input.")
  posmask = _pos_mask(None if intervene is None else intervene.z_pos, t)
  stop = cfg.n_layers if stop is None else stop
  if not 0 <= start <= stop <= cfg.n_layers:
    raise ConfigError(f"start_layer={start}, stop_layer={stop}: need 0 <= start <= stop <= "
                      f"{cfg.n_layers}.")
  if resid is not None:
    x = resid.astype(dt)
  else:
    x = _embed(cfg, params, ids, pos, intervene, posmask, dt)
  ctx = {"posmask": posmask, "emit_kv": emit_kv}
  ctx["allowed"], ctx["allowed_cache"] = allowed if cache is not None else (allowed, None)
  if cfg.pos == "rope":
    ctx["rope"] = ops.rope_tables(cfg, pos)
  layers = jax.tree.map(lambda a: a[start:stop], params["layers"])
  if cache is not None:
    layers = dict(layers, cache_k=cache.k[start:stop], cache_v=cache.v[start:stop])
    ctx["index"] = cache.index
  names, sel = capture.layer_names(), _selector(capture.at, capture_pos)

  def body(x, xs):
    lp, iv = xs
    x, out, new_kv = _layer(cfg, lp, iv, x, ctx, names, sel)
    return x, (out, new_kv)

  body = _remat(cfg, body)
  x, (acts, new_kv) = jax.lax.scan(body, x, (layers, _per_layer(intervene, start, stop)))
  if capture.resid_final:
    acts["resid_final"] = sel(x)
  out = x if stop < cfg.n_layers else _unembed(cfg, params, x)
  return out, acts, new_kv


_REMAT_POLICIES = {
  "full": None,  # save nothing per layer: recompute the whole block in the backward pass
  "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,  # keep the matmuls
}


def _remat(cfg: DecoderConfig, body):
  """The scanned layer body, rematerialised per `cfg.remat` ("none" | "full" | "dots")."""
  if cfg.remat == "none":
    return body
  return jax.checkpoint(body, policy=_REMAT_POLICIES[cfg.remat], prevent_cse=False)


def apply(cfg: DecoderConfig, params: dict, ids: jax.Array, mask: jax.Array, *,
          capture: Capture = Capture(), intervene: Intervention | None = None,
          capture_pos: jax.Array | None = None, start_layer: int = 0,
          stop_layer: int | None = None, resid: jax.Array | None = None):
  """Full forward of a left-padded batch.

  Args:
    cfg: the model config (static).
    params: parameter tree (docs/decoder.md).
    ids: [b, t] int token ids.
    mask: [b, t] 1 for real tokens, 0 for (left) padding.
    capture: which intermediates to return (static).
    intervene: array interventions, or None.
    capture_pos: [b] int32 positions when `capture.at == "index"`.
    start_layer: first layer to run (static); then `resid` [b, t, D] is its input.
    stop_layer: run layers up to this one (static) and return the residual instead of logits.
    resid: [b, t, D] residual input of `start_layer`.

  Returns:
    (logits [b, t, V] fp32 — or resid_pre[stop_layer] [b, t, D] when stopping early, acts dict).
  """
  mask = jnp.asarray(mask)
  t = ids.shape[1]
  causal = jnp.tril(jnp.ones((t, t), bool))
  # a padding query sees only itself: finite outputs that never read later tokens
  allowed = causal[None] & (mask.astype(bool)[:, None, :] | jnp.eye(t, dtype=bool)[None])
  out, acts, _ = _run(cfg, params, ids, mask, capture=capture, intervene=intervene,
                      capture_pos=capture_pos, start=start_layer, stop=stop_layer, resid=resid,
                      allowed=allowed, pos=ops.positions_from_mask(mask), cache=None)
  return out, acts


def prefill(cfg: DecoderConfig, params: dict, ids: jax.Array, mask: jax.Array, max_len: int, *,
            capture: Capture = Capture(), intervene: Intervention | None = None,
            capture_pos: jax.Array | None = None):
  """Full forward of a prompt that also returns a KV cache of `max_len` slots (first t used).

  Same result as `extend` on an empty cache, but attention runs over the t prompt tokens
  only (cheaper). Args as `apply`; `max_len` (static) >= t.

  Returns:
    (logits [b, t, V] fp32, acts, Cache with index t).
  """
  mask = jnp.asarray(mask).astype(jnp.int32)
  b, t = ids.shape
  if max_len < t:
    raise ConfigError(f"max_len={max_len} is shorter than the prompt ({t} tokens).")
  causal = jnp.tril(jnp.ones((t, t), bool))
  allowed = causal[None] & (mask.astype(bool)[:, None, :] | jnp.eye(t, dtype=bool)[None])
  logits, acts, (k, v) = _run(cfg, params, ids, mask, capture=capture, intervene=intervene,
                              capture_pos=capture_pos, start=0, stop=None, resid=None,
                              allowed=allowed, pos=ops.positions_from_mask(mask), cache=None,
                              emit_kv=True)
  empty = init_cache(cfg, b, max_len)
  put = lambda c, x: jax.lax.dynamic_update_slice(c, x.astype(c.dtype), (0,) * c.ndim)
  fields = shd.constrain_cache({"k": put(empty.k, k), "v": put(empty.v, v),
                                "mask": put(empty.mask, mask)})
  cache = Cache(**fields, index=jnp.asarray(t, jnp.int32))
  return logits, acts, cache


def extend(cfg: DecoderConfig, params: dict, ids: jax.Array, mask: jax.Array, cache: Cache, *,
           capture: Capture = Capture(), intervene: Intervention | None = None,
           capture_pos: jax.Array | None = None):
  """Append t tokens to a KV cache (prefill when the cache is empty, decode when t == 1).

  Args:
    cfg: the model config (static).
    params: parameter tree.
    ids: [b, t] new token ids.
    mask: [b, t] 1 for real new tokens.
    cache: the `Cache` so far; its slots `index..index+t-1` are written.
    capture: captures over the new tokens (static).
    intervene: interventions over the new tokens (`z_pos` indexes the new tokens).
    capture_pos: [b] positions among the new tokens when `capture.at == "index"`.

  Returns:
    (logits [b, t, V] fp32, acts, updated cache).
  """
  mask = jnp.asarray(mask).astype(jnp.int32)
  t, s = ids.shape[1], cache.mask.shape[1]
  new_mask = jax.lax.dynamic_update_slice(cache.mask, mask, (0, cache.index))
  old = (jnp.arange(s) < cache.index)[None, None, :] & cache.mask.astype(bool)[:, None, :]
  allowed_cache = jnp.broadcast_to(old, (ids.shape[0], t, s))
  causal = jnp.tril(jnp.ones((t, t), bool))
  allowed = causal[None] & (mask.astype(bool)[:, None, :] | jnp.eye(t, dtype=bool)[None])
  pos = ops.positions_from_mask(mask, cache.mask.sum(-1))
  logits, acts, (k, v) = _run(cfg, params, ids, mask, capture=capture, intervene=intervene,
                              capture_pos=capture_pos, start=0, stop=None, resid=None,
                              allowed=(allowed, allowed_cache), pos=pos, cache=cache)
  fields = shd.constrain_cache({"k": k, "v": v, "mask": new_mask})
  return logits, acts, Cache(**fields, index=cache.index + t)


jit_apply = jax.jit(apply, static_argnums=0, static_argnames=("capture", "start_layer",
                                                              "stop_layer"))
jit_extend = jax.jit(extend, static_argnums=0, static_argnames=("capture",))
jit_prefill = jax.jit(prefill, static_argnums=(0, 4), static_argnames=("capture",))
