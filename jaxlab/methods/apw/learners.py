"""Weighted classifiers as pure (init, fit, proba) triples: logistic regression, MLP.

A learner fits from ``init`` (its own cold start, or the previous iterate when
the loop warm-starts) with a fixed amount of work, so the whole APW loop is one
``lax.scan`` that vmaps over eta and seeds.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxlab.methods.apw import logreg
from jaxlab.models import MLP


class Learner(NamedTuple):
  """init(key, d) -> params; fit(params0, x, y, s, key) -> params; proba(params, x) -> [n]."""

  init: Any
  fit: Any
  proba: Any


def logistic(c: float = 1.0, steps: int = 12, hessian_dtype: str | None = None) -> Learner:
  """sklearn-equivalent L2 logistic regression (sum-form loss, C = ``c``), Newton."""
  def init(key, d):
    del key
    f = jnp.result_type(float)
    return (jnp.zeros(d, f), jnp.zeros((), f))

  def fit(params0, x, y, s, key):
    del key
    return logreg.fit(x, y, s, c, steps=steps, init=params0, hessian_dtype=hessian_dtype)

  return Learner(init, fit, logreg.predict_proba)


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

  def fit(params0, x, y, s, key):
    del key
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

  return Learner(init, fit, proba)
