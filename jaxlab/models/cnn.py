"""The classic FedAvg CNN (McMahan et al. 2017): conv5x5-32, pool, conv5x5-64,
pool, fc512, fc10. Padding 2 ("SAME") as in the FedML reference."""

import flax.linen as nn
import jax
import jax.numpy as jnp


class CNN(nn.Module):
  """Stages: 0 conv1+pool, 1 conv2+pool, 2 fc (features), 3 head (logits).

  Accepts ``[B, H, W]`` or ``[B, H, W, C]`` float images.
  """

  num_classes: int = 10
  channels: tuple[int, int] = (32, 64)
  hidden: int = 512
  num_stages: int = 4

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, start: int = 0,
               stop: int | None = None) -> jax.Array:
    stop = self.num_stages - 1 if stop is None else stop
    if start == 0 and x.ndim == 3:
      x = x[..., None]
    x = x.astype(jnp.float32)
    for i, c in enumerate(self.channels):
      if start <= i <= stop:
        x = nn.relu(nn.Conv(c, (5, 5), padding="SAME", name=f"conv{i}")(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
    if start <= 2 <= stop:
      x = x.reshape(x.shape[0], -1)
      x = nn.relu(nn.Dense(self.hidden, name="fc")(x))
    if start <= 3 <= stop:
      x = nn.Dense(self.num_classes, name="head")(x)
    return x
