"""Build "FedImpro on <base algorithm>" from a staged Linen classifier."""

from typing import Any, NamedTuple

import jax
import optax

from jaxlab.core.errors import ConfigError
from jaxlab.federated import algorithms
from jaxlab.federated.types import FedAlgorithm, Model, Plugin
from jaxlab.methods.fedimpro import split as split_lib
from jaxlab.methods.fedimpro.config import FedImproConfig
from jaxlab.methods.fedimpro.plugin import make_plugin


class FedImpro(NamedTuple):
  """What :func:`make` returns.

  Attributes:
    algorithm: the FedAlgorithm (base algorithm + FedImpro plug-in).
    model: the engine Model (full forward pass, for evaluation).
    split: the SplitModel (low/high parts).
    plugin: the FedImpro Plugin.
    feature_shape: one example's split-feature shape; D is its product.
  """

  algorithm: FedAlgorithm
  model: Model
  split: split_lib.SplitModel
  plugin: Plugin
  feature_shape: tuple[int, ...]


def make(
  module: Any,
  *,
  split_after: int,
  sample_x: Any,
  client_tx: optax.GradientTransformation,
  config: FedImproConfig,
  num_clients: int,
  num_classes: int,
  batch_size: int,
  local_epochs: int = 1,
  base: str = "fedavg",
  **base_kwargs: Any,
) -> FedImpro:
  """FedImpro plugged into ``jaxlab.federated.algorithms.<base>``.

  Args:
    module: a staged jaxlab classifier (MLP, CNN, ResNet).
    split_after: last stage of the low-level part (ResNet-18: 2 = after layer2).
    sample_x: an input batch [B, ...] (preprocessed, float) used for shapes.
    client_tx: client optimizer (``jaxlab.federated.client_sgd``).
    config: FedImproConfig.
    num_clients: K.
    num_classes: C. The per-client class sizes come with the data:
      ``FedData.extra["class_counts"]`` (``fedimpro.class_counts``), per run in a sweep.
    batch_size: local batch size B.
    local_epochs: E.
    base: ``fedavg``, ``fedprox``, ``scaffold`` or ``fednova``.
    **base_kwargs: passed to the base factory (e.g. ``mu`` for FedProx).

  Returns:
    A FedImpro bundle.
  """
  if base not in algorithms.ALGORITHMS:
    raise ConfigError(f"base={base!r}; use one of {', '.join(algorithms.ALGORITHMS)}")
  split = split_lib.from_flax(module, split_after=split_after)
  model = Model.from_linen(module, sample_x)
  variables = split.init(jax.random.key(0), sample_x)
  shape = split_lib.feature_shape(split, variables, sample_x)
  plugin = make_plugin(split, config, feature_shape=shape, num_classes=num_classes,
                       batch_size=batch_size, local_epochs=local_epochs)
  alg = algorithms.ALGORITHMS[base](model, client_tx, num_clients=num_clients,
                                    plugin=plugin, **base_kwargs)
  return FedImpro(alg, model, split, plugin, shape)
