"""Engine-friendly model lowerings for CPU simulation.

XLA:CPU runs ``nn.Conv`` inside ``lax.scan`` (and under ``vmap`` over clients, as
grouped convolutions) on a slow path: measured 0.2 client-steps/s for the FedAvg
CNN on a loaded 2-core sandbox versus 3.3 with the im2col lowering below, which
turns each 5x5 SAME convolution into one patch gather plus a matmul (a Dense on
k·k·C features), the form XLA:CPU's GEMM handles well under vmap.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


def patches(x: jax.Array, k: int) -> jax.Array:
  """SAME-padded k x k patches: [B, H, W, C] -> [B, H, W, k·k·C]."""
  p = k // 2
  xp = jnp.pad(x, ((0, 0), (p, k - 1 - p), (p, k - 1 - p), (0, 0)))
  h, w = x.shape[1:3]
  return jnp.concatenate([xp[:, i:i + h, j:j + w] for i in range(k) for j in range(k)], -1)


class Im2colConv(nn.Module):
  """Stride-1 SAME convolution as patches + Dense (kernel [k·k·C_in, C_out])."""
  features: int
  kernel: int = 5

  @nn.compact
  def __call__(self, x):
    return nn.Dense(self.features)(patches(x, self.kernel))


class FedCNN(nn.Module):
  """The FedAvg CNN: conv5x5-c1, pool, conv5x5-c2, pool, fc-hidden, fc-classes.

  Defaults are McMahan et al.'s (32, 64, 512). ``im2col=True`` uses
  ``Im2colConv`` (same function, faster on CPU under vmap + scan).
  """
  channels: tuple[int, int] = (32, 64)
  hidden: int = 512
  num_classes: int = 10
  im2col: bool = True

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    if x.ndim == 3:
      x = x[..., None]
    for c in self.channels:
      conv = Im2colConv(c) if self.im2col else nn.Conv(c, (5, 5), padding="SAME")
      x = nn.max_pool(nn.relu(conv(x)), (2, 2), (2, 2))
    x = nn.relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))
    return nn.Dense(self.num_classes)(x)


class FedMLP(nn.Module):
  """MLP 784-200-200-10 (McMahan et al. 2NN) by default."""
  hidden: tuple[int, ...] = (200, 200)
  num_classes: int = 10

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    x = x.reshape(x.shape[0], -1)
    for h in self.hidden:
      x = nn.relu(nn.Dense(h)(x))
    return nn.Dense(self.num_classes)(x)
