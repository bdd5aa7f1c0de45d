"""Phase 1, feature distillation, as a FedAlgorithm the engine's Engine/Sweep run.

Each local epoch is three passes over the client's data (``3·E·ceil(n_k/B)`` steps:
pass = (step // ceil(n_k/B)) mod 3, each pass with its own batch permutation):
classifier warm-up (trains g), VAE warm-up (trains the VAE, skipped by label-skew
clients), joint pass (trains both). One persistent PyTorch-style AdamW state per
client (``adamw``) with a per-pass trainable mask; the server takes the n_k-weighted
mean of the whole VAE + g, BN statistics included.

Why not a ``Plugin`` with ``owned`` params: the engine's owned optimizer is fresh
every round and trains every owned leaf at every step; FedFed needs a persistent
per-client AdamW and a per-step trainable mask (see docs/fedfed.md, "engine gaps").
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core.errors import ConfigError
from jaxlab.federated import schedule
from jaxlab.federated.types import ClientCarry, FedAlgorithm, ServerState
from jaxlab.methods.fedfed import adamw, losses
from jaxlab.methods.fedfed.config import SIGMA1, SIGMA2, FedFedConfig
from jaxlab.methods.fedfed.vae import CVAE

PROPERTY = "fedfed_property"   # FedData.extra key: int32[K] client property (host-computed)
CLASSIFIER = "classifier"      # the params subtree of g


def pass_mask(params: dict, on_g: jax.Array, on_vae: jax.Array):
  """Bool per leaf: g's leaves follow ``on_g``, every other leaf ``on_vae``."""
  return {k: jax.tree.map(lambda _: on_g if k == CLASSIFIER else on_vae, v)
          for k, v in params.items()}


def make_step(module: CVAE, cfg: FedFedConfig):
  """``client_step(carry, batch, key)`` of the three-pass local epoch."""
  passes = [lambda v, x, y, k, s, e: losses.classifier_pass(module, cfg, v, x, y, k, s),
            lambda v, x, y, k, s, e: losses.vae_pass(module, cfg, v, x, y, k, s),
            lambda v, x, y, k, s, e: losses.joint_pass(module, cfg, v, x, y, k, s,
                                                       e["s1"], e["s2"])]
  scales_table = jnp.asarray(losses.PROPERTY_SCALES if cfg.adaptive
                             else np.ones_like(losses.PROPERTY_SCALES))

  def client_step(carry: ClientCarry, batch: dict, key: jax.Array):
    e = carry.ext
    p = (carry.step // e["spe"]) % 3
    scales = scales_table[e["prop"]]

    def grads_of(i):
      def f(params):
        return passes[i]({"params": params, **carry.model_state}, batch["x"], batch["y"], key,
                         scales, e)
      return jax.value_and_grad(f, has_aux=True)(carry.params)

    (loss, bs), grads = jax.lax.switch(p, [lambda i=i: grads_of(i) for i in range(3)])
    label_skew = e["prop"] == 2
    skip = (p == 1) & label_skew                      # label-skew clients skip pass 2
    on_vae = (p != 0) & ~skip
    if cfg.quirk_frozen_vae_label_skew:
      on_vae = on_vae & ~label_skew
    mask = pass_mask(carry.params, p != 1, on_vae)
    params, opt = adamw.update(grads, carry.opt_state, carry.params, mask, lr=cfg.vae_lr,
                               weight_decay=cfg.vae_weight_decay)
    ms = jax.tree.map(lambda new, old: jnp.where(skip, old, new), {"batch_stats": bs},
                      carry.model_state)
    real = (~skip).astype(jnp.float32)
    m = {"loss": loss * real, **{f"loss_pass{i + 1}": loss * real * (p == i) for i in range(3)}}
    return carry._replace(params=params, model_state=ms, opt_state=opt, step=carry.step + 1), m

  return client_step


def make_algorithm(module: CVAE, cfg: FedFedConfig, sample_x: jax.Array) -> FedAlgorithm:
  """The phase-1 FedAlgorithm (hparams: the two noise sigmas)."""
  defaults = {SIGMA1: cfg.sigma1, SIGMA2: cfg.sigma2}

  def init(key, hparams=None, data=None) -> ServerState:
    unknown = set(hparams or {}) - set(defaults)
    if unknown:
      raise ConfigError(f"unknown FedFed phase-1 hyper-parameter(s) {sorted(unknown)};"
                        f" sweepable: {sorted(defaults)}")
    hp = {k: jnp.asarray((hparams or {}).get(k, v), jnp.float32) for k, v in defaults.items()}
    variables = module.init(key, sample_x)
    if data is None or PROPERTY not in data.extra:
      raise ConfigError(f"phase 1 needs FedData.extra[{PROPERTY!r}] (client properties);"
                        " build the data with fedfed.extra_fn")
    ext = {"property": jnp.asarray(data.extra[PROPERTY], jnp.int32)}
    return ServerState(variables["params"], {"batch_stats": variables["batch_stats"]}, (), (),
                       ext, hp, jnp.zeros([], jnp.int32))

  def persist_init(server):
    return {"opt": adamw.init(server.params)}

  def client_init(server, row, meta, key):
    del key
    ext = {"spe": jnp.maximum((meta.n + cfg.vae_batch - 1) // cfg.vae_batch, 1),
           "prop": server.ext["property"].at[meta.id].get(mode="fill", fill_value=0),
           "s1": server.hparams[SIGMA1], "s2": server.hparams[SIGMA2]}
    return ClientCarry(server.params, server.model_state, row["opt"], (), ext,
                       jnp.zeros([], jnp.int32))

  def client_final(server, carry, meta):
    del server, meta
    return {"params": carry.params, "model_state": carry.model_state}, {"opt": carry.opt_state}

  def aggregate(server, uploads, weights):
    del server
    p = weights / jnp.maximum(weights.sum(), 1e-12)
    return jax.tree.map(lambda a: jnp.tensordot(p, a, axes=1), uploads)

  def server_update(server, agg, key):
    del key
    return server._replace(params=agg["params"], model_state=agg["model_state"],
                           round=server.round + 1), {}

  def work(n, extra, batch_size, epochs):
    del extra
    return 3 * schedule.local_steps(n, batch_size, epochs), np.asarray(n, np.float32)

  return FedAlgorithm(init, persist_init, client_init, make_step(module, cfg), client_final,
                      aggregate, server_update, None, None, work)
