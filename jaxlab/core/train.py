"""Pure train steps and the host loop that drives them.

A step is ``step(state, batch, key) -> (state, metrics)``: pure, jitted once
with the state donated, its randomness ``fold_in(key, state.step)``. The host
loop `fit` adds what a long run needs: a progress bar, periodic evaluation,
JSONL metrics, orbax checkpoints, a NaN/inf guard and exact resume.
"""

import pathlib
from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab.core import rng
from jaxlab.core.checkpoint import Checkpointer
from jaxlab.core.errors import NonFiniteError
from jaxlab.core.metrics import MetricsWriter
from jaxlab.core.progress import progress
from jaxlab.core.state import TrainState
from jaxlab.core.types import Batch, Metrics, Params


class LossFn(Protocol):
  def __call__(
    self, params: Params, model_state: dict, batch: Batch, key: jax.Array
  ) -> tuple[jax.Array, tuple[dict, Metrics]]:
    """Returns ``(loss, (new_model_state, metrics))``."""


StepFn = Callable[[TrainState, Batch, jax.Array], tuple[TrainState, Metrics]]


def make_step(loss_fn: LossFn, tx: optax.GradientTransformation) -> StepFn:
  """A pure step: gradients of ``loss_fn``, an optax update, step + 1."""

  def step(state: TrainState, batch: Batch, key: jax.Array):
    key = rng.step_key(key, state.step)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (loss, (model_state, aux)), grads = grad_fn(
      state.params, state.model_state, batch, key
    )
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new = state.replace(
      step=state.step + 1, params=params, opt_state=opt_state, model_state=model_state
    )
    return new, {"loss": loss, **aux}

  return step


def jit_step(
  step: StepFn, state_sharding: Any = None, batch_sharding: Any = None
) -> StepFn:
  """Jits ``step`` once, donating the state, with optional shardings."""
  if state_sharding is None:
    return jax.jit(step, donate_argnums=0)
  return jax.jit(
    step,
    in_shardings=(state_sharding, batch_sharding, None),
    out_shardings=(state_sharding, None),
    donate_argnums=0,
  )


@jax.jit
def all_finite(tree: Any) -> jax.Array:
  """True when every floating leaf of ``tree`` is finite."""
  leaves = [
    jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
    if jnp.issubdtype(jnp.result_type(x), jnp.inexact)
  ]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _row(metrics: Metrics) -> dict[str, float]:
  """A JSONL row from host metrics: scalars as they are, a ``[S]`` vector ``k``
  (one value per lane of a vmapped sweep) as ``k_lane0 .. k_lane{S-1}``."""
  row = {}
  for k, v in metrics.items():
    v = np.asarray(v)
    if v.ndim == 0:
      row[k] = float(v)
    else:
      row.update({f"{k}_lane{j}": float(x) for j, x in enumerate(v.reshape(-1))})
  return row


def fit(
  *,
  step_fn: StepFn,
  state: TrainState,
  batches: Any,
  key: jax.Array,
  num_steps: int,
  out_dir: pathlib.Path | str | None,
  put_batch: Callable[[Any], Any] = lambda b: b,
  eval_fn: Callable[[TrainState], dict[str, float]] | None = None,
  eval_every: int = 0,
  log_every: int = 50,
  ckpt_every: int = 0,
  checkpointer: Checkpointer | None = None,
  desc: str = "train",
  on_step: Callable[[int, Metrics], None] | None = None,
  extra_fn: Callable[[], dict[str, Any]] | None = None,
  on_restore: Callable[[dict[str, Any]], None] | None = None,
  describe_bad: Callable[[int, TrainState, Metrics], str] | None = None,
) -> TrainState:
  """Runs ``step_fn`` until ``state.step == num_steps``.

  Resumes from the latest checkpoint in ``checkpointer`` (state and the
  iterator position ``batches.state()``), so an interrupted run ends with the
  same state as an uninterrupted one. Metrics of every ``log_every``-th step and
  every evaluation go to ``out_dir/metrics.jsonl``.

  The state may carry a leading lane axis (a vmapped sweep): metrics may then
  be ``[S]`` vectors, logged as ``k_lane{j}`` keys, and the NaN guard fires
  when any lane goes non-finite.

  Args:
    out_dir: where ``metrics.jsonl`` goes; None writes no metrics file.
    log_every: logging (and NaN/inf check) period; 1 checks every step.
    on_step: called as ``on_step(step, metrics)`` after every step, with the
      step count (1-based) and the step's on-device metrics; reading them on
      the host here syncs every step.
    extra_fn: returns JSON-able entries merged into each checkpoint's extra
      dict (fit's own ``"data"`` and ``"step"`` win a clash).
    on_restore: called with the restored checkpoint's extra dict on resume
      (the counterpart of ``extra_fn``).
    describe_bad: ``describe_bad(step, state, metrics)`` returns the message
      of the NonFiniteError (what failed and what to do), e.g. naming the
      failing lanes; fit appends where the last good checkpoint is. ``metrics``
      are the latest step's.

  Raises:
    NonFiniteError: the loss or the parameters became NaN/inf; the last good
      checkpoint is kept and named in the message.
  """
  writer = MetricsWriter(out_dir) if out_dir is not None else None
  start = 0
  if checkpointer is not None and checkpointer.latest_step() is not None:
    state, extra = checkpointer.restore(state)
    batches.restore(extra["data"])
    start = int(extra["step"])
    if on_restore is not None:
      on_restore(extra)
  if writer is not None:
    writer.truncate(start if start else -1)
  last_good = start if checkpointer is not None and start else None
  bad = jnp.array(False)
  bar = progress(total=num_steps, initial=start, desc=desc)

  def check(step: int, metrics: Metrics) -> None:
    if bool(bad) or not bool(all_finite(state.params)):
      where = (
        f"last good checkpoint (step {last_good}) kept in {checkpointer.directory}"
        if last_good is not None else "no checkpoint was written"
      )
      if describe_bad is not None:
        raise NonFiniteError(f"{describe_bad(step, state, metrics)}; {where}")
      raise NonFiniteError(
        f"loss became NaN/inf by step {step} ({desc}); {where}; lower the learning"
        " rate or check the data"
      )

  for i in range(start, num_steps):
    state, metrics = step_fn(state, put_batch(next(batches)), key)
    done = i + 1
    if on_step is not None:
      on_step(done, metrics)
    bad = bad | ~jnp.all(jnp.isfinite(metrics["loss"]))  # any lane
    bar.update(1)
    if done % log_every == 0 or done == num_steps:
      check(done, metrics)
      row = _row(jax.device_get(metrics))
      if "loss" in row:
        bar.set_postfix(loss=f"{row['loss']:.4f}")
      if writer is not None:
        writer.write(done, row)
    if eval_fn is not None and eval_every and (done % eval_every == 0 or done == num_steps):
      evals = {f"eval/{k}": v for k, v in eval_fn(state).items()}
      if writer is not None:
        writer.write(done, evals)
    if checkpointer is not None and ckpt_every and (done % ckpt_every == 0 or done == num_steps):
      check(done, metrics)
      extra = dict(extra_fn()) if extra_fn is not None else {}
      checkpointer.save(done, state, {**extra, "data": batches.state(), "step": done})
      last_good = done
  bar.close()
  return state


def evaluate_batches(
  eval_step: Callable[[Any, Batch], Metrics], params: Any, arrays: dict[str, np.ndarray],
  batch_size: int,
) -> dict[str, float]:
  """Sums ``eval_step`` metrics over padded fixed-size batches, then averages.

  ``eval_step(params, batch)`` gets a ``batch["mask"]`` marking real rows and
  must return sums (e.g. ``{"correct": ..., "count": ...}``); the result holds
  every sum divided by the total ``count``.
  """
  n = len(next(iter(arrays.values())))
  totals: dict[str, float] = {}
  for s in range(0, n, batch_size):
    idx = np.arange(s, s + batch_size)
    mask = idx < n
    idx = np.minimum(idx, n - 1)
    batch = {k: v[idx] for k, v in arrays.items()}
    batch["mask"] = mask
    out = jax.device_get(eval_step(params, batch))
    for k, v in out.items():
      totals[k] = totals.get(k, 0.0) + float(v)
  count = totals.pop("count")
  return {k: v / count for k, v in totals.items()}
