"""Weighted classifiers as pure (init, prepare, fit, proba) tuples: logistic regression, MLP.

A learner fits from ``init`` (its own cold start, or the previous iterate when
the loop warm-starts) with a fixed amount of work, so the whole APW loop is one
``lax.scan`` that vmaps over eta and seeds. ``prepare`` builds, once per
iteration, what every eta's fit shares (the CG solver's preconditioner; None
for the others).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxlab.methods.apw import logreg
from jaxlab.models import MLP


class Learner(NamedTuple):
  """init(key, d) -> params; prepare(params [E], x, group) -> shared;
  fit(params0, x, y, s, key, shared) -> params; proba(params, x) -> [n]."""

  init: Any
  fit: Any
  proba: Any
  prepare: Any


def _no_prepare(params, x, group):
  del params, x, group


def _zeros(key, d):
  del key
  f = jnp.result_type(float)
  return (jnp.zeros(d, f), jnp.zeros((), f))


def logistic(c: float = 1.0, steps: int = 12, hessian_dtype: str | None = None) -> Learner:
  """sklearn-equivalent L2 logistic regression (sum-form loss, C = ``c``), Newton."""
  def fit(params0, x, y, s, key, shared=None):
    del key, shared
    return logreg.fit(x, y, s, c, steps=steps, init=params0, hessian_dtype=hessian_dtype)

  return Learner(_zeros, fit, logreg.predict_proba, _no_prepare)


def logistic_cg(c: float = 1.0, steps: int = 4, cg_iters: int = 8, chunks: int = 64,
                dtype: str | None = "float32", rounds: int = 2) -> Learner:
  """The same logistic regression by Newton-CG (``logreg.fit_cg``).

  ``prepare`` orders the rows by (subgroup, |logit|) with |logit| averaged over
  the etas' start params, and forms the chunk Grams (reference curvature
  sigmoid'(|logit|)) once per iteration for all etas, so an eta's fit costs
  matvecs only. Without ``shared`` (a fit from scratch) the fit prepares its own
  preconditioner from its current iterate, ``rounds`` times, ``steps`` steps each.
  """
  def prepare(params, x, group):
    w, b = params
    z = jnp.abs(x @ w.reshape(-1, x.shape[1]).T + b.reshape(-1)).mean(1)  # [n]
    return logreg.precondition(x, (z, group), _dsigmoid(z), chunks, dtype)

  def fit(params0, x, y, s, key, shared=None):
    del key
    if shared is not None:
      return logreg.fit_cg(x, y, s, c, pc=shared, steps=steps, cg_iters=cg_iters,
                           init=params0)
    p = params0
    for _ in range(rounds):
      z = logreg.logits(p, x)
      pc = logreg.precondition(x, (jnp.abs(z),), s * _dsigmoid(z), chunks, dtype)
      p = logreg.fit_cg(x, y, s, c, pc=pc, steps=steps, cg_iters=cg_iters, init=p)
    return p

  return Learner(_zeros, fit, logreg.predict_proba, prepare)


def _dsigmoid(z):
  p = jax.nn.sigmoid(z)
  return p * (1.0 - p)


def mlp(hidden: tuple[int, ...] = (64,), steps: int = 300, lr: float = 1e-2,
        weight_decay: float = 1e-4) -> Learner:
  """A Flax MLP (``jaxlab.models.MLP``) fit by full-batch Adam on weighted BCE.

  Loss: sum_i s_i BCE_i / n + weight_decay/2 ||theta||^2 (weights as in the
  release: their scale matters). Fixed ``steps``; float32.
  """
  net = MLP(hidden=tuple(hidden), num_classes=1)
  tx = optax.adam(lr)

  def init(key, d):
    return net.init(key, jnp.zeros((1, d), jnp.float32))["params"]

  def loss(params, x, y, s):
    z = net.apply({"params": params}, x)[:, 0]
    bce = jnp.logaddexp(0.0, z) - y * z
    l2 = sum(jnp.sum(w ** 2) for w in jax.tree.leaves(params))
    return jnp.sum(s * bce) / x.shape[0] + 0.5 * weight_decay * l2

  def fit(params0, x, y, s, key, shared=None):
    del key, shared
    x, y, s = x.astype(jnp.float32), y.astype(jnp.float32), s.astype(jnp.float32)

    def step(carry, _):
      p, o = carry
      g = jax.grad(loss)(p, x, y, s)
      upd, o = tx.update(g, o, p)
      return (optax.apply_updates(p, upd), o), None

    (p, _), _ = jax.lax.scan(step, (params0, tx.init(params0)), None, length=steps)
    return p

  def proba(params, x):
    z = net.apply({"params": params}, x.astype(jnp.float32))[:, 0]
    return jax.nn.sigmoid(z).astype(x.dtype)

  return Learner(init, fit, proba, _no_prepare)
