"""FedAvg (McMahan et al. 2017): local SGD, server ``w_g <- sum_k p_k w_k``."""

import optax

from jaxlab.federated.algorithms.base import Hooks, build
from jaxlab.federated.types import FedAlgorithm, Model, Plugin


def fedavg(model: Model, client_tx: optax.GradientTransformation, *, num_clients: int,
           plugin: Plugin | None = None, weight_mode: str = "n_k",
           server_tx: optax.GradientTransformation | None = None,
           persist_opt_state: bool = False) -> FedAlgorithm:
  """FedAvg; BN stats averaged with the same weights; optional server optimizer (FedOpt).

  Args:
    model: the model (``Model.from_linen``).
    client_tx: client optimizer, e.g. ``client_sgd(0.01)``.
    num_clients: K.
    plugin: a method's loss/state (default: supervised cross-entropy).
    weight_mode: ``"n_k"`` or ``"uniform"``.
    server_tx: applied to the pseudo-gradient ``sum p_k (w_g - w_k)``; default sgd(1).
    persist_opt_state: keep each client's optimizer state (momentum) across rounds.
  """
  return build(model, client_tx, num_clients=num_clients, hooks=Hooks(), plugin=plugin,
               weight_mode=weight_mode, server_tx=server_tx,
               persist_opt_state=persist_opt_state)
