"""Exact last-position fast paths for patching every head (spec e.2).

A patch at the last position ``T`` changes nothing before ``T``, so each patched
run only needs position ``T`` recomputed. Under SPT's path-patching convention
(later attention inputs at ``T`` frozen to ``x_r``) the later attention outputs
at ``T`` equal ``x_r``'s, so a sender ``(l, h)`` costs only the single-token MLPs
of layers ``l..L-1``:

    r = resid_mid_r[l][T] + (z_c - z_r)[l, T, h] @ wo[l][h]
    r = r + MLP_l(norm(r));  for j > l: r = r + attn_out_r[j][T]; r = r + MLP_j(norm(r))

All ``L x H`` senders (and the ``L`` MLP senders) run in ONE jitted call: the
layer loop is unrolled, and at layer ``j`` the candidates of every source layer
``<= j`` go through the MLP as one batch (exactly the triangle of needed work).
The total-effect variant (activation patching at ``T``) is one decode step per
candidate against ``x_r``'s KV cache, vmapped over candidates.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.interp import metrics as metrics_lib
from jaxlab.interp import patching
from jaxlab.interp.patching import Pair, PatchResult
from jaxlab.models import decoder as dec
from jaxlab.models import decoder_ops as ops


def unembed(cfg: dec.DecoderConfig, params: dict, x: jax.Array,
            token_ids: jax.Array | None) -> jax.Array:
  """Final norm + unembedding of ``x [..., b, D]`` -> ``[..., b, K]`` (or ``[..., b, V]``)."""
  h = ops.norm(cfg, x, params["final_norm_scale"], params.get("final_norm_bias"))
  h = h.astype(jnp.float32)
  rows = params["embed"] if cfg.tie_embeddings else params["unembed"].T  # [V, D]
  if token_ids is None:
    return jnp.einsum("...m,vm->...v", h, rows.astype(jnp.float32))
  w = jnp.take(rows, token_ids, axis=0).astype(jnp.float32)  # [b, K, D]
  return jnp.einsum("...bm,bkm->...bk", h, w)


def _mlp_step(cfg, lp, x):
  """x + MLP(norm(x)) on any [..., D] (flattened to one token batch)."""
  flat = x.reshape(1, -1, x.shape[-1])
  a = ops.norm(cfg, flat, lp["mlp_norm_scale"], lp.get("mlp_norm_bias"))
  return x + ops.mlp(cfg, lp, a).reshape(x.shape)


def head_deltas(params: dict, z_r: jax.Array, z_c: jax.Array) -> jax.Array:
  """[L, b, H, D] residual change of patching each head: ``(z_c - z_r)[l,b,h] @ wo[l][h]``."""
  wo = params["layers"]["wo"]
  return jnp.einsum("lbhd,lhdm->lbhm", (z_c - z_r).astype(wo.dtype), wo)


def _chain(cfg, params, acts_r, delta, mlp_c, include_mlps: bool):
  """Final residuals at T: heads [L, b, H, D], MLP senders [L, b, D] (or None)."""
  if not include_mlps:
    final = acts_r["resid_final"]
    heads = final[None, :, None] + delta
    mlps = None if mlp_c is None else final[None] + (mlp_c - acts_r["mlp_out"])
    return heads, mlps
  r, m = None, None
  for j in range(cfg.n_layers):
    lp = jax.tree.map(lambda a, j=j: a[j], params["layers"])
    attn_j = acts_r["attn_out"][j]  # [b, D]
    new = acts_r["resid_mid"][j][:, None] + delta[j]  # [b, H, D]
    r = new[None] if r is None else jnp.concatenate([r + attn_j[None, :, None], new[None]], 0)
    if m is None:
      r = _mlp_step(cfg, lp, r)
    else:
      m = m + attn_j[None]
      n_r = r.size // r.shape[-1]
      both = jnp.concatenate([r.reshape(-1, r.shape[-1]), m.reshape(-1, m.shape[-1])], 0)
      both = _mlp_step(cfg, lp, both)
      r, m = both[:n_r].reshape(r.shape), both[n_r:].reshape(m.shape)
    if mlp_c is not None:
      new_m = (acts_r["resid_mid"][j] + mlp_c[j])[None]
      m = new_m if m is None else jnp.concatenate([m, new_m], 0)
  return r, m


@functools.partial(jax.jit, static_argnums=0, static_argnames=("include_mlps", "mlps"))
def _fast_core(cfg, metric, params, acts_r, acts_c, *, include_mlps, mlps):
  delta = head_deltas(params, acts_r["z"], acts_c["z"])
  b = acts_r["z"].shape[1]
  token_ids = jnp.broadcast_to(metric.token_ids, (b, metric.token_ids.shape[-1]))
  mlp_c = acts_c["mlp_out"] if mlps else None
  r_heads, r_mlps = _chain(cfg, params, acts_r, delta, mlp_c, include_mlps)
  cols = None if metric.full_vocab else token_ids
  measure = lambda x: metric.fn(unembed(cfg, params, x, cols), token_ids)
  heads = jax.lax.map(lambda x: measure(jnp.swapaxes(x, 0, 1)), r_heads)  # [L, H, b]
  return heads, (None if r_mlps is None else jax.lax.map(measure, r_mlps))


def path_patch_fast(
  cfg: dec.DecoderConfig, params: dict, pair: Pair, metric: metrics_lib.Metric, *,
  include_mlps: bool = True, mlps: bool = False, batch_size: int | None = None,
) -> PatchResult:
  """Head -> logits path patching at ``T`` for all ``L x H`` heads, exact and fast.

  Same semantics and outputs as ``patching.path_patch_naive`` (SPT's released
  procedure): sender ``z`` from ``x_c`` at ``T``, later attention inputs at ``T``
  frozen to ``x_r``, MLPs recompute (``include_mlps=True``) or are frozen.

  Args:
    cfg: model config.
    params: decoder params.
    pair: reference / counterfactual batch (same length, left-padded).
    metric: what to measure at ``T``.
    include_mlps: later MLPs recompute (SPT) or stay at ``x_r``.
    mlps: also score each MLP layer as a sender (its output at ``T`` from ``x_c``).
    batch_size: split the prompts into chunks of this size to bound memory.

  Returns:
    PatchResult with ``heads [L, H, b]`` (and ``mlps [L, b]``).
  """
  b = pair.ids_r.shape[0]
  if batch_size is not None and batch_size < b:
    return _chunked(cfg, params, pair, metric, batch_size, include_mlps=include_mlps, mlps=mlps)
  logits_r, acts_r, logits_c, acts_c = patching.reference_runs(cfg, params, pair)
  heads, mlp_vals = _fast_core(cfg, metric, params, acts_r, acts_c,
                               include_mlps=include_mlps, mlps=mlps)
  return PatchResult(heads, mlp_vals, metric(logits_r), metric(logits_c))


def _chunked(cfg, params, pair, metric, size, **kw):
  b = pair.ids_r.shape[0]
  parts = []
  for start in range(0, b, size):
    idx = np.arange(start, start + size) % b  # pad the last chunk by wrapping (one shape)
    sub = Pair(*(a[idx] for a in pair))
    ids = None if metric.token_ids is None else metric.token_ids[idx % metric.token_ids.shape[0]]
    res = path_patch_fast(cfg, params, sub, metric.replace(token_ids=ids), **kw)
    keep = min(size, b - start)
    parts.append(jax.tree.map(lambda a, k=keep: a[..., :k], res))
  return jax.tree.map(lambda *xs: jnp.concatenate(xs, -1), *parts)


# ---- activation patching at T (total effect) ------------------------------------

@functools.partial(jax.jit, static_argnums=0, static_argnames=("chunk",))
def _act_core(cfg, metric, params, pair, z_c, mlp_c, hot, mhot, *, chunk):
  t = pair.ids_r.shape[1]
  # prefill attends over the t-1 prompt tokens only and returns a t-slot cache (an empty
  # init_cache + extend inside jit made XLA constant-fold the zero cache: slow compiles)
  _, _, cache = dec.prefill(cfg, params, pair.ids_r[:, :-1], pair.mask_r[:, :-1], t)

  def one(args):
    h1, m1 = args
    iv = dec.Intervention(z_mask=h1, z_value=z_c, mlp_out_mask=m1, mlp_out_value=mlp_c)
    logits, _, _ = dec.extend(cfg, params, pair.ids_r[:, -1:], pair.mask_r[:, -1:], cache,
                              intervene=iv)
    return metric(logits[:, -1])

  return jax.lax.map(one, (hot, mhot), batch_size=chunk)


def act_patch_fast(
  cfg: dec.DecoderConfig, params: dict, pair: Pair, metric: metrics_lib.Metric, *,
  mlps: bool = False, chunk: int = 16,
) -> PatchResult:
  """Activation patching (total effect) of every head at ``T``, via one cached decode step.

  Each candidate recomputes only position ``T`` through all layers against the
  KV cache of ``x_r``'s prefix; later attention and MLPs respond to the patch.
  """
  logits_r, acts_r, logits_c, acts_c = patching.reference_runs(cfg, params, pair)
  _, hot, mhot = patching.candidates(cfg.n_layers, cfg.n_heads, heads=True, mlps=mlps)
  vals = _act_core(cfg, metric, params, pair, acts_c["z"], acts_c["mlp_out"], hot, mhot,
                   chunk=chunk)
  L, H = cfg.n_layers, cfg.n_heads
  heads = vals[: L * H].reshape(L, H, -1)
  return PatchResult(heads, vals[L * H:] if mlps else None, metric(logits_r), metric(logits_c))


@functools.partial(jax.jit, static_argnums=0)
def _act_naive_one(cfg, metric, params, pair, z_c, mlp_c, hot, mhot):
  iv = dec.Intervention(z_pos=pair.last(), z_mask=hot, z_value=z_c, mlp_out_mask=mhot,
                        mlp_out_value=mlp_c)
  logits, _ = dec.apply(cfg, params, pair.ids_r, pair.mask_r, intervene=iv)
  return metric(logits[:, -1])


def act_patch_naive(
  cfg: dec.DecoderConfig, params: dict, pair: Pair, metric: metrics_lib.Metric, *,
  mlps: bool = False,
) -> PatchResult:
  """Reference for ``act_patch_fast``: one full forward per candidate."""
  logits_r, acts_r, logits_c, acts_c = patching.reference_runs(cfg, params, pair)
  _, hot, mhot = patching.candidates(cfg.n_layers, cfg.n_heads, heads=True, mlps=mlps)
  vals = jnp.stack([_act_naive_one(cfg, metric, params, pair, acts_c["z"],
                                   acts_c["mlp_out"], hot[i], mhot[i])
                    for i in range(hot.shape[0])])
  L, H = cfg.n_layers, cfg.n_heads
  return PatchResult(vals[: L * H].reshape(L, H, -1), vals[L * H:] if mlps else None,
                     metric(logits_r), metric(logits_c))
