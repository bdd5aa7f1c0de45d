"""The masked full-tree step, kept for sharded (multi-device) pinpoint tuning.

Every study arm runs through ``jaxlab.tuning.loop`` (head slices, start_layer,
vmapped sweeps). This module keeps only ``make_step``: one step on the *full*
parameter tree under ``tuning.pinpoint`` masks with the decoder's sharding rules
applied (``decoder_mesh.constrain_params``), which tests/models/sharding_test.py
uses to check that a sharded step equals the unsharded one. Its ``loss_mask``
follows the *input* convention (``loss_mask[:, i]``: position i predicts
``ids[:, i+1]``).
"""

import functools

import jax
import jax.numpy as jnp
import optax

from jaxlab.core.state import TrainState
from jaxlab.models import decoder as dec
from jaxlab.models import decoder_mesh
from jaxlab.tuning import lora as lora_lib

def next_token_loss(logits: jax.Array, ids: jax.Array, loss_mask: jax.Array) -> jax.Array:
  """Mean cross-entropy where ``loss_mask[:, i]`` says position i predicts ``ids[:, i+1]``."""
  lp = jax.nn.log_softmax(logits[:, :-1].astype(jnp.float32), -1)
  nll = -jnp.take_along_axis(lp, ids[:, 1:, None], -1)[..., 0]
  w = loss_mask[:, :-1].astype(jnp.float32)
  return jnp.sum(nll * w) / jnp.maximum(jnp.sum(w), 1.0)


def make_step(cfg: dec.DecoderConfig, tx: optax.GradientTransformation, *,
              lora_scale: float = 2.0):
  """``step(state, batch, key) -> (state, metrics)``.

  For LoRA, ``state.params`` are the factors and ``state.model_state["base"]`` the
  frozen base params (state, not a closure constant, so XLA never folds 500 MB).
  """

  def loss_fn(trainable, base, batch):
    params = trainable if base is None else lora_lib.lora_merge(base, trainable, scale=lora_scale)
    params = decoder_mesh.constrain_params(cfg, params)  # the rules table, under jax.set_mesh
    logits, _ = dec.apply(cfg, params, batch["ids"], batch["mask"])
    return next_token_loss(logits, batch["ids"], batch["loss_mask"])

  @functools.partial(jax.jit, donate_argnums=0)
  def step(state: TrainState, batch: dict, key: jax.Array):
    del key
    base = state.model_state.get("base")
    loss, grads = jax.value_and_grad(loss_fn)(state.params, base, batch)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), {"loss": loss}

  return step
