"""Accuracy and group-fairness gaps on hard predictions (the release's evaluation.py).

  dEOp = |TPR_0 - TPR_1|,  dEO = max(dEOp, |TNR_0 - TNR_1|),  dDP = |PR_0 - PR_1|.

An optional ``mask`` [n] selects rows (padding), so the metrics vmap over
splits of different true sizes.
"""

import jax
import jax.numpy as jnp


def _rate(yhat, sel):
  return (yhat * sel).sum() / jnp.maximum(sel.sum(), 1.0)


def fairness(yhat: jax.Array, y: jax.Array, a: jax.Array, mask=None) -> dict[str, jax.Array]:
  """acc, d_eop, d_eo, d_dp and the gap on negatives (``d_neg``), all scalars in [0, 1].

  Args:
    yhat: [n] hard predictions in {0, 1}.  y: [n] labels.  a: [n] sensitive in {0, 1}.
    mask: optional [n] 0/1 row mask.
  """
  f = jnp.result_type(float)
  yhat, y, a = (v.astype(f) for v in (yhat, y, a))
  m = jnp.ones_like(y) if mask is None else mask.astype(f)
  g1, g0 = a * m, (1.0 - a) * m
  tpr = [_rate(yhat, g * y) for g in (g0, g1)]
  tnr = [_rate(1.0 - yhat, g * (1.0 - y)) for g in (g0, g1)]
  pr = [_rate(yhat, g) for g in (g0, g1)]
  d_eop = jnp.abs(tpr[0] - tpr[1])
  d_neg = jnp.abs(tnr[0] - tnr[1])
  return {
    "acc": ((yhat == y) * m).sum() / m.sum(),
    "d_eop": d_eop,
    "d_eo": jnp.maximum(d_eop, d_neg),
    "d_dp": jnp.abs(pr[0] - pr[1]),
    "d_neg": d_neg,
  }
