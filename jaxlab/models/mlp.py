"""A multi-layer perceptron classifier (e.g. 784-200-200-10)."""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class MLP(nn.Module):
  """Dense + ReLU stages, then a linear head.

  Stages: ``0..len(hidden)-1`` are the hidden layers, ``len(hidden)`` the head.
  Inputs of stage 0 are flattened.
  """

  hidden: Sequence[int] = (200, 200)
  num_classes: int = 10

  @property
  def num_stages(self) -> int:
    return len(self.hidden) + 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, start: int = 0,
               stop: int | None = None) -> jax.Array:
    stop = self.num_stages - 1 if stop is None else stop
    if start == 0:
      x = x.reshape(x.shape[0], -1).astype(jnp.float32)
    for i, h in enumerate(self.hidden):
      if start <= i <= stop:
        x = nn.relu(nn.Dense(h, name=f"dense{i}")(x))
    if start <= len(self.hidden) <= stop:
      x = nn.Dense(self.num_classes, name="head")(x)
    return x
