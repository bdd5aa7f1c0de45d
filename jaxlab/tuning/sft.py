"""Supervised fine-tuning of a decoder under one of the tuning arms.

Arms (spec e.6 baselines): ``heads`` (pinpoint masks), ``full``, ``lora`` (optionally on
selected heads). Every arm goes through the same jitted step; the trainable tree is
the params (heads/full, masked by ``pinpoint``) or the LoRA factors.
"""

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab.core.errors import ConfigError, NonFiniteError
from jaxlab.core.state import TrainState
from jaxlab.models import decoder as dec
from jaxlab.models import decoder_mesh
from jaxlab.tuning import lora as lora_lib
from jaxlab.tuning import transform


@dataclasses.dataclass(frozen=True, kw_only=True)
class Arm:
  """One tuning arm.

  Attributes:
    name: label in results.
    kind: "heads" (masks over params), "full", or "lora".
    masks: mask tree (heads) or LoRA mask tree (lora restricted to heads), else None.
    lora_rank: LoRA rank.
    lora_scale: alpha / rank.
  """

  name: str
  kind: str = "heads"
  masks: Any = None
  lora_rank: int = 16
  lora_scale: float = 2.0

  def __post_init__(self):
    if self.kind not in ("heads", "full", "lora"):
      raise ConfigError(f"Arm.kind={self.kind!r}; use 'heads', 'full' or 'lora'.")
    if self.kind == "heads" and self.masks is None:
      raise ConfigError("a 'heads' arm needs masks (jaxlab.tuning.head_masks).")


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


def finetune(
  cfg: dec.DecoderConfig, params: dict, data: dict[str, np.ndarray], arm: Arm, *,
  steps: int, batch_size: int, lr: float, weight_decay: float = 0.0, seed: int = 0,
  callback=None,
) -> tuple[dict, list[float]]:
  """Trains one arm; returns (tuned params, merged for LoRA) and the loss history.

  Args:
    cfg, params: the base model (not modified).
    data: ``ids``, ``mask``, ``loss_mask`` arrays ``[n, t]``.
    arm: the arm.
    steps, batch_size, lr, weight_decay: AdamW settings (constant lr).
    seed: data order and LoRA init.
    callback: optional ``callback(step, loss)`` per step (progress bars, logs).
  """
  key = jax.random.key(seed)
  if arm.kind == "lora":
    trainable = lora_lib.lora_init(key, params, rank=arm.lora_rank)
    if arm.masks is not None:
      trainable = lora_lib.restrict_lora(trainable, arm.masks)
    base = params
  else:
    trainable, base = params, None
  inner = optax.adamw(lr, weight_decay=weight_decay)
  tx = inner if arm.masks is None else transform.pinpoint(inner, arm.masks)
  step = make_step(cfg, tx, lora_scale=arm.lora_scale)
  # Copy so donation never invalidates the caller's params.
  copy = lambda t: jax.tree.map(jnp.array, t)
  state = TrainState.create(copy(trainable), tx,
                            model_state=None if base is None else {"base": copy(base)})
  n = data["ids"].shape[0]
  rng = np.random.default_rng(seed)
  history = []
  for i in range(steps):
    idx = rng.choice(n, size=batch_size, replace=n < batch_size)
    batch = {k: jnp.asarray(v[idx]) for k, v in data.items() if k in ("ids", "mask", "loss_mask")}
    state, m = step(state, batch, jax.random.fold_in(key, i))
    loss = float(m["loss"])
    if not np.isfinite(loss):
      raise NonFiniteError(f"loss became {loss} at step {i} of arm {arm.name}; lower the lr.")
    history.append(loss)
    if callback is not None:
      callback(i, loss)
  tuned = state.params
  if arm.kind == "lora":
    tuned = lora_lib.lora_merge(params, tuned, scale=arm.lora_scale)
  return tuned, history


def trainable_count(params: dict, arm: Arm, n_lora: int | None = None) -> int:
  """Tuned-parameter count of an arm (LoRA: its factor entries, masked)."""
  from jaxlab.tuning import masks as masks_lib  # noqa: PLC0415

  if arm.kind == "full":
    return int(sum(x.size for x in jax.tree.leaves(params)))
  if arm.kind == "heads":
    return masks_lib.count_trainable(params, arm.masks)
  lora = lora_lib.lora_init(jax.random.key(0), params, rank=arm.lora_rank)
  return lora_lib.lora_param_count(lora, arm.masks) if n_lora is None else n_lora
