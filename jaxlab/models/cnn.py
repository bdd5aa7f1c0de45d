"""The classic FedAvg CNN (McMahan et al. 2017): conv5x5-32, pool, conv5x5-64,
pool, fc512, fc10. Padding 2 ("SAME") as in the FedML reference.

``im2col=True`` lowers each convolution to a patch gather plus a matmul (a Dense on
k*k*C features): the same function, but XLA:CPU runs ``nn.Conv`` inside ``lax.scan``
and under ``vmap`` over clients on a slow path (measured 0.2 vs 3.3 client-steps/s
for the FedAvg CNN on the 2-core sandbox), while its GEMM handles the matmul well.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


def max_pool2(x: jax.Array) -> jax.Array:
  """2x2 max pooling, stride 2, as a reshape + max (even H, W; else ``nn.max_pool``).

  Same values as ``nn.max_pool``; its gradient is an elementwise mask instead of
  XLA's select-and-scatter, which is slow on CPU (~30% of the FedAvg CNN's step).
  Tied maxima (e.g. a blank image region, where every output equals the bias) share
  the gradient equally instead of giving it to the first one; the parameter
  gradients agree wherever the tied positions see equal patches.
  """
  b, h, w, c = x.shape
  if h % 2 or w % 2:
    return nn.max_pool(x, (2, 2), strides=(2, 2))
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


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


class CNN(nn.Module):
  """Stages: 0 conv1+pool, 1 conv2+pool, 2 fc (features), 3 head (logits).

  Accepts ``[B, H, W]`` or ``[B, H, W, C]`` float images.
  """

  num_classes: int = 10
  channels: tuple[int, int] = (32, 64)
  hidden: int = 512
  num_stages: int = 4
  im2col: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, start: int = 0,
               stop: int | None = None) -> jax.Array:
    stop = self.num_stages - 1 if stop is None else stop
    if start == 0 and x.ndim == 3:
      x = x[..., None]
    x = x.astype(jnp.float32)
    for i, c in enumerate(self.channels):
      if start <= i <= stop:
        conv = (Im2colConv(c, name=f"conv{i}") if self.im2col
                else nn.Conv(c, (5, 5), padding="SAME", name=f"conv{i}"))
        x = nn.relu(max_pool2(conv(x)))   # == pool(relu(.)): relu is monotone
    if start <= 2 <= stop:
      x = x.reshape(x.shape[0], -1)
      x = nn.relu(nn.Dense(self.hidden, name="fc")(x))
    if start <= 3 <= stop:
      x = nn.Dense(self.num_classes, name="head")(x)
    return x
