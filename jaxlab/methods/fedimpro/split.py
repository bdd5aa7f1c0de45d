"""A classifier split into a low-level feature extractor and a high-level head.

FedImpro trains the high-level part on real features ``h = low(x)`` concatenated with
sampled features ``h_hat``. jaxlab's staged classifiers (MLP, CNN, CIFAR ResNet; their
``__call__`` takes ``start``/``stop`` stage bounds) and any module with two methods that
compose to ``__call__`` can be wrapped with :func:`from_flax`. Parameters stay one plain pytree: ``low`` and ``high`` read the
submodules they need.
"""

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxlab.core.errors import ConfigError

ModelState = dict[str, Any]


class SplitModel(NamedTuple):
  """Pure functions of a split classifier.

  Attributes:
    low: ``(params, model_state, x [B, ...], train) -> (h [B, ...], model_state)``.
    high: ``(params, model_state, h [M, ...], train) -> (logits [M, C], model_state)``.
    init: ``(key, x) -> variables`` (``{"params": ..., **model_state}``).
  """

  low: Callable[..., tuple[jax.Array, ModelState]]
  high: Callable[..., tuple[jax.Array, ModelState]]
  init: Callable[[jax.Array, jax.Array], dict[str, Any]]


def from_flax(
  module: Any,
  *,
  split_after: int | None = None,
  low_method: str = "low",
  high_method: str = "high",
  train_kwarg: str | None = "train",
  mutable: tuple[str, ...] = ("batch_stats",),
) -> SplitModel:
  """Wraps a Linen classifier cut into a low-level and a high-level part.

  Two kinds of module are accepted:

  * jaxlab's staged classifiers (``MLP``, ``CNN``, ``ResNet``): called with
    ``start=``/``stop=`` stage bounds. ``split_after=k`` makes ``low`` stages ``0..k``
    and ``high`` stages ``k+1..``; e.g. ResNet-18 ``split_after=2`` is "after layer2"
    (stage 0 is the stem), CNN ``split_after=0`` is after the first conv block.
  * any module with two methods (``low_method``, ``high_method``) that compose to its
    ``__call__`` (``split_after=None``).

  Args:
    module: the Linen module.
    split_after: the last stage of the low-level part (staged modules).
    low_method: name of the method mapping inputs to split features.
    high_method: name of the method mapping split features to logits.
    train_kwarg: name of the boolean train flag (None if the module has none).
    mutable: collections updated in train mode (BN statistics).

  Returns:
    A SplitModel.
  """
  if split_after is None:
    for name in (low_method, high_method):
      if not callable(getattr(module, name, None)):
        raise ConfigError(
          f"{type(module).__name__} has no method {name!r}; give split_after=<stage> for "
          "jaxlab's staged models (MLP, CNN, ResNet) or use a module with low/high methods"
        )
    low_kw, high_kw = {"method": low_method}, {"method": high_method}
  else:
    stages = getattr(module, "num_stages", None)
    if stages is not None and not 0 <= split_after < stages - 1:
      raise ConfigError(
        f"split_after={split_after} is out of range for {type(module).__name__} with "
        f"{stages} stages; use 0..{stages - 2} (the head stays in the high-level part)"
      )
    low_kw, high_kw = {"stop": split_after}, {"start": split_after + 1}

  def _call(extra: dict) -> Callable[..., tuple[jax.Array, ModelState]]:
    def fn(params, model_state, inputs, train=True):
      kwargs = dict(extra, **({train_kwarg: train} if train_kwarg else {}))
      variables = {"params": params, **model_state}
      if train and model_state:
        out, new = module.apply(variables, inputs, mutable=list(mutable), **kwargs)
        return out, {**model_state, **new}
      return module.apply(variables, inputs, **kwargs), model_state

    return fn

  def init(key, x):
    kwargs = {train_kwarg: False} if train_kwarg else {}
    return module.init(key, x, **kwargs)

  return SplitModel(low=_call(low_kw), high=_call(high_kw), init=init)


def feature_shape(split: SplitModel, variables: dict[str, Any], x: jax.Array) -> tuple[int, ...]:
  """Shape of one example's split features (without the batch axis)."""
  params = variables["params"]
  state = {k: v for k, v in variables.items() if k != "params"}
  h = jax.eval_shape(lambda p, s, xx: split.low(p, s, xx, False)[0], params, state, x)
  return tuple(h.shape[1:])


def feature_dim(shape: tuple[int, ...]) -> int:
  """D, the flattened feature size."""
  return math.prod(shape)


def flatten(h: jax.Array) -> jax.Array:
  """[B, ...] -> [B, D]."""
  return h.reshape(h.shape[0], -1)


def unflatten(h: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """[M, D] -> [M, *shape]."""
  return h.reshape((h.shape[0],) + tuple(shape))


def logits_split(
  split: SplitModel,
  params: Any,
  model_state: ModelState,
  x: jax.Array,
  h_fake: jax.Array | None = None,
  train: bool = True,
) -> tuple[jax.Array, jax.Array, ModelState]:
  """``high(concat(low(x), h_fake))``: one forward pass on real plus fake rows.

  Args:
    split: the SplitModel.
    params: parameters.
    model_state: BN statistics etc.
    x: [B, ...] real inputs.
    h_fake: optional f32[M, D] fake features (stop-gradient applied here too).
    train: train mode (updates BN statistics over all B + M rows, as the reference).

  Returns:
    logits [B + M, C], real features h [B, ...] (not detached), new model state.
  """
  h, model_state = split.low(params, model_state, x, train)
  hh = h
  if h_fake is not None:
    fake = unflatten(jax.lax.stop_gradient(h_fake).astype(h.dtype), h.shape[1:])
    hh = jnp.concatenate([h, fake], axis=0)
  logits, model_state = split.high(params, model_state, hh, train)
  return logits, h, model_state
