"""The classic FedAvg CNN (McMahan et al. 2017): conv5x5-32, pool, conv5x5-64,
pool, fc512, fc10. Padding 2 ("SAME") as in the FedML reference.

``first_conv`` picks how the first convolution runs. With one input channel (MNIST,
Fashion-MNIST) XLA:CPU's convolution spends ~4.5 ms of a 96-row step on a layer of
0.06 GFLOP (PyTorch/oneDNN: 0.8 ms); ``shift_conv`` computes the same values as k*k
shifted multiply-adds (0.6 ms) and keeps XLA's convolution for the derivatives: an
~11% cheaper training step of the 16/32 CNN (docs/fedfed.md "Benchmark"). ``"auto"``
uses it on CPU for one input channel (three, CIFAR's, measured no gain).

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


@jax.custom_jvp
def shift_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Stride-1 SAME convolution [B, H, W, C_in] x [k, k, C_in, C_out] as k*k shifted
  multiply-adds (odd k).

  The values are ``lax.conv_general_dilated``'s up to f32 summation order. The
  derivative rule is the convolution's own (linear in each argument), so forward and
  reverse mode both run XLA's convolution kernels: transposing the shifts instead
  would cost ~6x the convolution's gradient on CPU.
  """
  k, k2, c_in = kernel.shape[:3]
  if k != k2 or k % 2 == 0:
    raise ValueError(f"shift_conv needs an odd square kernel, got {kernel.shape[:2]}")
  p = k // 2
  h, w = x.shape[1:3]
  xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  out = 0.0
  for i in range(k):
    for j in range(k):
      win = xp[:, i:i + h, j:j + w, :]
      for c in range(c_in):
        out = out + win[..., c:c + 1] * kernel[i, j, c]
  return out


def _xla_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _shift_conv_jvp(primals, tangents):
  (x, kernel), (dx, dk) = primals, tangents
  out = shift_conv(x, kernel)
  zero = jax.custom_derivatives.SymbolicZero     # skip the conv of an undifferentiated input
  tangent = jnp.zeros_like(out)
  if not isinstance(dx, zero):
    tangent = tangent + _xla_conv(dx, kernel)
  if not isinstance(dk, zero):
    tangent = tangent + _xla_conv(x, dk)
  return out, tangent


shift_conv.defjvp(_shift_conv_jvp, symbolic_zeros=True)


class ShiftConv(nn.Module):
  """``nn.Conv(features, (k, k), padding="SAME")`` (same parameter names, shapes and
  initialisers, so the same key draws the same weights) through ``shift_conv``."""
  features: int
  kernel: int = 5

  @nn.compact
  def __call__(self, x):
    k = self.param("kernel", nn.initializers.lecun_normal(),
                   (self.kernel, self.kernel, x.shape[-1], self.features))
    b = self.param("bias", nn.initializers.zeros_init(), (self.features,))
    return shift_conv(x, k) + b


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


def _use_shift(first_conv: str, c_in: int) -> bool:
  if first_conv not in ("auto", "xla", "shift"):
    raise ValueError(f"first_conv={first_conv!r}; use auto, xla or shift")
  if first_conv == "auto":
    return c_in == 1 and jax.default_backend() == "cpu"
  return first_conv == "shift"


class CNN(nn.Module):
  """Stages: 0 conv1+pool, 1 conv2+pool, 2 fc (features), 3 head (logits).

  Accepts ``[B, H, W]`` or ``[B, H, W, C]`` float images. ``first_conv``: the first
  convolution as ``nn.Conv`` ("xla"), as ``ShiftConv`` ("shift": same parameters, same
  values up to f32 rounding), or "auto" (shift on CPU for one input channel).
  """

  num_classes: int = 10
  channels: tuple[int, int] = (32, 64)
  hidden: int = 512
  num_stages: int = 4
  im2col: bool = False
  first_conv: str = "auto"    # "auto" | "xla" | "shift" (ignored when im2col)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, start: int = 0,
               stop: int | None = None) -> jax.Array:
    stop = self.num_stages - 1 if stop is None else stop
    _use_shift(self.first_conv, 1)       # a bad value fails on every path, not only conv0's
    if start == 0 and x.ndim == 3:
      x = x[..., None]
    x = x.astype(jnp.float32)
    for i, c in enumerate(self.channels):
      if start <= i <= stop:
        if self.im2col:
          conv = Im2colConv(c, name=f"conv{i}")
        elif i == 0 and _use_shift(self.first_conv, x.shape[-1]):
          conv = ShiftConv(c, name=f"conv{i}")
        else:
          conv = nn.Conv(c, (5, 5), padding="SAME", name=f"conv{i}")
        x = nn.relu(max_pool2(conv(x)))   # == pool(relu(.)): relu is monotone
    if start <= 2 <= stop:
      x = x.reshape(x.shape[0], -1)
      x = nn.relu(nn.Dense(self.hidden, name="fc")(x))
    if start <= 3 <= stop:
      x = nn.Dense(self.num_classes, name="head")(x)
    return x
