"""Training the QFI predictor: splits, the pure step, selection, resume.

Protocols (spec A.7): ``"reference"`` trains on the first ``n_train`` setups
and tests on the last ``n_test`` (they may overlap) and selects the checkpoint
on the test loss (``quirk_select_on_test``); ``"clean"`` (default) draws
disjoint train/val/test sets, selects on val and touches test once.
"""

import dataclasses
import functools
import json
import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab.core.checkpoint import Checkpointer
from jaxlab.core.errors import ConfigError
from jaxlab.core.metrics import MetricsWriter
from jaxlab.core.progress import progress
from jaxlab.core.state import TrainState
from jaxlab.core.train import make_step
from jaxlab.methods.dqs import predictor as P
from jaxlab.methods.dqs.graphs import GraphArrays

PROTOCOLS = ("clean", "reference")


def split_indices(
  n: int, protocol: str, *, n_train: int, n_val: int, n_test: int, seed: int = 0
) -> dict[str, np.ndarray]:
  """Index sets ``train``, ``select`` (model selection) and ``test``.

  Raises:
    ConfigError: unknown protocol, or the clean split needs more setups.
  """
  if protocol == "reference":
    test = np.arange(max(0, n - n_test), n)
    return {"train": np.arange(min(n_train, n)), "select": test, "test": test}
  if protocol != "clean":
    raise ConfigError(f"protocol={protocol!r} is unknown; choose one of {PROTOCOLS}")
  if n_train + n_val + n_test > n:
    raise ConfigError(
      f"clean split needs n_train + n_val + n_test = {n_train + n_val + n_test} setups"
      f" but the dataset has {n}; generate more or shrink the split"
    )
  perm = np.random.default_rng(seed).permutation(n)
  a, b = n_train, n_train + n_val
  return {"train": perm[:a], "select": perm[a:b], "test": perm[b : b + n_test]}


def make_optimizer(cfg: P.PredictorConfig) -> optax.GradientTransformation:
  """PyTorch ``Adam(weight_decay=wd)``: coupled L2 on every parameter, then Adam."""
  return optax.chain(optax.add_decayed_weights(cfg.weight_decay), optax.adam(cfg.lr))


def init_state(cfg: P.PredictorConfig, g: GraphArrays, y: np.ndarray):
  """(model, fresh TrainState) initialised on a small batch."""
  model = programs(cfg)[0]
  batch = P.make_batch(cfg, g.take(np.arange(2)), y[:2], 2)
  key = jax.random.key(cfg.seed)
  if cfg.model == "gnn":
    variables = model.init(key, batch["graph"])
  else:
    variables = model.init(key, batch["x"], batch["mask"])
  params = variables["params"]
  model_state = {k: v for k, v in dict(variables).items() if k != "params"}
  return model, TrainState.create(params, make_optimizer(cfg), model_state)


def programs(cfg: P.PredictorConfig):
  """(model, jitted train step, jitted eval fn), built once per model/optimizer."""
  key = dataclasses.replace(cfg, epochs=1, eval_every=1, init_best=0.0, seed=0)
  return _programs(key)


@functools.cache
def _programs(cfg: P.PredictorConfig):
  model = P.make_model(cfg)
  evaluate = jax.jit(lambda v, b: P.decode(cfg, P.apply_model(model, v, b, train=False)))
  return model, make_train_step(model, cfg), evaluate


def make_train_step(model, cfg: P.PredictorConfig):
  """The jitted ``step(state, batch, key) -> (state, metrics)`` (`P.loss`; the reference: MSE on raw QFI)."""

  def loss_fn(params, model_state, batch, key):
    del key  # dropout is 0 in the reference
    out, new = P.apply_model(model, {"params": params, **model_state}, batch, train=True)
    return P.loss(cfg, out, batch["y"], batch["mask"]), (dict(new), {})

  return jax.jit(make_step(loss_fn, make_optimizer(cfg)), donate_argnums=0)


def predict(variables, cfg: P.PredictorConfig, g: GraphArrays) -> np.ndarray:
  """Eval-mode predictions [M] for all graphs in ``g`` (padded batches)."""
  fn = programs(cfg)[2]
  n, size, out = len(g.n_node), cfg.eval_batch_size, []
  for s in range(0, n, size):
    idx = np.arange(s, min(s + size, n))
    batch = P.make_batch(cfg, g.take(idx), np.zeros(len(idx)), size)
    out.append(np.asarray(fn(variables, batch))[: len(idx)])
  return np.concatenate(out)


def _variables(state: TrainState) -> dict:
  return {"params": state.params, **state.model_state}


def _trim_metrics(writer: MetricsWriter, phase: str, epoch: int) -> None:
  """Drops this phase's rows logged after ``epoch`` (resume)."""
  rows = [r for r in writer.rows() if r.get("phase") != phase or r["step"] <= epoch]
  writer.path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def train(
  cfg: P.PredictorConfig,
  g: GraphArrays,
  y: np.ndarray,
  split: dict[str, np.ndarray],
  out_dir: pathlib.Path | str,
  phase: str = "gnn",
  resume: bool = True,
) -> tuple[Any, dict, dict]:
  """Trains on ``split["train"]``, selecting on ``split["select"]``.

  Every ``eval_every`` epochs (epoch % eval_every == 0, as the reference) the
  selection MSE is computed; the best variables are kept. A checkpoint of the
  state and the best variables after every evaluation lets an interrupted run
  resume (``out_dir/checkpoints/<phase>``) and end with the same numbers.

  Returns:
    (model, best variables, info) with info = best_epoch, best_select_mse,
    n_steps, seconds and cpu_seconds (training wall and process CPU time up
    to the last checkpoint, summed over resumed sessions, compilation
    included).
  """
  t0, c0 = time.perf_counter(), time.process_time()
  out_dir = pathlib.Path(out_dir)
  model, state = init_state(cfg, g, y)
  state = jax.tree.map(jnp.copy, state)  # fresh buffers before the first donation
  best = jax.device_get(_variables(state))
  best_loss, best_epoch, start, before, cpu_before = cfg.init_best, -1, 0, 0.0, 0.0
  ckpt = Checkpointer(out_dir / "checkpoints" / phase)
  writer = MetricsWriter(out_dir)
  if resume and ckpt.latest_step() is not None:
    restored, extra = ckpt.restore({"state": state, "best": best})
    state, best = restored["state"], jax.device_get(restored["best"])
    best_loss, best_epoch, start = extra["best_loss"], extra["best_epoch"], extra["epoch"] + 1
    before, cpu_before = extra.get("seconds", 0.0), extra.get("cpu_seconds", 0.0)
    _trim_metrics(writer, phase, extra["epoch"])
  step = programs(cfg)[1]
  key = jax.random.key(cfg.seed)
  tr, sel = split["train"], split["select"]
  steps_per_epoch = -(-len(tr) // cfg.batch_size)
  bar = progress(total=cfg.epochs * steps_per_epoch, initial=start * steps_per_epoch, desc=phase)
  for epoch in range(start, cfg.epochs):
    order = np.random.default_rng([cfg.seed, epoch]).permutation(tr)
    losses = []
    for s in range(0, len(order), cfg.batch_size):
      idx = order[s : s + cfg.batch_size]
      state, metrics = step(state, P.make_batch(cfg, g.take(idx), y[idx], cfg.batch_size), key)
      losses.append(metrics["loss"])
      bar.update(1)
    if epoch % cfg.eval_every == 0 or epoch == cfg.epochs - 1:
      pred = predict(_variables(state), cfg, g.take(sel))
      sel_mse = float(np.mean((pred - y[sel]) ** 2))
      train_mse = float(np.mean(jax.device_get(losses)))
      if sel_mse < best_loss:
        best_loss, best_epoch, best = sel_mse, epoch, jax.device_get(_variables(state))
      bar.set_postfix(train=f"{train_mse:.3f}", select=f"{sel_mse:.3f}")
      writer.write(epoch, {"phase": phase, f"{phase}/train_mse": train_mse,
                           f"{phase}/select_mse": sel_mse})
      ckpt.save(epoch, {"state": state, "best": best},
                {"epoch": epoch, "best_loss": best_loss, "best_epoch": best_epoch,
                 "seconds": before + time.perf_counter() - t0,
                 "cpu_seconds": cpu_before + time.process_time() - c0})
  bar.close()
  if best_epoch < 0:  # nothing beat init_best: keep the last state, as a fallback
    best = jax.device_get(_variables(state))
  info = {"best_epoch": best_epoch, "best_select_mse": best_loss,
          "n_steps": int(state.step), "seconds": before + time.perf_counter() - t0,
          "cpu_seconds": cpu_before + time.process_time() - c0}
  return model, best, info
