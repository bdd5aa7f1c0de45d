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


def _set_hparams(opt_state: Any, hparams: dict, prefix: str = "") -> Any:
  hp = _tx_hparams(opt_state)
  if not hp:
    return opt_state
  new = {k: jnp.asarray(hparams[prefix + k], v.dtype) if prefix + k in hparams else v
         for k, v in hp.items()}
  return opt_state._replace(hyperparams=new)


SHAPE_CHANGING = ("algorithm", "model", "batch_size", "local_epochs")


def _merge_hparams(parts: list[tuple[str, dict]]) -> dict:
  hp = {}
  for where, d in parts:
    for k, v in d.items():
      if k in hp:
        raise ConfigError(f"hyper-parameter {k!r} of the {where} clashes with another of"
                          " the same name; rename one of them")
      hp[k] = jnp.asarray(v, jnp.float32)
  return hp


def _owned_weights(owned_spec, meta: ClientMeta, params):
  """Per-leaf raw weights f32[] for the owned params (a prefix tree broadcast)."""
  w = meta.weight if owned_spec.weight is None else owned_spec.weight(meta)
  return jax.tree.map(lambda wi, sub: jax.tree.map(lambda _: jnp.asarray(wi, jnp.float32), sub),
                      w, params)


def build(model: Model, client_tx: optax.GradientTransformation, *, num_clients: int,
          hooks: Hooks, plugin: Plugin | None = None, weight_mode: str = "n_k",
          server_tx: optax.GradientTransformation | None = None,
          persist_opt_state: bool = False) -> FedAlgorithm:
  """Builds a FedAlgorithm from a model, a client optimizer and baseline hooks.

  Swept scalars (``ServerState.hparams``): the client optimizer's injected
  hyper-parameters (``learning_rate``, ``momentum``, ``weight_decay``), the
  baseline's (``hooks.hparams``, e.g. FedProx ``mu``), the server optimizer's with a
  ``server_`` prefix (default ``server_learning_rate`` = 1), the plug-in's
  (``plugin.hparams``) and its owned optimizer's with an ``owned_`` prefix.
  """
  if weight_mode not in ("n_k", "uniform"):
    raise ConfigError(f"weight_mode={weight_mode!r}; use 'n_k' or 'uniform'")
  if num_clients < 1:
    raise ConfigError(f"num_clients={num_clients} must be >= 1")
  plugin = plugin or plugins.supervised(model)
  server_tx = server_tx or optax.inject_hyperparams(optax.sgd)(learning_rate=1.0)
  owned_spec = plugin.owned

  def init(key: jax.Array, hparams: dict | None = None, data=None) -> ServerState:
    kp, ke = jax.random.split(key)
    params, model_state = model.init(kp)
    owned = owned_spec.init(jax.random.fold_in(key, 7)) if owned_spec else ()
    pre = lambda prefix, d: {prefix + k: v for k, v in d.items()}
    hp = _merge_hparams([
      ("client optimizer", _tx_hparams(client_tx.init(params))),
      ("algorithm", dict(hooks.hparams)),
      ("server optimizer", pre("server_", _tx_hparams(server_tx.init(params)))),
      ("plug-in", dict(plugin.hparams)),
      ("owned optimizer", pre("owned_", _tx_hparams(owned_spec.tx.init(owned))
                              if owned_spec else {}))])
    for k, v in (hparams or {}).items():
      if k not in hp:
        raise ConfigError(
          f"unknown hyper-parameter {k!r}; sweepable: {sorted(hp)} (shape-changing choices"
          f" such as {', '.join(SHAPE_CHANGING)} need a separate build and compile)")
      hp[k] = jnp.asarray(v, jnp.float32)
    return ServerState(params, model_state, _set_hparams(server_tx.init(params), hp, "server_"),
                       hooks.server_init(params), plugin.server_init(ke, data), hp,
                       jnp.zeros([], jnp.int32), owned)

  def persist_init(server: ServerState) -> dict:
    opt = client_tx.init(server.params) if persist_opt_state else ()
    return {"opt": opt, "alg": hooks.persist_init(server.params),
            "ext": plugin.persist_init(server.ext)}

  def client_init(server, row, meta: ClientMeta, key) -> ClientCarry:
    opt = row["opt"] if persist_opt_state else client_tx.init(server.params)
    opt = _set_hparams(opt, server.hparams)
    owned_opt = (_set_hparams(owned_spec.tx.init(server.owned), server.hparams, "owned_")
                 if owned_spec else ())
    return ClientCarry(server.params, server.model_state, opt,
                       hooks.client_init(server, row["alg"]),
                       plugin.client_init(server, row["ext"], meta, key),
                       jnp.zeros([], jnp.int32), server.owned, owned_opt)

  def client_step(carry: ClientCarry, batch, key):
    def total(trained):
      params = trained["model"] if owned_spec else trained
      loss, aux = plugin.loss(trained, carry.model_state, carry.ext, batch, key)
      return loss + hooks.penalty(params, carry.alg), (loss, aux)
    trained = {"model": carry.params, "owned": carry.owned} if owned_spec else carry.params
    (_, (loss, (ms, ext, m))), grads = jax.value_and_grad(total, has_aux=True)(trained)
    owned, owned_opt = carry.owned, carry.owned_opt
    if owned_spec:
      grads, g_owned = grads["model"], grads["owned"]
      up, owned_opt = owned_spec.tx.update(g_owned, owned_opt, owned)
      owned = optax.apply_updates(owned, up)
    grads = hooks.correct(grads, carry.alg)
    updates, opt = client_tx.update(grads, carry.opt_state, carry.params)
    params = optax.apply_updates(carry.params, updates)
    new = ClientCarry(params, ms, opt, carry.alg, ext, carry.step + 1, owned, owned_opt)
    if plugin.post_step is not None:
      new = plugin.post_step(new)
    return new, {"loss": loss, **m}

  def client_final(server, carry: ClientCarry, meta: ClientMeta):
    delta = jax.tree.map(lambda g, l: g - l, server.params, carry.params)
    delta, alg_up, alg_row = hooks.final(server, carry, meta, delta)
    ext_up, ext_row = plugin.client_final(server, carry, meta)
    upload = {"delta": delta, "model_state": carry.model_state, "alg": alg_up, "ext": ext_up}
    if owned_spec:
      upload["owned"] = {"params": carry.owned,
                         "w": _owned_weights(owned_spec, meta, carry.owned)}
    row = {"opt": carry.opt_state if persist_opt_state else (), "alg": alg_row, "ext": ext_row}
    return upload, row

  def reduce(server, uploads: dict, weights: jax.Array, tot: agg_lib.Totals) -> agg_lib.Partial:
    p = agg_lib.normalise_with(weights, tot, weight_mode)
    sums = {"delta": agg_lib.weighted_mean(uploads["delta"], p),
            "model_state": agg_lib.weighted_mean(uploads["model_state"], p),
            "alg": hooks.reduce(uploads["alg"], p, weights)}
    stacked = {"p": p}
    if plugin.reduce is not None:
      sums["ext"] = plugin.reduce(server, uploads["ext"], p, tot)
    else:
      stacked["ext"] = uploads["ext"]
    if owned_spec:
      o = uploads["owned"]
      real = (weights > 0).astype(jnp.float32)
      w = jax.tree.map(lambda a: a * real, o["w"])
      sums["owned"] = {"num": jax.tree.map(lambda th, wi: jnp.tensordot(wi, th, axes=1),
                                           o["params"], w),
                       "den": jax.tree.map(lambda wi: wi.sum(), w)}
    return agg_lib.Partial(sums, stacked)

  def finish(server, part: agg_lib.Partial, tot: agg_lib.Totals) -> dict:
    delta, alg = hooks.finish(part.sums["delta"], part.sums["alg"], tot)
    ext = (plugin.finish(server, part.sums["ext"], tot) if plugin.reduce is not None
           else part.stacked["ext"])
    out = {"delta": delta, "model_state": part.sums["model_state"], "alg": alg,
           "ext": ext, "p": part.stacked["p"]}
    if owned_spec:
      o = part.sums["owned"]
      out["owned"] = jax.tree.map(
        lambda num, den, old: jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), old),
        o["num"], o["den"], server.owned)
    return out

  def aggregate(server, uploads: dict, weights: jax.Array) -> dict:
    tot = agg_lib.totals(weights)
    return finish(server, reduce(server, uploads, weights, tot), tot)

  def server_update(server: ServerState, agg: dict, key):
    opt_state = _set_hparams(server.opt_state, server.hparams, "server_")
    updates, opt = server_tx.update(agg["delta"], opt_state, server.params)
    params = optax.apply_updates(server.params, updates)
    ext, m = plugin.server_update(server, agg["ext"], agg["p"], key)
    new = ServerState(params, agg["model_state"], opt, hooks.server(server.alg, agg["alg"]),
                      ext, server.hparams, server.round + 1, agg.get("owned", server.owned))
    return new, m

  return FedAlgorithm(init, persist_init, client_init, client_step, client_final,
                      aggregate, server_update, reduce, finish, plugin.work)
