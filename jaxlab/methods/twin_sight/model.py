"""The twin: a supervised ``f_s`` (backbone + classifier) and a self-supervised ``f_u``
(backbone + SimCLR projector, optional BYOL predictor), as pure functions.

``f_u`` runs only in training mode (it is never evaluated), so its BatchNorm layers
always normalise with the batch statistics; their running averages would never be
read and are not kept (the owned params are trainable params only).
"""

from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.federated.types import Model
from jaxlab.models.cnn import Im2colConv, max_pool2
from jaxlab.models.resnet import ResNet


class BackboneConfig(NamedTuple):
  """``kind="cnn"``: im2col convs (``channels``, ``kernel``) + pool, then a Dense of
  ``feat_dim``; ``kind="resnet"``: the CIFAR ResNet (512-d features for ResNet-18)."""
  kind: str = "cnn"
  channels: tuple = (16, 32)
  kernel: int = 3
  feat_dim: int = 64
  resnet_stages: tuple = (2, 2, 2, 2)
  resnet_width: int = 64


class Backbone(nn.Module):
  cfg: BackboneConfig

  @nn.compact
  def __call__(self, x, train: bool):
    c = self.cfg
    if c.kind == "resnet":
      net = ResNet(stage_sizes=c.resnet_stages, width=c.resnet_width, name="resnet")
      return net(x, train, stop=net.num_stages - 2).mean(axis=(1, 2))
    for i, ch in enumerate(c.channels):
      x = nn.relu(max_pool2(Im2colConv(ch, c.kernel, name=f"conv{i}")(x)))
    return nn.relu(nn.Dense(c.feat_dim, name="fc")(x.reshape(x.shape[0], -1)))


class SupNet(nn.Module):
  """``f_s``: logits, or (features, logits) with ``features=True``."""
  backbone: BackboneConfig
  num_classes: int

  @nn.compact
  def __call__(self, x, train: bool = False, features: bool = False):
    f = Backbone(self.backbone, name="backbone")(x, train)
    logits = nn.Dense(self.num_classes, name="head")(f)
    return (f, logits) if features else logits


class TrainBatchNorm(nn.Module):
  """BatchNorm1d in training mode (batch statistics, affine), no running averages."""
  eps: float = 1e-5

  @nn.compact
  def __call__(self, x):
    scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
    bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
    return (x - x.mean(0)) / jnp.sqrt(x.var(0) + self.eps) * scale + bias


def _mlp(x, hidden: int, out: int, name: str):
  x = nn.Dense(hidden, name=f"{name}_fc1")(x)
  x = nn.relu(TrainBatchNorm(name=f"{name}_bn")(x))
  return nn.Dense(out, name=f"{name}_fc2")(x)


class UnsupNet(nn.Module):
  """``f_u``: (backbone features, projection, prediction or the projection)."""
  backbone: BackboneConfig
  proj_hidden: int = 4096
  proj_dim: int = 2048
  predictor: bool = False

  @nn.compact
  def __call__(self, x):
    f = Backbone(self.backbone, name="backbone")(x, True)
    p = _mlp(f, self.proj_hidden, self.proj_dim, "proj")
    q = _mlp(p, self.proj_hidden, self.proj_dim, "pred") if self.predictor else p
    return f, p, q


class Twin(NamedTuple):
  """The twin as pure functions.

  Attributes:
    model: the engine ``Model`` of ``f_s`` (logits; evaluated).
    sup: ``(params, model_state, x, train) -> ((features, logits), model_state)``.
    unsup_init: ``key -> params`` of ``f_u``.
    unsup: ``(params, x) -> (features, projection, prediction)``.
  """
  model: Model
  sup: Callable
  unsup_init: Callable
  unsup: Callable


def make_twin(backbone: BackboneConfig, num_classes: int, sample_x: Any, *,
              proj_hidden: int = 4096, proj_dim: int = 2048, predictor: bool = False) -> Twin:
  """Builds ``f_s`` and ``f_u`` for inputs shaped like ``sample_x`` [B, H, W, C]."""
  sup_mod = SupNet(backbone, num_classes)
  model = Model.from_linen(sup_mod, sample_x)
  uns_mod = UnsupNet(backbone, proj_hidden, proj_dim, predictor)
  uvars = jax.eval_shape(uns_mod.init, jax.random.key(0), sample_x)
  # f_u's ResNet BN running stats are never read in training mode: constant zeros/ones.
  u_stats = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), dict(uvars).get("batch_stats", {}))

  def sup(params, model_state, x, train):
    variables = {"params": params, **model_state}
    if train and model_state:
      out, new = sup_mod.apply(variables, x, True, True, mutable=list(model_state))
      return out, dict(new)
    return sup_mod.apply(variables, x, train, True), model_state

  def unsup(params, x):
    variables = {"params": params, **({"batch_stats": u_stats} if u_stats else {})}
    if u_stats:
      return uns_mod.apply(variables, x, mutable=["batch_stats"])[0]
    return uns_mod.apply(variables, x)

  return Twin(model, sup, lambda key: uns_mod.init(key, sample_x)["params"], unsup)
