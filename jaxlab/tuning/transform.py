"""Pinpoint tuning as optax transforms: element-wise masks around any optimizer.

``optax.masked`` / ``freeze`` act per leaf only; head tuning needs slices of a leaf.
``pinpoint(tx, masks)`` is ``chain(mask_updates(masks), tx, mask_updates(masks))``:
the first mask keeps Adam's moments of frozen entries at zero, the last one runs
*after* the optimizer so decoupled weight decay cannot move a frozen entry either
(frozen entries stay bit-identical).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax


class MaskState(NamedTuple):
  """Stateless; kept as a NamedTuple so opt states stay uniform pytrees."""


def mask_updates(masks: Any) -> optax.GradientTransformation:
  """Zeroes every update entry where ``masks`` (broadcastable bool leaves) is False.

  Args:
    masks: a tree like the params whose leaves broadcast to each parameter.

  Returns:
    A stateless GradientTransformation. Uses ``where`` (not multiply), so a
    non-finite update on a frozen entry still leaves it untouched.
  """
  masks = jax.tree.map(np.asarray, masks)

  def init(params):
    del params
    return MaskState()

  def update(updates, state, params=None):
    del params
    out = jax.tree.map(
      lambda u, m: u if (m.ndim == 0 and bool(m)) else jnp.where(m, u, jnp.zeros((), u.dtype)),
      updates, masks)
    return out, state

  return optax.GradientTransformation(init, update)


def leaf_any(masks: Any) -> Any:
  """Per-leaf masks: True for every entry of a leaf that has any trainable entry."""
  return jax.tree.map(lambda m: np.asarray(np.asarray(m).any()), masks)


def pinpoint(
  tx: optax.GradientTransformation, masks: Any, *, decay_frozen_slices: bool = False,
) -> optax.GradientTransformation:
  """Wraps an optimizer so only the masked entries ever change.

  Args:
    tx: any optax optimizer (e.g. ``optax.adamw(lr, weight_decay=0.1)``).
    masks: mask tree from ``head_masks`` / ``full_masks``.
    decay_frozen_slices: reproduce SPT's released behaviour, where AdamW's weight
      decay still shrinks the frozen slices of re-enabled matrices (the post-mask
      becomes per-leaf); the default freezes exactly.

  Returns:
    A GradientTransformation.
  """
  post = leaf_any(masks) if decay_frozen_slices else masks
  return optax.chain(mask_updates(masks), tx, mask_updates(post))


def masked_adamw(
  learning_rate: Any, masks: Any, *, weight_decay: float = 0.0, decay_frozen_slices: bool = False,
  **kwargs: Any,
) -> optax.GradientTransformation:
  """``pinpoint(optax.adamw(...), masks)``, the SPT optimizer."""
  tx = optax.adamw(learning_rate, weight_decay=weight_decay, **kwargs)
  return pinpoint(tx, masks, decay_frozen_slices=decay_frozen_slices)
