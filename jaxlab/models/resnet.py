"""A CIFAR-style ResNet: 3x3 stem without max-pool, BatchNorm, basic blocks.

``ResNet(stage_sizes=(2, 2, 2, 2))`` is ResNet-18. Stages: 0 stem, 1..S the
residual layers, S+1 the head (global average pool + dense). ``stop=k`` returns
the feature map after stage ``k``; ``start=k`` consumes it.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class BasicBlock(nn.Module):
  features: int
  strides: int = 1
  bn_momentum: float = 0.9

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    norm = lambda name: nn.BatchNorm(  # noqa: E731
      use_running_average=not train, momentum=self.bn_momentum, epsilon=1e-5, name=name
    )
    y = nn.Conv(self.features, (3, 3), self.strides, padding=1, use_bias=False, name="conv1")(x)
    y = nn.relu(norm("bn1")(y))
    y = nn.Conv(self.features, (3, 3), padding=1, use_bias=False, name="conv2")(y)
    y = norm("bn2")(y)
    if x.shape[-1] != self.features or self.strides != 1:
      x = nn.Conv(self.features, (1, 1), self.strides, use_bias=False, name="proj")(x)
      x = norm("proj_bn")(x)
    return nn.relu(x + y)


class ResNet(nn.Module):
  """CIFAR ResNet with configurable depth and width.

  Attributes:
    stage_sizes: blocks per residual layer ((2, 2, 2, 2) = ResNet-18).
    width: channels of the first layer; layer i has ``width * 2**i``.
    bn_momentum: running-average momentum (0.9 matches PyTorch's 0.1).
  """

  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  width: int = 64
  num_classes: int = 10
  bn_momentum: float = 0.9

  @property
  def num_stages(self) -> int:
    return len(self.stage_sizes) + 2

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, start: int = 0,
               stop: int | None = None) -> jax.Array:
    stop = self.num_stages - 1 if stop is None else stop
    if start == 0:
      x = x[..., None] if x.ndim == 3 else x
      x = nn.Conv(self.width, (3, 3), padding=1, use_bias=False, name="stem_conv")(
        x.astype(jnp.float32)
      )
      x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                       epsilon=1e-5, name="stem_bn")(x)
      x = nn.relu(x)
    for i, n in enumerate(self.stage_sizes):
      if start <= i + 1 <= stop:
        for j in range(n):
          strides = 2 if i > 0 and j == 0 else 1
          x = BasicBlock(self.width * 2**i, strides, self.bn_momentum,
                         name=f"layer{i + 1}_{j}")(x, train)
    if start <= self.num_stages - 1 <= stop:
      x = jnp.mean(x, axis=(1, 2))
      x = nn.Dense(self.num_classes, name="head")(x)
    return x
