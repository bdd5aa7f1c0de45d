"""FedNova (Wang et al. 2020): normalised averaging of local updates.

``a_k = (tau_k - rho(1 - rho^tau_k)/(1 - rho))/(1 - rho)`` with client momentum
rho (= tau_k at rho = 0), ``d_k = (w_g - w_k)/a_k``,
``w_g <- w_g - (sum p_k a_k)·sum p_k d_k``. BN stats use the plain average.

``a_k`` assumes SGD whose momentum buffer starts at zero every round, so the
client optimizer must be ``fl.client_sgd`` and, with momentum,
``persist_opt_state=False``; anything else is refused with a ``ConfigError``.
"""

import jax
import jax.numpy as jnp
import optax

from jaxlab.core.errors import ConfigError
from jaxlab.federated.algorithms.base import Hooks, build
from jaxlab.federated.algorithms.scaffold import check_sgd
from jaxlab.federated.types import FedAlgorithm, Model, Plugin


def norm_factor(tau: jax.Array, rho: jax.Array) -> jax.Array:
  """FedNova's a_k for tau local steps with momentum rho (f32)."""
  tau = tau.astype(jnp.float32)
  rho = jnp.asarray(rho, jnp.float32)
  safe = jnp.where(rho > 0, rho, 0.5)
  with_mom = (tau - safe * (1 - safe ** tau) / (1 - safe)) / (1 - safe)
  return jnp.where(rho > 0, with_mom, tau)


def fednova(model: Model, client_tx: optax.GradientTransformation, *, num_clients: int,
            plugin: Plugin | None = None, weight_mode: str = "n_k",
            server_tx: optax.GradientTransformation | None = None,
            persist_opt_state: bool = False) -> FedAlgorithm:
  """FedNova on params; rho is ``hparams["momentum"]`` (0 if the optimizer has none)."""
  if check_sgd(client_tx, "fednova") and persist_opt_state:
    raise ConfigError("fednova: persist_opt_state=True carries the momentum buffer across"
                      " rounds, which FedNova's a_k does not model; use persist_opt_state=False"
                      " or momentum=0")

  def final(server, carry, meta, delta):
    a = norm_factor(carry.step, server.hparams.get("momentum", 0.0))
    ok = a > 0
    scaled = jax.tree.map(lambda d: jnp.where(ok, d / jnp.where(ok, a, 1.0), 0.0), delta)
    return scaled, a, ()

  def finish(delta, tau_eff, tot):
    return jax.tree.map(lambda d: tau_eff * d, delta), tau_eff

  hooks = Hooks(final=final, reduce=lambda a, p, raw: jnp.dot(p, a), finish=finish,
                server=lambda alg, tau_eff: alg)
  return build(model, client_tx, num_clients=num_clients, hooks=hooks, plugin=plugin,
               weight_mode=weight_mode, server_tx=server_tx,
               persist_opt_state=persist_opt_state)
