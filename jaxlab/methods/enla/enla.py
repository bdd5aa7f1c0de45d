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
  """The strengthening feature: a text summary [..., P] -> per-layer visual tokens [..., J, Dv].

  One zero-initialised projection per layer (MaPLe's text->vision coupling), or one shared
  projection repeated at every layer (``shared``). Zero at init.
  """
  depth: int
  width: int
  shared: bool = False

  @nn.compact
  def __call__(self, summary: Array) -> Array:
    out = self.width if self.shared else self.depth * self.width
    s = nn.Dense(out, kernel_init=nn.initializers.zeros, name="proj")(summary)
    lead = summary.shape[:-1]
    if self.shared:
      return jnp.broadcast_to(s[..., None, :], lead + (self.depth, self.width))
    return s.reshape(lead + (self.depth, self.width))


def image_summary(z0: Array, wbar: Array, scale: Array) -> Array:
  """What the image sees in the class set: ``sum_k softmax(scale cos(z0, w_k)) w_k``.

  Args:
    z0: [B, P] normalised zero-shot (un-prompted) image features.
    wbar: [K, P] normalised EnLa class features of the current class set.
    scale: the CLIP logit scale.

  Returns:
    [B, P]: the zero-shot-posterior-weighted EnLa class feature per image; the same function
    at train (base classes) and test (any class set).
  """
  return jax.nn.softmax(scale * z0 @ wbar.T, axis=-1) @ wbar


def zero_out_block(block: dict) -> dict:
  """A CLIP ``Block``'s params with both residual branches' output layers zeroed (identity)."""
  zero = lambda t: jax.tree.map(jnp.zeros_like, t)
  attn = {**block["self_attn"], "out_proj": zero(block["self_attn"]["out_proj"])}
  mlp = {**block["mlp"], "fc2": zero(block["mlp"]["fc2"])}
  return {**block, "self_attn": attn, "mlp": mlp}


class MetaNet(nn.Module):
  """CoCoOp's meta-net: Linear(P -> P/16) - ReLU - Linear(-> D)."""
  hidden: int
  out: int

  @nn.compact
  def __call__(self, x: Array) -> Array:
    return nn.Dense(self.out, name="linear2")(nn.relu(nn.Dense(self.hidden, name="linear1")(x)))
