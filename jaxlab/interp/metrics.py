"""Patching metrics on last-position logits, and the scores built from them.

A metric is a ``Metric(token_ids, fn)``: ``token_ids [b, K]`` int32 are the only
vocabulary columns it reads (so the fast path unembeds K columns, not V), and
``fn(sel [..., b, K], token_ids [b, K]) -> [..., b]`` maps those logits to one
value per prompt (it may read ``token_ids``, never captured per-prompt arrays,
so a metric can be sliced into prompt chunks). With ``token_ids=None`` the
metric reads the full ``[..., b, V]`` logits (e.g. a softmax probability). fp32.
"""

import dataclasses
import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np


@functools.partial(jax.tree_util.register_dataclass, data_fields=["token_ids"],
                   meta_fields=["fn", "full_vocab"])
@dataclasses.dataclass(frozen=True)
class Metric:
  """What to measure at the last position.

  Attributes:
    token_ids: int32 [b, K] columns read (or, with ``full_vocab``, ids the fn uses).
    fn: ([..., b, K] or [..., b, V] fp32 logits, token_ids) -> [..., b] per prompt.
    full_vocab: the fn needs all V logits (softmax metrics).
  """

  token_ids: jax.Array | None
  fn: Callable[[jax.Array, jax.Array | None], jax.Array]
  full_vocab: bool = False

  def replace(self, **kw) -> "Metric":
    return dataclasses.replace(self, **kw)

  def __call__(self, logits: jax.Array) -> jax.Array:
    """Evaluates on full logits ``[..., b, V]`` -> ``[..., b]``."""
    logits = logits.astype(jnp.float32)
    if self.full_vocab or self.token_ids is None:
      return self.fn(logits, self.token_ids)
    ids = jnp.broadcast_to(self.token_ids, logits.shape[:-1] + self.token_ids.shape[-1:])
    return self.fn(jnp.take_along_axis(logits, ids, axis=-1), ids)


def _ids(ids: Sequence | np.ndarray | jax.Array, b: int | None = None) -> jax.Array:
  arr = jnp.asarray(ids, jnp.int32)
  if arr.ndim == 0:
    arr = arr[None]
  if arr.ndim == 1 and b is not None and arr.shape[0] == b:
    arr = arr[:, None]
  return arr if arr.ndim == 2 else arr[None]


def target_logit(target: Sequence[int] | jax.Array) -> Metric:
  """``l(target)``; ``target`` is ``[b]`` (per prompt) or a scalar id."""
  return Metric(jnp.asarray(target, jnp.int32).reshape(-1, 1), _first)


def _first(s, ids):
  del ids
  return s[..., 0]


def _diff_mean_others(s, ids):
  """``s[0] - mean(s[1:])`` over the others that differ from the target id."""
  excl = (ids[..., 1:] != ids[..., :1]).astype(jnp.float32)
  rest = jnp.sum(s[..., 1:] * excl, -1) / jnp.maximum(jnp.sum(excl, -1), 1.0)
  return s[..., 0] - rest


def _pair_diff(s, ids):
  del ids
  return s[..., 0] - s[..., 1]


def _ratio(s, ids):
  del ids
  return s[..., 0] / jnp.sum(s[..., 1:], -1)


def logit_diff(target: jax.Array, others: jax.Array) -> Metric:
  """``l(target) - mean l(others)``; target ``[b]``, others ``[K]`` or ``[b, K]``.

  Arithmetic: target = answer digit C, others = the other digits.
  """
  target = jnp.asarray(target, jnp.int32).reshape(-1, 1)
  others = jnp.asarray(others, jnp.int32)
  others = jnp.broadcast_to(others, (target.shape[0],) + others.shape[-1:])
  # The target is excluded from the others when it appears among them.
  return Metric(jnp.concatenate([target, others], axis=-1), _diff_mean_others)


def pair_diff(pos: jax.Array | int, neg: jax.Array | int) -> Metric:
  """``l(pos) - l(neg)``, e.g. SPT-analogue ``l(" sorry") - l(" glad")``."""
  pos = jnp.asarray(pos, jnp.int32).reshape(-1, 1)
  neg = jnp.asarray(neg, jnp.int32).reshape(-1, 1)
  pos, neg = jnp.broadcast_arrays(pos, neg)
  return Metric(jnp.concatenate([pos, neg], -1), _pair_diff)


def spt_ratio(target: jax.Array | int, record: Sequence[int] | jax.Array) -> Metric:
  """SPT's ``F = l(target) / sum_r l(record_r)`` on RAW logits (as released).

  Args:
    target: id (or ``[b]``) of the predicted token's first sub-token ("Apologies").
    record: ids of the record tokens (``["Apologies", "Yes"]``), ``[K]`` or ``[b, K]``.
  """
  target = jnp.asarray(target, jnp.int32).reshape(-1, 1)
  record = jnp.asarray(record, jnp.int32)
  record = jnp.broadcast_to(record, (target.shape[0],) + record.shape[-1:])
  return Metric(jnp.concatenate([target, record], -1), _ratio)


def _log_prob(lg, ids):
  """``log softmax(lg)[ids[:, 0]]`` on full logits ``[..., b, V]``."""
  ids = jnp.broadcast_to(ids[:, :1], lg.shape[:-1] + (1,))
  return jnp.take_along_axis(jax.nn.log_softmax(lg, -1), ids, -1)[..., 0]


def _prob(lg, ids):
  return jnp.exp(_log_prob(lg, ids))


def log_prob(target: jax.Array) -> Metric:
  """``log softmax(l)[target]`` (reads all V logits)."""
  return Metric(jnp.asarray(target, jnp.int32).reshape(-1, 1), _log_prob, True)


def prob(target: jax.Array) -> Metric:
  """``softmax(l)[target]`` (reads all V logits)."""
  return Metric(jnp.asarray(target, jnp.int32).reshape(-1, 1), _prob, True)


# ---- scores: per-prompt metric values -> one number per component ----------------

def relative_change(m_patched: jax.Array, m_ref: jax.Array) -> jax.Array:
  """Per prompt ``(M_p - M_r) / M_r`` (paper 1's relative logit change; SPT's F change)."""
  return (m_patched - m_ref) / m_ref


def spt_score(f_patched: jax.Array, f_ref: jax.Array) -> jax.Array:
  """``100 * mean_b((F_p - F_r) / F_r)`` over the last axis (SPT ``results.pt``)."""
  return 100.0 * jnp.mean(relative_change(f_patched, f_ref), axis=-1)


def mean_diff(m_patched: jax.Array, m_ref: jax.Array) -> jax.Array:
  """``mean_b(M_p - M_r)``."""
  return jnp.mean(m_patched - m_ref, axis=-1)


def normalised_effect(m_patched: jax.Array, m_ref: jax.Array, m_cf: jax.Array) -> jax.Array:
  """``mean(M_p - M_r) / mean(M_c - M_r)``: 0 = no effect, 1 = the full counterfactual gap."""
  return jnp.mean(m_patched - m_ref, -1) / jnp.mean(m_cf - m_ref, -1)


SCORES = {
  "relative": lambda p, r, c: 100.0 * jnp.mean(relative_change(p, r), -1),
  "diff": lambda p, r, c: mean_diff(p, r),
  "normalised": normalised_effect,
}


def score(kind: str, m_patched: jax.Array, m_ref: jax.Array, m_cf: jax.Array) -> jax.Array:
  """One of ``relative`` (100*mean rel. change, = SPT score), ``diff``, ``normalised``."""
  return SCORES[kind](m_patched, m_ref, m_cf)


def concentration(scores: np.ndarray, k: int) -> float:
  """Share of the total negative effect held by the k most negative components."""
  neg = np.clip(-np.asarray(scores, np.float64).ravel(), 0, None)
  total = neg.sum()
  return float(np.sort(neg)[::-1][:k].sum() / total) if total > 0 else 0.0


def n_for_share(scores: np.ndarray, share: float = 0.8) -> int:
  """Fewest components whose negative effects sum to ``share`` of the total."""
  neg = np.sort(np.clip(-np.asarray(scores, np.float64).ravel(), 0, None))[::-1]
  total = neg.sum()
  if total <= 0:
    return 0
  return int(np.searchsorted(np.cumsum(neg) / total, share) + 1)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
  """Spearman rank correlation of two flattened score maps."""
  ra = np.argsort(np.argsort(np.ravel(a))).astype(np.float64)
  rb = np.argsort(np.argsort(np.ravel(b))).astype(np.float64)
  ra -= ra.mean()
  rb -= rb.mean()
  return float((ra * rb).sum() / np.sqrt((ra * ra).sum() * (rb * rb).sum()))


def topk_overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
  """Fraction of the k lowest entries of ``a`` that are among the k lowest of ``b``."""
  ta = set(np.argsort(np.ravel(a), kind="stable")[:k].tolist())
  tb = set(np.argsort(np.ravel(b), kind="stable")[:k].tolist())
  return len(ta & tb) / max(k, 1)
