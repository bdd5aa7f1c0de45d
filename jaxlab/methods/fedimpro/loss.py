"""The FedImpro local loss: real CE plus weighted CE on sampled features (Eq. 5)."""

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxlab.methods.fedimpro.fake import WeightSchedule
from jaxlab.methods.fedimpro.split import ModelState, SplitModel, flatten, logits_split


def combine(
  ce_real: jax.Array, ce_fake: jax.Array, w_fake: jax.Array, schedule: WeightSchedule
) -> jax.Array:
  """Real and fake cross-entropies combined as the schedule says.

  ``half_half`` is ``(1 - w) real + w fake``; every other schedule ``real + w fake``.
  """
  if schedule == "half_half":
    return (1.0 - w_fake) * ce_real + w_fake * ce_fake
  return ce_real + w_fake * ce_fake


def fedimpro_loss(
  params: Any,
  model_state: ModelState,
  split: SplitModel,
  x: jax.Array,
  y: jax.Array,
  h_fake: jax.Array | None,
  y_fake: jax.Array | None,
  w_fake: jax.Array,
  schedule: WeightSchedule = "linear_unclamped",
) -> tuple[jax.Array, tuple[ModelState, jax.Array, dict[str, jax.Array]]]:
  """``CE(high(low(x)), y) + w_fake CE(high(h_fake), y_fake)``.

  Args:
    params: model parameters (differentiated).
    model_state: BN statistics.
    split: the SplitModel.
    x: [B, ...] real inputs.
    y: int[B] labels.
    h_fake: f32[M, D] sampled features (constants: gradients reach only ``high``);
      None (or M = 0) trains on real rows only, i.e. the base algorithm's loss.
    y_fake: int[M] their labels (None with ``h_fake``).
    w_fake: f32[] fake-loss weight.
    schedule: the weight schedule name (``half_half`` changes the combination).

  Returns:
    loss f32[], and aux ``(model_state, h_real f32[B, D] detached, metrics)``.
  """
  if h_fake is not None and h_fake.shape[0] == 0:
    h_fake = None
  logits, h, model_state = logits_split(split, params, model_state, x, h_fake, True)
  b = x.shape[0]
  ce_real = optax.softmax_cross_entropy_with_integer_labels(logits[:b], y).mean()
  if h_fake is None:
    ce_fake = jnp.zeros_like(ce_real)
  else:
    ce_fake = optax.softmax_cross_entropy_with_integer_labels(logits[b:], y_fake).mean()
  loss = combine(ce_real, ce_fake, w_fake, schedule)
  acc = jnp.mean(jnp.argmax(logits[:b], -1) == y)
  metrics = {"loss": loss, "ce_real": ce_real, "ce_fake": ce_fake, "w_fake": w_fake,
             "train_acc": acc}
  return loss, (model_state, jax.lax.stop_gradient(flatten(h)), metrics)
