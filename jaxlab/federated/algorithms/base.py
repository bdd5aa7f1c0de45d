"""One builder shared by FedAvg, FedProx, SCAFFOLD and FedNova.

A baseline differs from FedAvg only through a few ``Hooks``; the plug-in
(``types.Plugin``) supplies the local loss and any method state.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxlab.core.errors import ConfigError
from jaxlab.federated import aggregate as agg_lib
from jaxlab.federated import plugins
from jaxlab.federated.types import (ClientCarry, ClientMeta, FedAlgorithm, Model, Plugin,
                                    ServerState)


def client_sgd(learning_rate: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0,
               *, sweepable: tuple[str, ...] = ()) -> optax.GradientTransformation:
  """PyTorch-style SGD (decay added before momentum) with injectable hyper-parameters.

  ``learning_rate`` is always a swept scalar (``ServerState.hparams``); so are
  ``momentum`` and ``weight_decay`` when non-zero or named in ``sweepable``. A
  momentum or decay of exactly 0 that is not ``sweepable`` is left out of the
  optimizer: no momentum buffer and no decay pass over the params (each costs a
  full read and write of the params per step; ~1.4x on the FedAvg CNN's step).
  """
  unknown = set(sweepable) - {"learning_rate", "momentum", "weight_decay"}
  if unknown:
    raise ConfigError(f"sweepable={sweepable!r}: unknown {sorted(unknown)}; choose from"
                      " 'learning_rate', 'momentum', 'weight_decay'")
  use_mom = momentum != 0.0 or "momentum" in sweepable
  use_wd = weight_decay != 0.0 or "weight_decay" in sweepable

  def make(learning_rate, momentum=None, weight_decay=None):
    parts = [optax.add_decayed_weights(weight_decay)] if use_wd else []
    return optax.chain(*parts, optax.sgd(learning_rate, momentum=momentum))

  kw = {"learning_rate": learning_rate}
  if use_mom:
    kw["momentum"] = momentum
  if use_wd:
    kw["weight_decay"] = weight_decay
  return optax.inject_hyperparams(make)(**kw)


def _zero():
  return ()


class Hooks(NamedTuple):
  """What a baseline adds to FedAvg (all pure; defaults are FedAvg's)."""
  hparams: dict = {}
  server_init: Callable = lambda params: ()
  persist_init: Callable = lambda params: ()
  client_init: Callable = lambda server, row: ()
  penalty: Callable = lambda params, alg: 0.0            # added to the plug-in loss
  correct: Callable = lambda grads, alg: grads           # gradient correction
  final: Callable = lambda server, carry, meta, delta: (delta, (), ())  # delta, up, row
  reduce: Callable = lambda ups, p, raw: ()       # alg uploads -> sums (linear in clients)
  finish: Callable = lambda delta, sums, tot: (delta, ())   # -> delta, alg aggregate
  server: Callable = lambda alg, alg_agg: alg


def _tx_hparams(opt_state: Any) -> dict:
  return dict(getattr(opt_state, "hyperparams", {}) or {})


def _set_hparams(opt_state: Any, hparams: dict) -> Any:
  hp = _tx_hparams(opt_state)
  if not hp:
    return opt_state
  new = {k: jnp.asarray(hparams[k], v.dtype) if k in hparams else v for k, v in hp.items()}
  return opt_state._replace(hyperparams=new)


def build(model: Model, client_tx: optax.GradientTransformation, *, num_clients: int,
          hooks: Hooks, plugin: Plugin | None = None, weight_mode: str = "n_k",
          server_tx: optax.GradientTransformation | None = None,
          persist_opt_state: bool = False) -> FedAlgorithm:
  """Builds a FedAlgorithm from a model, a client optimizer and baseline hooks."""
  if weight_mode not in ("n_k", "uniform"):
    raise ConfigError(f"weight_mode={weight_mode!r}; use 'n_k' or 'uniform'")
  if num_clients < 1:
    raise ConfigError(f"num_clients={num_clients} must be >= 1")
  plugin = plugin or plugins.supervised(model)
  server_tx = server_tx or optax.sgd(1.0)

  def init(key: jax.Array, hparams: dict | None = None) -> ServerState:
    kp, ke = jax.random.split(key)
    params, model_state = model.init(kp)
    hp = {k: jnp.asarray(v, jnp.float32) for k, v in _tx_hparams(client_tx.init(params)).items()}
    hp.update({k: jnp.asarray(v, jnp.float32) for k, v in hooks.hparams.items()})
    for k, v in (hparams or {}).items():
      if k not in hp:
        raise ConfigError(f"unknown hyper-parameter {k!r}; known: {sorted(hp)}")
      hp[k] = jnp.asarray(v, jnp.float32)
    return ServerState(params, model_state, server_tx.init(params), hooks.server_init(params),
                       plugin.server_init(ke), hp, jnp.zeros([], jnp.int32))

  def persist_init(server: ServerState) -> dict:
    opt = client_tx.init(server.params) if persist_opt_state else ()
    return {"opt": opt, "alg": hooks.persist_init(server.params),
            "ext": plugin.persist_init(server.ext)}

  def client_init(server, row, meta: ClientMeta, key) -> ClientCarry:
    opt = row["opt"] if persist_opt_state else client_tx.init(server.params)
    opt = _set_hparams(opt, server.hparams)
    return ClientCarry(server.params, server.model_state, opt,
                       hooks.client_init(server, row["alg"]),
                       plugin.client_init(server, row["ext"], meta, key),
                       jnp.zeros([], jnp.int32))

  def client_step(carry: ClientCarry, batch, key):
    def total(params):
      loss, aux = plugin.loss(params, carry.model_state, carry.ext, batch, key)
      return loss + hooks.penalty(params, carry.alg), (loss, aux)
    (_, (loss, (ms, ext, m))), grads = jax.value_and_grad(total, has_aux=True)(carry.params)
    grads = hooks.correct(grads, carry.alg)
    updates, opt = client_tx.update(grads, carry.opt_state, carry.params)
    params = optax.apply_updates(carry.params, updates)
    return ClientCarry(params, ms, opt, carry.alg, ext, carry.step + 1), {"loss": loss, **m}

  def client_final(server, carry: ClientCarry, meta: ClientMeta):
    delta = jax.tree.map(lambda g, l: g - l, server.params, carry.params)
    delta, alg_up, alg_row = hooks.final(server, carry, meta, delta)
    ext_up, ext_row = plugin.client_final(server, carry, meta)
    upload = {"delta": delta, "model_state": carry.model_state, "alg": alg_up, "ext": ext_up}
    row = {"opt": carry.opt_state if persist_opt_state else (), "alg": alg_row, "ext": ext_row}
    return upload, row

  def reduce(server, uploads: dict, weights: jax.Array, tot: agg_lib.Totals) -> agg_lib.Partial:
    del server
    p = agg_lib.normalise_with(weights, tot, weight_mode)
    sums = {"delta": agg_lib.weighted_mean(uploads["delta"], p),
            "model_state": agg_lib.weighted_mean(uploads["model_state"], p),
            "alg": hooks.reduce(uploads["alg"], p, weights)}
    return agg_lib.Partial(sums, {"ext": uploads["ext"], "p": p})

  def finish(server, part: agg_lib.Partial, tot: agg_lib.Totals) -> dict:
    del server
    delta, alg = hooks.finish(part.sums["delta"], part.sums["alg"], tot)
    return {"delta": delta, "model_state": part.sums["model_state"], "alg": alg,
            "ext": part.stacked["ext"], "p": part.stacked["p"]}

  def aggregate(server, uploads: dict, weights: jax.Array) -> dict:
    tot = agg_lib.totals(weights)
    return finish(server, reduce(server, uploads, weights, tot), tot)

  def server_update(server: ServerState, agg: dict, key):
    updates, opt = server_tx.update(agg["delta"], server.opt_state, server.params)
    params = optax.apply_updates(server.params, updates)
    ext, m = plugin.server_update(server, agg["ext"], agg["p"], key)
    new = ServerState(params, agg["model_state"], opt, hooks.server(server.alg, agg["alg"]),
                      ext, server.hparams, server.round + 1)
    return new, m

  return FedAlgorithm(init, persist_init, client_init, client_step, client_final,
                      aggregate, server_update, reduce, finish)
