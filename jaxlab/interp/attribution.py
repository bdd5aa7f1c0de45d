"""Attribution patching (AtP, spec e.4): a gradient x activation-difference estimate.

One ``jax.grad`` of the metric with respect to a zero offset ``z_delta`` added to
every head's ``z`` at ``T`` gives ``dM/dz`` for all heads at once; the estimate
of patching head ``(l, h)`` is ``sum_d (z_c - z_r)[l, T, h] * dM/dz[l, T, h]``.
With ``convention="path"`` every layer's attention input at ``T`` is frozen to
its own reference value (a value no-op that blocks the later-attention routes,
SPT's path convention); ``include_mlps=False`` also freezes the MLP outputs.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.interp import metrics as metrics_lib
from jaxlab.interp import patching
from jaxlab.interp.patching import Pair
from jaxlab.models import decoder as dec


@functools.partial(jax.jit, static_argnums=0, static_argnames=("convention", "include_mlps"))
def _atp(cfg, metric, params, pair, acts_r, acts_c, *, convention, include_mlps):
  L = cfg.n_layers
  kw = {}
  if convention == "path":
    kw.update(attn_in_freeze=jnp.ones((L,), bool),
              attn_in_value=jax.lax.stop_gradient(acts_r["attn_in"]))
    if not include_mlps:
      kw.update(mlp_out_mask=jnp.ones((L,), bool),
                mlp_out_value=jax.lax.stop_gradient(acts_r["mlp_out"]))

  def total(z_delta):
    iv = dec.Intervention(z_pos=pair.last(), z_delta=z_delta, **kw)
    logits, _ = dec.apply(cfg, params, pair.ids_r, pair.mask_r, intervene=iv)
    return jnp.sum(metric(logits[:, -1]))

  gz = jax.grad(total)(jnp.zeros_like(acts_r["z"]))
  heads = jnp.einsum("lbhd,lbhd->lhb", acts_c["z"] - acts_r["z"], gz)
  return heads


def attribution_patch(
  cfg: dec.DecoderConfig, params: dict, pair: Pair, metric: metrics_lib.Metric, *,
  convention: str = "path", include_mlps: bool = True,
) -> patching.PatchResult:
  """AtP estimate of every head's patching effect at ``T``.

  Args:
    cfg: model config.
    params: decoder params.
    pair: reference / counterfactual batch.
    metric: the metric.
    convention: "path" (SPT head -> logits, later attention frozen) or "total".
    include_mlps: with "path", whether later MLPs respond.

  Returns:
    PatchResult whose ``heads [L, H, b]`` are the first-order estimates of the
    patched metric (``M_r + sum_d dz * dM/dz``); ``mlps`` is None.
  """
  logits_r, acts_r, logits_c, acts_c = patching.reference_runs(cfg, params, pair)
  delta = _atp(cfg, metric, params, pair, acts_r, acts_c, convention=convention,
               include_mlps=include_mlps)
  m_ref = metric(logits_r)
  return patching.PatchResult(m_ref[None, None] + delta, None, m_ref, metric(logits_c))


def agreement(approx: np.ndarray, exact: np.ndarray, ks=(4, 8, 16)) -> dict:
  """Spearman correlation and top-k overlaps (most negative first) of two [L, H] maps."""
  out = {"spearman": metrics_lib.spearman(approx, exact)}
  for k in ks:
    out[f"top{k}_overlap"] = metrics_lib.topk_overlap(approx, exact, k)
  return out
