"""FedProx (Li et al. 2020): local loss ``L + (mu/2)·||w - w_g||^2``."""

import jax
import jax.numpy as jnp
import optax

from jaxlab.federated.algorithms.base import Hooks, build
from jaxlab.federated.types import FedAlgorithm, Model, Plugin


def _sq_dist(a, b):
  return sum(jnp.sum(jnp.square(x - y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def fedprox(model: Model, client_tx: optax.GradientTransformation, *, num_clients: int,
            mu: float = 0.1, prox_half: bool = True, plugin: Plugin | None = None,
            weight_mode: str = "n_k", server_tx: optax.GradientTransformation | None = None,
            persist_opt_state: bool = False) -> FedAlgorithm:
  """FedProx over trainable params (not BN stats); ``mu`` is the sweepable hparam "mu".

  Args:
    mu: proximal weight (FedFed/FedImpro use 0.1).
    prox_half: True for ``mu/2·||.||^2`` (paper); False for ``mu·||.||^2`` (Twin-sight PD).
    Other args as ``fedavg``.
  """
  scale = 0.5 if prox_half else 1.0
  hooks = Hooks(
    hparams={"mu": mu},
    client_init=lambda server, row: {"global": server.params, "mu": server.hparams["mu"]},
    penalty=lambda params, alg: scale * alg["mu"] * _sq_dist(params, alg["global"]),
  )
  return build(model, client_tx, num_clients=num_clients, hooks=hooks, plugin=plugin,
               weight_mode=weight_mode, server_tx=server_tx,
               persist_opt_state=persist_opt_state)
