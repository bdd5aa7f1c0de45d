"""The conditional VAE of FedFed (``FL_CVAE_cifar``, spec §4.1) with its classifier g.

One module for every image shape: the body has ``width`` channels at H/4 x W/4
(CIFAR 32x32x3: 32 x 8 x 8 = 2048 = z; Fashion-MNIST 28x28x1: d x 7 x 7), so the
CIFAR shape and a small 28x28 shape are two configs of the same code.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def _bn():
  return nn.BatchNorm(momentum=0.9, epsilon=1e-5)   # PyTorch momentum 0.1


class ResBlock(nn.Module):
  """x + Conv1x1(LReLU(BN(Conv3x3(LReLU(x))))) (slope 0.01), channels kept."""
  channels: int

  @nn.compact
  def __call__(self, x, train: bool):
    h = nn.Conv(self.channels, (3, 3), padding=1)(nn.leaky_relu(x, 0.01))
    h = _bn()(h, use_running_average=not train)
    return x + nn.Conv(self.channels, (1, 1))(nn.leaky_relu(h, 0.01))


class CVAE(nn.Module):
  """Encoder -> (mu, logvar) -> decoder giving x_r in [0, 1]; ``classifier`` is g.

  Attributes:
    width: d (body channels).
    latent: z; None = the flattened body size.
    channels: image channels.
    classifier: the embedded classifier g (a Linen module called as ``g(x, train=)``).
  """
  width: int
  image_size: tuple[int, int]
  channels: int
  classifier: Any
  latent: int | None = None

  @property
  def body_shape(self) -> tuple[int, int, int]:
    h, w = self.image_size
    return (h // 4, w // 4, self.width)

  def setup(self):
    d, c = self.width, self.channels
    conv = lambda f: nn.Conv(f, (4, 4), strides=2, padding=1, use_bias=False)
    convt = lambda f: nn.ConvTranspose(f, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)),
                                       use_bias=False)
    self.enc_conv = [conv(d // 2), conv(d)]
    self.enc_bn = [_bn(), _bn(), _bn()]
    self.enc_res = [ResBlock(d), ResBlock(d)]
    self.dec_res = [ResBlock(d), ResBlock(d)]
    self.dec_bn = [_bn(), _bn(), _bn(), _bn()]
    self.dec_conv = [convt(d // 2), convt(c)]
    self.g = self.classifier
    flat = self.body_shape[0] * self.body_shape[1] * d
    z = self.latent or flat
    self.fc11, self.fc12, self.fc21 = nn.Dense(z), nn.Dense(z), nn.Dense(flat)

  def encode(self, x, train: bool):
    """x [B, H, W, C] in [0, 1] -> (mu, logvar), each [B, z]."""
    ra = not train
    h = nn.relu(self.enc_bn[0](self.enc_conv[0](x), use_running_average=ra))
    h = nn.relu(self.enc_bn[1](self.enc_conv[1](h), use_running_average=ra))
    h = self.enc_bn[2](self.enc_res[0](h, train), use_running_average=ra)
    h = self.enc_res[1](h, train)
    flat = h.reshape(h.shape[0], -1)
    return self.fc11(flat), self.fc12(flat)

  def decode(self, hz, train: bool):
    ra = not train
    h = self.fc21(hz).reshape(hz.shape[0], *self.body_shape)
    h = self.dec_bn[0](self.dec_res[0](h, train), use_running_average=ra)
    h = self.dec_bn[1](self.dec_res[1](h, train), use_running_average=ra)
    h = self.dec_bn[2](self.dec_conv[0](h), use_running_average=ra)
    h = jnp.tanh(nn.leaky_relu(h, 0.01))                       # as coded: LReLU then tanh
    return nn.sigmoid(self.dec_bn[3](self.dec_conv[1](h), use_running_average=ra))

  def reconstruct(self, x, train: bool, key: jax.Array | None = None):
    """(x_r, mu, logvar); train samples h = mu + e^{logvar/2}·eps with ``key``, eval h = mu."""
    mu, logvar = self.encode(x, train)
    hz = mu if key is None else mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape)
    return self.decode(hz, train), mu, logvar

  def classify(self, x, train: bool):
    return self.g(x, train=train)

  def __call__(self, x, train: bool = False):
    """Initialises every part: (x_r, logits of g on x)."""
    return self.reconstruct(x, train)[0], self.classify(x, train)
