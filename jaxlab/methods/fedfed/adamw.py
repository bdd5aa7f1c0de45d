"""AdamW with PyTorch's per-parameter semantics and a trainable mask.

PyTorch skips a parameter whose ``requires_grad`` is False: no update, no decay, and
its step count and moments stay put. FedFed's three local passes freeze different
parts of the VAE + classifier with one persistent optimizer per client, so the mask
is a per-leaf boolean (traced: it depends on the pass) and every leaf has its own
step count (optax's ``adamw`` shares one count, which would bias-correct frozen
parts as if they had trained).
"""

import jax
import jax.numpy as jnp


def init(params) -> dict:
  """State {"m", "v", "t"}: zero moments and a per-leaf int32 step count."""
  zeros = lambda p: jnp.zeros_like(p)
  return {"m": jax.tree.map(zeros, params), "v": jax.tree.map(zeros, params),
          "t": jax.tree.map(lambda p: jnp.zeros([], jnp.int32), params)}


def update(grads, state: dict, params, mask, *, lr: float, b1: float = 0.9, b2: float = 0.999,
           eps: float = 1e-8, weight_decay: float = 0.0):
  """One AdamW step on the leaves where ``mask`` (a bool per leaf) is True.

  Returns:
    (new params, new state); masked-out leaves and their state are returned unchanged.
  """
  def leaf(g, m, v, t, p, on):
    t1 = t + 1
    p1 = p * (1.0 - lr * weight_decay)
    m1 = b1 * m + (1.0 - b1) * g
    v1 = b2 * v + (1.0 - b2) * g * g
    mhat = m1 / (1.0 - b1 ** t1.astype(p.dtype))
    vhat = v1 / (1.0 - b2 ** t1.astype(p.dtype))
    p1 = p1 - lr * mhat / (jnp.sqrt(vhat) + eps)
    pick = lambda a, b: jnp.where(on, a, b)
    return pick(p1, p), pick(m1, m), pick(v1, v), pick(t1, t)

  out = jax.tree.map(leaf, grads, state["m"], state["v"], state["t"], params, mask)
  is_tuple = lambda x: isinstance(x, tuple)
  get = lambda i: jax.tree.map(lambda o: o[i], out, is_leaf=is_tuple)
  return get(0), {"m": get(1), "v": get(2), "t": get(3)}
