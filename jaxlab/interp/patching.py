"""Activation and path patching on jaxlab's decoder, full-forward ("naive") versions.

Everything goes through the decoder's pure ``apply`` with an ``Intervention``
pytree, so a patched run is one jitted call and a sweep can be a ``vmap``.
Conventions (spec e.1): ``x_r`` is the reference (clean) prompt, ``x_c`` the
counterfactual; both are left-padded to the same length ``t``, so the last
real position ``T`` is index ``t - 1`` in every row.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core.errors import DataError
from jaxlab.interp import metrics as metrics_lib
from jaxlab.models import decoder as dec

Capture, Intervention = dec.Capture, dec.Intervention


class Pair(NamedTuple):
  """A reference / counterfactual batch, left-padded to one length.

  Attributes:
    ids_r, mask_r: int32 [b, t] reference tokens and mask.
    ids_c, mask_c: int32 [b, t] counterfactual tokens and mask.
  """

  ids_r: jax.Array
  mask_r: jax.Array
  ids_c: jax.Array
  mask_c: jax.Array

  @classmethod
  def make(cls, ids_r, mask_r, ids_c, mask_c) -> "Pair":
    arrs = [jnp.asarray(a, jnp.int32) for a in (ids_r, mask_r, ids_c, mask_c)]
    if len({a.shape for a in arrs}) != 1 or arrs[0].ndim != 2:
      raise DataError(f"reference and counterfactual batches must share one [b, t] shape, got "
                      f"{[a.shape for a in arrs]}; left-pad both to the same length.")
    return cls(*arrs)

  def last(self) -> jax.Array:
    """int32 [b]: the index of the last position (``t - 1``)."""
    return jnp.full((self.ids_r.shape[0],), self.ids_r.shape[1] - 1, jnp.int32)


class PatchResult(NamedTuple):
  """Per-prompt metric values of a sweep.

  Attributes:
    heads: [L, H, b] metric with each head patched (NaN where not run).
    mlps: [L, b] metric with each MLP layer patched, or None.
    m_ref: [b] metric of the unpatched reference run.
    m_cf: [b] metric of the counterfactual run.
  """

  heads: jax.Array
  mlps: jax.Array | None
  m_ref: jax.Array
  m_cf: jax.Array

  def head_scores(self, kind: str = "relative") -> np.ndarray:
    """[L, H] scores (``relative`` = SPT's ``100 * mean((M_p - M_r)/M_r)``)."""
    return np.asarray(metrics_lib.score(kind, self.heads, self.m_ref, self.m_cf))

  def mlp_scores(self, kind: str = "relative") -> np.ndarray | None:
    if self.mlps is None:
      return None
    return np.asarray(metrics_lib.score(kind, self.mlps, self.m_ref, self.m_cf))


@functools.partial(jax.jit, static_argnums=0, static_argnames=("capture",))
def run_cache(cfg, params, ids, mask, capture: Capture = Capture(z=True, at="last")):
  """One forward returning (last-position logits [b, V] fp32, acts)."""
  logits, acts = dec.apply(cfg, params, ids, mask, capture=capture)
  return logits[:, -1], acts


PATH_CAPTURE = Capture(z=True, attn_in=True, mlp_out=True, attn_out=True, resid_mid=True,
                       resid_final=True, at="last")


def path_intervention(
  cfg: dec.DecoderConfig, layer: jax.Array, head_onehot: jax.Array, mlp_onehot: jax.Array,
  acts_r: dict, acts_c: dict, last: jax.Array, *, include_mlps: bool = True,
) -> Intervention:
  """The SPT path-patching intervention for one sender (head or MLP) at ``T``.

  Args:
    cfg: model config.
    layer: int32 [] the sender's layer ``l``.
    head_onehot: [L, H] the sender head (zeros for an MLP sender).
    mlp_onehot: [L] the sender MLP (zeros for a head sender).
    acts_r: reference captures at ``T`` (``attn_in``, ``mlp_out``).
    acts_c: counterfactual captures at ``T`` (``z``, ``mlp_out``).
    last: int32 [b] the index of ``T``.
    include_mlps: later MLPs recompute (SPT); False freezes them to ``x_r`` too.

  Returns:
    An Intervention: the sender's ``z`` (or MLP output) at ``T`` from ``x_c``, every
    later layer's attention input at ``T`` frozen to ``x_r``'s.
  """
  layers = jnp.arange(cfg.n_layers)
  later = layers > layer
  mlp_src = mlp_onehot.astype(bool)
  mlp_mask = mlp_src if include_mlps else mlp_src | (layers >= layer)
  mlp_value = jnp.where(mlp_src[:, None, None], acts_c["mlp_out"], acts_r["mlp_out"])
  return Intervention(
    z_pos=last, z_mask=head_onehot, z_value=acts_c["z"],
    attn_in_freeze=later, attn_in_value=acts_r["attn_in"],
    mlp_out_mask=mlp_mask, mlp_out_value=mlp_value)


def candidates(n_layers: int, n_heads: int, heads: bool = True, mlps: bool = False):
  """Sender list as arrays: (layer [n], head one-hots [n, L, H], mlp one-hots [n, L])."""
  rows = []
  if heads:
    rows += [(l, h, -1) for l in range(n_layers) for h in range(n_heads)]
  if mlps:
    rows += [(l, -1, l) for l in range(n_layers)]
  layer = np.array([r[0] for r in rows], np.int32)
  hot = np.zeros((len(rows), n_layers, n_heads), np.float32)
  mhot = np.zeros((len(rows), n_layers), np.float32)
  for i, (l, h, m) in enumerate(rows):
    if h >= 0:
      hot[i, l, h] = 1
    else:
      mhot[i, m] = 1
  return jnp.asarray(layer), jnp.asarray(hot), jnp.asarray(mhot)


@functools.partial(jax.jit, static_argnums=0, static_argnames=("include_mlps",))
def _patched_metric(cfg, metric, params, pair, acts_r, acts_c, layer, hot, mhot, *, include_mlps):
  iv = path_intervention(cfg, layer, hot, mhot, acts_r, acts_c, pair.last(),
                         include_mlps=include_mlps)
  logits, _ = dec.apply(cfg, params, pair.ids_r, pair.mask_r, intervene=iv)
  return metric(logits[:, -1])


def reference_runs(cfg, params, pair: Pair, capture: Capture = PATH_CAPTURE):
  """(logits_r, acts_r, logits_c, acts_c) at ``T``."""
  logits_r, acts_r = run_cache(cfg, params, pair.ids_r, pair.mask_r, capture=capture)
  logits_c, acts_c = run_cache(cfg, params, pair.ids_c, pair.mask_c, capture=capture)
  return logits_r, acts_r, logits_c, acts_c


def path_patch_naive(
  cfg: dec.DecoderConfig, params: dict, pair: Pair, metric: metrics_lib.Metric, *,
  include_mlps: bool = True, mlps: bool = False, heads: list | None = None,
) -> PatchResult:
  """Head -> logits path patching at ``T``, one full forward per sender (SPT's loop).

  The slow reference for ``path_patch_fast``: identical semantics, L*H full runs.

  Args:
    cfg: model config.
    params: decoder params.
    pair: reference / counterfactual batch.
    metric: what to measure at ``T``.
    include_mlps: later MLPs recompute (True, SPT) or are frozen too.
    mlps: also patch each MLP layer's output (paper 1).
    heads: restrict to these ``(layer, head)`` senders (others are NaN).

  Returns:
    A PatchResult.
  """
  logits_r, acts_r, logits_c, acts_c = reference_runs(cfg, params, pair)
  L, H = cfg.n_layers, cfg.n_heads
  b = pair.ids_r.shape[0]
  out = np.full((L, H, b), np.nan, np.float32)
  wanted = set(map(tuple, heads)) if heads is not None else None
  layer, hot, mhot = candidates(L, H, heads=True, mlps=mlps)
  np_layer, np_hot = np.asarray(layer), np.asarray(hot)
  mlp_out = np.full((L, b), np.nan, np.float32) if mlps else None
  for i in range(np_layer.shape[0]):
    l = int(np_layer[i])
    is_head = bool(np_hot[i].any())
    h = int(np.argmax(np_hot[i, l])) if is_head else -1
    if is_head and wanted is not None and (l, h) not in wanted:
      continue
    vals = np.asarray(_patched_metric(cfg, metric, params, pair, acts_r, acts_c, layer[i],
                                      hot[i], mhot[i], include_mlps=include_mlps))
    if is_head:
      out[l, h] = vals
    else:
      mlp_out[l] = vals
  return PatchResult(jnp.asarray(out), None if mlp_out is None else jnp.asarray(mlp_out),
                     metric(logits_r), metric(logits_c))


@functools.partial(jax.jit, static_argnums=0)
def run_patched(cfg, params, ids, mask, intervene: Intervention):
  """Logits ``[b, t, V]`` of one run under an intervention."""
  return dec.apply(cfg, params, ids, mask, intervene=intervene)[0]


def patch_heads_intervention(
  z_source: jax.Array, head_mask: jax.Array, pos: jax.Array | None = None,
) -> Intervention:
  """Activation patching of any (layer, head, position) set.

  Args:
    z_source: ``z`` of the source run, [L, b, t, H, d] (all positions) or [L, b, H, d].
    head_mask: [L, H] heads to patch.
    pos: [b, t] position mask or [b] index; None = all positions.
  """
  return Intervention(z_pos=pos, z_mask=head_mask, z_value=z_source)


def patch_mlps_intervention(
  mlp_source: jax.Array, layer_mask: jax.Array, pos: jax.Array | None = None,
) -> Intervention:
  """Activation patching of MLP outputs ([L, b, t, D] or [L, b, D]) at ``pos``."""
  return Intervention(z_pos=pos, mlp_out_mask=layer_mask, mlp_out_value=mlp_source)


@functools.partial(jax.jit, static_argnums=(0, 1))
def patch_resid(cfg, layer: int, params, ids, mask, resid_source, pos_mask):
  """Activation patching of the residual stream ``resid_pre[layer]`` at ``pos_mask``.

  Args:
    cfg: model config.
    layer: static layer whose input is patched.
    params: decoder params.
    ids, mask: [b, t] the run to patch (reference).
    resid_source: [b, t, D] the source run's ``resid_pre[layer]``.
    pos_mask: [b, t] bool where to patch.

  Returns:
    logits [b, t, V].
  """
  if layer == 0:
    resid = dec.apply(cfg, params, ids, mask, capture=Capture(resid_pre=True))[1]["resid_pre"][0]
  else:
    resid, _ = dec.apply(cfg, params, ids, mask, stop_layer=layer)
  resid = jnp.where(pos_mask[..., None].astype(bool), resid_source.astype(resid.dtype), resid)
  return dec.apply(cfg, params, ids, mask, start_layer=layer, resid=resid)[0]


def patch_everything_intervention(acts_c: dict, embed_c: jax.Array, mask: jax.Array):
  """All heads, MLPs and embeddings from ``x_c`` at all positions (e.3 test 2).

  ``acts_c`` needs ``z`` [L, b, t, H, d] and ``mlp_out`` [L, b, t, D]; ``embed_c`` [b, t, D].
  """
  L, _, _, H, _ = acts_c["z"].shape
  return Intervention(
    z_pos=jnp.ones_like(mask, bool), z_mask=jnp.ones((L, H)), z_value=acts_c["z"],
    mlp_out_mask=jnp.ones((L,), bool), mlp_out_value=acts_c["mlp_out"], embed_value=embed_c)
