"""SCAFFOLD (Karimireddy et al. 2020), option II, persistent control variates c_k.

Local: ``y <- y - lr·(g(y) + c - c_k)``: the correction ``c - c_k`` is added to the
gradient *before* the client optimizer (before weight decay and momentum), so
with ``fl.client_sgd(lr, momentum=rho, weight_decay=wd)`` each step feeds
``d_t = g_t + (c - c_k) + wd·y_t`` into the momentum buffer ``m <- rho·m + d_t``
and moves ``y <- y - lr·m``. After ``K_k`` steps
``c_k+ = c_k - c + (1/K_k)·sum_t d_t``, which is the paper's option II
``c_k - c + (w_g - y)/(K_k·lr)`` for plain SGD (rho = 0) and, with momentum,
``sum_t d_t = (1 - rho)·(w_g - y)/lr + rho·(m_end - m_start)`` (exact for the
heavy-ball buffer); either way ``c_k+`` is the mean local gradient of the round.
Server: ``w_g += sum_k p_k (y_k - w_g)`` with ``p_k = 1/|S|`` (paper, default) or
``n_k/sum n`` (``weight_mode="n_k"``, the FedML lineage), and
``c += (|S|/K)·mean_k (c_k+ - c_k)`` ("paper") or ``c += mean_k (...)``
("sampled", as coded in the FedML lineage).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab.core.errors import ConfigError
from jaxlab.federated import aggregate as agg_lib
from jaxlab.federated.algorithms.base import Hooks, build
from jaxlab.federated.types import FedAlgorithm, Model, Plugin

_PROBE_HP = {"learning_rate": 0.1, "momentum": 0.5, "weight_decay": 0.01}


def check_sgd(client_tx: optax.GradientTransformation, who: str) -> bool:
  """Checks that ``client_tx`` is PyTorch-style SGD with an injected learning rate.

  Runs two updates on a probe and compares them with SGD (decay added before
  heavy-ball momentum; ``fl.client_sgd``). Raises a one-line ``ConfigError``
  otherwise (Adam, Nesterov, decay after momentum, no injected learning rate).

  Returns:
    Whether the optimizer keeps a momentum buffer (``"momentum"`` is injected).
  """
  p1 = {"w": jnp.array([0.5, -1.0, 2.0], jnp.float32)}
  hint = (f"{who} derives its update from plain SGD steps; use fl.client_sgd(learning_rate,"
          " momentum, weight_decay)")
  try:
    state = client_tx.init(p1)
    hp = dict(state.hyperparams)
  except AttributeError:
    raise ConfigError(f"{who}: the client optimizer has no injected learning_rate"
                      f" (optax.inject_hyperparams); {hint}") from None
  if "learning_rate" not in hp or set(hp) - set(_PROBE_HP):
    raise ConfigError(f"{who}: client optimizer hyper-parameters {sorted(hp)} are not SGD's"
                      f" (learning_rate, momentum, weight_decay); {hint}")
  val = {k: _PROBE_HP[k] for k in hp}
  state = state._replace(hyperparams={k: jnp.asarray(v, hp[k].dtype) for k, v in val.items()})
  lr, rho, wd = val["learning_rate"], val.get("momentum", 0.0), val.get("weight_decay", 0.0)
  g1, g2 = np.array([0.3, 0.7, -0.2]), np.array([-0.4, 0.1, 0.9])
  u1, state = client_tx.update({"w": jnp.asarray(g1, jnp.float32)}, state, p1)
  p2 = optax.apply_updates(p1, u1)
  u2, _ = client_tx.update({"w": jnp.asarray(g2, jnp.float32)}, state, p2)
  d1 = g1 + wd * np.asarray(p1["w"])
  m2 = rho * d1 + g2 + wd * np.asarray(p2["w"])
  if not (np.allclose(u1["w"], -lr * d1, rtol=1e-4, atol=1e-6)
          and np.allclose(u2["w"], -lr * m2, rtol=1e-4, atol=1e-6)):
    raise ConfigError(f"{who}: the client optimizer's updates are not SGD with heavy-ball"
                      f" momentum and decay before momentum; {hint}")
  return "momentum" in hp


def scaffold(model: Model, client_tx: optax.GradientTransformation, *, num_clients: int,
             server_scale: str = "paper", plugin: Plugin | None = None,
             weight_mode: str = "uniform", server_tx: optax.GradientTransformation | None = None,
             persist_opt_state: bool = False) -> FedAlgorithm:
  """SCAFFOLD; c_k live in the persistent client table (``row["alg"]``).

  Args:
    server_scale: ``"paper"`` (c += sum dc / K) or ``"sampled"`` (c += mean dc).
    weight_mode: ``"uniform"`` (paper: model deltas averaged uniformly over the
      sampled clients) or ``"n_k"`` (n_k-weighted, the FedML lineage and jaxlab's
      default before issue 15). Control deltas always follow ``server_scale``.
    client_tx: must be ``fl.client_sgd`` (SGD, optional momentum and decay; the
      client lr is ``hparams["learning_rate"]``); anything else is refused.
    persist_opt_state: with momentum, the row also keeps the round's starting
      momentum buffer (``row["alg"] = {"c_k", "m_start"}``), needed for ``c_k+``.
    Other args as ``fedavg``.
  """
  if server_scale not in ("paper", "sampled"):
    raise ConfigError(f"server_scale={server_scale!r}; use 'paper' or 'sampled'")
  momentum = check_sgd(client_tx, "scaffold")
  stash = momentum and persist_opt_state      # row = {"c_k", "m_start"}, else c_k
  zeros = lambda params: jax.tree.map(jnp.zeros_like, params)

  def persist_init(params):
    return {"c_k": zeros(params), "m_start": zeros(params)} if stash else zeros(params)

  def client_init(server, row):
    c_k = row["c_k"] if stash else row
    return {"corr": jax.tree.map(lambda c, ck: c - ck, server.alg, c_k), "c_k": c_k,
            "m_start": row["m_start"] if stash else ()}

  def final(server, carry, meta, delta):
    steps = carry.step.astype(jnp.float32)
    lr = server.hparams["learning_rate"]
    ok = steps > 0
    if momentum:   # sum_t d_t = (1 - rho)·delta/lr + rho·(m_end - m_start)
      rho = carry.opt_state.hyperparams["momentum"]
      m_end = optax.tree_utils.tree_get(carry.opt_state, "trace")
      m_start = carry.alg["m_start"] if stash else zeros(m_end)
      dsum = jax.tree.map(lambda d, me, ms: (1 - rho) * d / lr + rho * (me - ms),
                          delta, m_end, m_start)
    else:
      dsum = jax.tree.map(lambda d: d / lr, delta)
    def new_ck(ck, c, s):
      return jnp.where(ok, ck - c + s / jnp.where(ok, steps, 1.0), ck)
    c_new = jax.tree.map(new_ck, carry.alg["c_k"], server.alg, dsum)
    dc = jax.tree.map(lambda a, b: a - b, c_new, carry.alg["c_k"])
    row = {"c_k": c_new, "m_start": optax.tree_utils.tree_get(carry.opt_state, "trace")} \
      if stash else c_new
    return delta, dc, row

  def reduce(dc, p, raw):
    return agg_lib.masked_sum(dc, raw > 0)

  def finish(delta, dc_sum, tot):
    denom = num_clients if server_scale == "paper" else jnp.maximum(tot.count, 1.0)
    return delta, jax.tree.map(lambda s: s / denom, dc_sum)

  hooks = Hooks(
    server_init=zeros, persist_init=persist_init, client_init=client_init,
    correct=lambda g, alg: jax.tree.map(lambda a, b: a + b, g, alg["corr"]),
    final=final, reduce=reduce, finish=finish,
    server=lambda c, dc: jax.tree.map(lambda a, b: a + b, c, dc),
  )
  return build(model, client_tx, num_clients=num_clients, hooks=hooks, plugin=plugin,
               weight_mode=weight_mode, server_tx=server_tx,
               persist_opt_state=persist_opt_state)
