"""Pure numerical pieces of the decoder: norms, RoPE, grouped attention, MLPs."""

import functools
import math

import jax
import jax.numpy as jnp

from jaxlab.models.decoder_config import DecoderConfig

NEG_INF = -1e30  # finite, so fully masked (padding) rows give a uniform softmax, not NaN


def positions_from_mask(mask: jax.Array, offset: jax.Array | int = 0) -> jax.Array:
  """Position ids `clip(offset + cumsum(mask) - 1, 0)` per row.

  Args:
    mask: [b, t] 1 for real tokens (left padding).
    offset: [b] or scalar count of real tokens already in a cache.

  Returns:
    [b, t] int32 positions.
  """
  offset = jnp.asarray(offset, jnp.int32)
  if offset.ndim == 1:
    offset = offset[:, None]
  pos = offset + jnp.cumsum(mask.astype(jnp.int32), axis=-1) - 1
  return jnp.maximum(pos, 0)


def mm(spec: str, x: jax.Array, w: jax.Array, out=None) -> jax.Array:
  """``einsum(spec, x, w)`` in ``out`` (default x's dtype); below fp32 it accumulates in
  fp32, both ways.

  fp32 inputs run a plain einsum (the HF-parity path, unchanged). bf16/fp16 inputs run
  ``bf16 x bf16 -> fp32`` products cast back to x's dtype, forward and in the hand-written
  backward (``_mm_low``). Autodiff of ``einsum(..., preferred_element_type=fp32)`` would
  run the backward products in fp32 (the fp32 cotangent promotes the weight), which on
  CPUs with AVX512-BF16 halves their speed. ``spec`` is ``"x,w->out"``; every index of
  one operand appears in the other or in the output (true of the decoder's products).
  """
  out = jnp.dtype(out or x.dtype)
  if x.dtype == jnp.float32 and w.dtype == jnp.float32:
    return jnp.einsum(spec, x, w, preferred_element_type=out)
  return _mm_low(spec, out, x, w)


def _explicit(spec: str, *arrays: jax.Array) -> list[str]:
  """The operand and output subscripts of ``spec`` with ``...`` spelled out (A, B, ...)."""
  ins, out = spec.split("->")
  subs = ins.split(",")
  full = []
  for sub, a in zip(subs, arrays):
    n = a.ndim - (len(sub) - 3) if "..." in sub else 0
    full.append(sub.replace("...", "ABCDEFGH"[:n]))
  n_out = max((len(f) - len(s) + 3 for f, s in zip(full, subs) if "..." in s), default=0)
  return full + [out.replace("...", "ABCDEFGH"[:n_out])]


def _prod(spec: str, a: jax.Array, b: jax.Array) -> jax.Array:
  """fp32 einsum of two low-precision operands, produced in dot_general's own order
  (batch, a's free, b's free) and then transposed. XLA:CPU's fallback dot thunk has no
  bf16 x bf16 -> fp32 kernel, and a product whose output puts a batch dim after a free
  one (e.g. ``bthd,hdm->bthm``) reaches it and fails at run time."""
  sa, sb, so = _explicit(spec, a, b)
  batch = [c for c in sa if c in sb and c in so]
  canon = "".join(batch + [c for c in sa if c in so and c not in batch]
                  + [c for c in sb if c in so and c not in batch])
  y = jnp.einsum(f"{sa},{sb}->{canon}", a, b, preferred_element_type=jnp.float32)
  return y.transpose([canon.index(c) for c in so])


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _mm_low(spec, out, x, w):
  return _prod(spec, x, w).astype(out)


def _mm_low_fwd(spec, out, x, w):
  return _mm_low(spec, out, x, w), (x, w)


def _mm_low_bwd(spec, _, res, g):
  x, w = res
  sx, sw, so = _explicit(spec, x, w)
  g = g.astype(x.dtype)
  dx = _prod(f"{so},{sw}->{sx}", g, w.astype(x.dtype))
  dw = _prod(f"{sx},{so}->{sw}", x, g)
  return dx.astype(x.dtype), dw.astype(w.dtype)


_mm_low.defvjp(_mm_low_fwd, _mm_low_bwd)


def norm(cfg: DecoderConfig, x: jax.Array, scale: jax.Array, bias: jax.Array | None) -> jax.Array:
  """RMSNorm or LayerNorm in fp32, cast back to x's dtype, then times `scale` (HF order).

  Args:
    cfg: config (`norm`, `norm_eps`).
    x: [..., D].
    scale: [D].
    bias: [D] or None (LayerNorm only).

  Returns:
    [..., D] in x's dtype.
  """
  x32 = x.astype(jnp.float32)
  if cfg.norm == "rms":
    y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + cfg.norm_eps)
    return y.astype(x.dtype) * scale.astype(x.dtype)
  mu = jnp.mean(x32, axis=-1, keepdims=True)
  var = jnp.mean(jnp.square(x32 - mu), axis=-1, keepdims=True)
  y = (x32 - mu) * jax.lax.rsqrt(var + cfg.norm_eps)
  y = y * scale.astype(jnp.float32) + bias.astype(jnp.float32)
  return y.astype(x.dtype)


def rope_inv_freq(cfg: DecoderConfig) -> jax.Array:
  """[d/2] inverse frequencies `theta^(-2i/d)`, with the optional llama3 rescaling."""
  d = cfg.head_dim
  inv = 1.0 / (cfg.rope_theta ** (jnp.arange(0, d, 2, dtype=jnp.float32) / d))
  if cfg.rope_llama3 is None:
    return inv
  factor, low_ff, high_ff, old_ctx = cfg.rope_llama3
  wavelen = 2 * math.pi / inv
  low_wl, high_wl = old_ctx / low_ff, old_ctx / high_ff
  inv_l = jnp.where(wavelen > low_wl, inv / factor, inv)
  smooth = (old_ctx / wavelen - low_ff) / (high_ff - low_ff)
  smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
  medium = (wavelen >= high_wl) & (wavelen <= low_wl)
  return jnp.where(medium, smoothed, inv_l)


def rope_tables(cfg: DecoderConfig, pos: jax.Array) -> tuple[jax.Array, jax.Array]:
  """cos and sin tables [b, t, d] for positions [b, t] (HF rotate_half layout)."""
  ang = pos.astype(jnp.float32)[..., None] * rope_inv_freq(cfg)
  ang = jnp.concatenate([ang, ang], axis=-1)
  return jnp.cos(ang), jnp.sin(ang)


def apply_rope(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
  """`x*cos + rotate_half(x)*sin` on x [b, t, n, d] with tables [b, t, d]."""
  half = x.shape[-1] // 2
  rot = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
  c, s = cos[:, :, None].astype(x.dtype), sin[:, :, None].astype(x.dtype)
  return x * c + rot * s


def attention(q: jax.Array, segments: list[tuple[jax.Array, jax.Array, jax.Array]],
              group: int) -> tuple[jax.Array, jax.Array]:
  """Grouped-query attention with per-head outputs over one or more key segments.

  Segments (e.g. a shared KV cache and the new tokens) share one softmax but are never
  concatenated, so a cache broadcast under `vmap` is not copied per candidate.

  Args:
    q: [b, t, H, d] queries.
    segments: (k [b, s_i, H_kv, d], v [b, s_i, H_kv, d], allowed [b, t, s_i] bool) per segment.
    group: G = H // H_kv; query head h reads KV group h // G.

  Returns:
    z [b, t, H, d] (q's dtype) and the fp32 pattern [b, H, t, sum s_i] (segments in order).
  """
  b, t, n_heads, d = q.shape
  qg = q.reshape(b, t, n_heads // group, group, d)
  scores = []
  for k, _, allowed in segments:
    sc = mm("btkgd,bskd->bkgts", qg, k, out=jnp.float32)
    scores.append(jnp.where(allowed[:, None, None], sc / math.sqrt(d), NEG_INF))
  m = jnp.max(jnp.stack([sc.max(-1) for sc in scores]), axis=0)[..., None]
  exps = [jnp.exp(sc - m) for sc in scores]
  denom = sum(e.sum(-1, keepdims=True) for e in exps)
  probs = [e / denom for e in exps]
  z = sum(mm("bkgts,bskd->btkgd", p.astype(v.dtype), v)
          for p, (_, v, _) in zip(probs, segments))
  p = jnp.concatenate(probs, axis=-1) if len(probs) > 1 else probs[0]
  return z.reshape(b, t, n_heads, d), p.reshape(b, n_heads, t, -1)


def mlp(cfg: DecoderConfig, lp: dict, a: jax.Array) -> jax.Array:
  """SwiGLU or GELU(tanh) MLP of one layer (`lp`: that layer's params) on a [..., D]."""
  dt = a.dtype

  def lin(x, w, b=None):
    y = mm("...m,mf->...f", x, lp[w].astype(dt))
    return y if b is None or b not in lp else y + lp[b].astype(dt)

  if cfg.mlp == "swiglu":
    h = jax.nn.silu(lin(a, "w_gate", "b_gate")) * lin(a, "w_up", "b_up")
  else:
    h = jax.nn.gelu(lin(a, "w_up", "b_up"), approximate=True)
  return lin(h, "w_down", "b_down")
