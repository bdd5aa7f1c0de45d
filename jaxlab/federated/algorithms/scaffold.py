"""SCAFFOLD (Karimireddy et al. 2020), option II, persistent control variates c_k.

Local: ``y <- y - lr·(g(y) + c - c_k)``. After ``K_k`` steps
``c_k+ = c_k - c + (w_g - y)/(K_k·lr)``; server ``w_g += sum p_k (y_k - w_g)``,
``c += (|S|/K)·mean_k (c_k+ - c_k)`` ("paper") or ``c += mean_k (...)`` ("sampled",
as coded in the FedML lineage).
"""

import jax
import jax.numpy as jnp
import optax

from jaxlab.core.errors import ConfigError
from jaxlab.federated import aggregate as agg_lib
from jaxlab.federated.algorithms.base import Hooks, build
from jaxlab.federated.types import FedAlgorithm, Model, Plugin


def scaffold(model: Model, client_tx: optax.GradientTransformation, *, num_clients: int,
             server_scale: str = "paper", plugin: Plugin | None = None,
             weight_mode: str = "n_k", server_tx: optax.GradientTransformation | None = None,
             persist_opt_state: bool = False) -> FedAlgorithm:
  """SCAFFOLD; c_k live in the persistent client table (``row["alg"]``).

  Args:
    server_scale: ``"paper"`` (c += sum dc / K) or ``"sampled"`` (c += mean dc).
    Other args as ``fedavg``; the client lr is ``hparams["learning_rate"]``.
  """
  if server_scale not in ("paper", "sampled"):
    raise ConfigError(f"server_scale={server_scale!r}; use 'paper' or 'sampled'")
  zeros = lambda params: jax.tree.map(jnp.zeros_like, params)

  def client_init(server, c_k):
    return {"corr": jax.tree.map(lambda c, ck: c - ck, server.alg, c_k), "c_k": c_k}

  def final(server, carry, meta, delta):
    steps = carry.step.astype(jnp.float32)
    denom = steps * server.hparams["learning_rate"]
    ok = steps > 0
    def new_ck(ck, c, d):
      return jnp.where(ok, ck - c + d / jnp.where(ok, denom, 1.0), ck)
    c_new = jax.tree.map(new_ck, carry.alg["c_k"], server.alg, delta)
    dc = jax.tree.map(lambda a, b: a - b, c_new, carry.alg["c_k"])
    return delta, dc, c_new

  def reduce(dc, p, raw):
    return agg_lib.masked_sum(dc, raw > 0)

  def finish(delta, dc_sum, tot):
    denom = num_clients if server_scale == "paper" else jnp.maximum(tot.count, 1.0)
    return delta, jax.tree.map(lambda s: s / denom, dc_sum)

  hooks = Hooks(
    server_init=zeros, persist_init=zeros, client_init=client_init,
    correct=lambda g, alg: jax.tree.map(lambda a, b: a + b, g, alg["corr"]),
    final=final, reduce=reduce, finish=finish,
    server=lambda c, dc: jax.tree.map(lambda a, b: a + b, c, dc),
  )
  return build(model, client_tx, num_clients=num_clients, hooks=hooks, plugin=plugin,
               weight_mode=weight_mode, server_tx=server_tx,
               persist_opt_state=persist_opt_state)
