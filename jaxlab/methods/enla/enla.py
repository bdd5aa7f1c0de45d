"""EnPrompt's learnable pieces as Linen modules: external layers, strengthening, meta-net.

All of these are **reconstructed** ([R] in ``config.py``): the paper's text says what they
connect, not their exact form.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array


class Adapter(nn.Module):
  """``w + alpha * MLP(w)`` (CLIP-Adapter style); the last layer starts at zero, so the
  external layer starts as the identity on the frozen embeddings."""
  dim: int
  alpha: float = 0.2

  @nn.compact
  def __call__(self, w: Array) -> Array:
    h = nn.relu(nn.Dense(max(self.dim // 4, 4), name="fc1")(w))
    return w + self.alpha * nn.Dense(self.dim, kernel_init=nn.initializers.zeros, name="fc2")(h)


def _identity_init(key, shape, dtype=jnp.float32):
  del key
  return jnp.eye(shape[0], shape[1], dtype=dtype)


class LinearId(nn.Module):
  """A linear map initialised to the identity."""
  dim: int

  @nn.compact
  def __call__(self, w: Array) -> Array:
    return nn.Dense(self.dim, kernel_init=_identity_init, name="linear")(w)


class Strength(nn.Module):
  """The strengthening feature: text summary [P] -> per-layer visual tokens [J, Dv].

  ``shared`` projects once and repeats the token at every layer; zero-initialised so that
  EnPrompt starts from plain deep visual prompts.
  """
  depth: int
  width: int
  shared: bool = False

  @nn.compact
  def __call__(self, summary: Array) -> Array:
    out = self.width if self.shared else self.depth * self.width
    s = nn.Dense(out, kernel_init=nn.initializers.zeros, name="proj")(summary)
    return jnp.broadcast_to(s, (self.depth, self.width)) if self.shared else s.reshape(
      self.depth, self.width)


class MetaNet(nn.Module):
  """CoCoOp's meta-net: Linear(P -> P/16) - ReLU - Linear(-> D)."""
  hidden: int
  out: int

  @nn.compact
  def __call__(self, x: Array) -> Array:
    return nn.Dense(self.out, name="linear2")(nn.relu(nn.Dense(self.hidden, name="linear1")(x)))
