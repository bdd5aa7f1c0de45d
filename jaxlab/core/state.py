"""TrainState: a pytree of arrays only, so it vmaps, donates and checkpoints."""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxlab.core.types import Params


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TrainState:
  """Everything that changes during training, and nothing else.

  Attributes:
    step: int32[] number of optimizer steps taken.
    params: the trainable parameters.
    opt_state: the optax state.
    model_state: non-trainable collections (e.g. ``{"batch_stats": ...}``).
    hparams: dynamic, sweepable scalars (``{"lr": f32[]}``), so a sweep is a vmap.
  """

  step: jax.Array
  params: Params
  opt_state: optax.OptState
  model_state: dict[str, Any]
  hparams: dict[str, jax.Array]

  @classmethod
  def create(
    cls,
    params: Params,
    tx: optax.GradientTransformation,
    model_state: dict[str, Any] | None = None,
    hparams: dict[str, jax.typing.ArrayLike] | None = None,
  ) -> "TrainState":
    """A fresh state at step 0."""
    return cls(
      step=jnp.zeros([], jnp.int32),
      params=params,
      opt_state=tx.init(params),
      model_state=dict(model_state or {}),
      hparams={k: jnp.asarray(v, jnp.float32) for k, v in (hparams or {}).items()},
    )

  def replace(self, **changes: Any) -> "TrainState":
    return dataclasses.replace(self, **changes)
