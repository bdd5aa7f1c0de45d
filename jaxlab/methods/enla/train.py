"""Prompt learning on a frozen CLIP, several seeds at once, and evaluation.

Seeds are vmapped: the trainable params carry a leading seed axis [S, ...], the batch is
[S, B, ...], and the loss is the *sum* of the per-seed losses, so each seed's gradient is its
own. The optimiser is element-wise (Adam or SGD-momentum), so one stacked optimiser equals S
independent ones. The CLIP weights sit in the same state under ``"clip"``, behind
``stop_gradient`` and an ``optax.multi_transform`` that maps them to ``set_to_zero``.
"""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab.core.state import TrainState
from jaxlab.core.train import fit, jit_step, make_step
from jaxlab.data import BatchIterator, toy_suite
from jaxlab.methods.enla.config import PromptConfig
from jaxlab.methods.enla.learners import Learner, cross_entropy

Params = Any


def base_optimizer(cfg: PromptConfig) -> optax.GradientTransformation:
  """Adam + cosine (toy), or the anchors' SGD(0.9) + cosine with a constant 1e-5 warmup."""
  decay = optax.cosine_decay_schedule(cfg.learning_rate, max(cfg.steps - cfg.warmup_steps, 1))
  if cfg.warmup_steps:
    sched = optax.join_schedules([optax.constant_schedule(1e-5), decay], [cfg.warmup_steps])
  else:
    sched = decay
  if cfg.optimizer == "sgd":
    return optax.sgd(sched, momentum=0.9)
  return optax.adam(sched)


def frozen_optimizer(cfg: PromptConfig) -> optax.GradientTransformation:
  """Trains ``params["learn"]``; ``params["clip"]`` gets zero updates."""
  return optax.multi_transform({"train": base_optimizer(cfg), "frozen": optax.set_to_zero()},
                               {"clip": "frozen", "learn": "train"})


def make_loss(learner: Learner, bank: dict, num_seeds: int):
  """``loss_fn(params, model_state, batch, key)`` summing vmapped per-seed losses."""

  def loss_fn(params, model_state, batch, key):
    clip_params = jax.lax.stop_gradient(params["clip"])
    keys = jax.random.split(key, num_seeds)
    one = lambda p, b, k: learner.loss(p, clip_params, b, bank, k)
    losses, aux = jax.vmap(one)(params["learn"], batch, keys)
    metrics = {k: v.mean() for k, v in aux.items()}
    return losses.sum(), (model_state, {"seed_loss": losses.mean(), **metrics})

  return loss_fn


def train_prompts(learner: Learner, clip_params: Params, images: np.ndarray, labels: np.ndarray,
                  bank: dict, cfg: PromptConfig, out_dir: pathlib.Path, seed: int = 0,
                  desc: str = "prompts", to_pixels=toy_suite.to_pixels) -> TrainState:
  """Trains S seeds at once on per-seed few-shot sets images [S, n, 32, 32, 3], labels [S, n].

  Returns:
    The final TrainState; ``state.params["learn"]`` has a leading seed axis.
  """
  num_seeds, n = labels.shape
  key = jax.random.key(seed)
  learn = jax.vmap(learner.init)(jax.random.split(key, num_seeds))
  tx = frozen_optimizer(cfg)
  # The state is donated to each step, so it holds its own copy of the frozen weights.
  frozen = jax.tree.map(lambda x: jnp.array(x, copy=True), clip_params)
  state = TrainState.create({"clip": frozen, "learn": learn}, tx)
  step = jit_step(make_step(make_loss(learner, bank, num_seeds), tx))
  batch = min(cfg.batch, n)

  def put(b):
    idx = b["idx"]
    return {"pixels": to_pixels(jnp.asarray(images[:, idx])),
            "label": jnp.asarray(labels[:, idx])}

  return fit(step_fn=step, state=state, batches=BatchIterator({"idx": np.arange(n)}, batch, seed),
             key=jax.random.fold_in(key, 1), num_steps=cfg.steps, out_dir=out_dir,
             put_batch=put, log_every=max(1, cfg.steps // 5), desc=desc)


def evaluate(learner: Learner, clip_params: Params, learn: Params, images: np.ndarray,
             labels: np.ndarray, bank: dict, batch: int = 250,
             to_pixels=toy_suite.to_pixels) -> np.ndarray:
  """Top-1 accuracy (%) per seed [S] of stacked params on one labelled set."""
  predict = lambda p, x: jnp.argmax(learner.logits(p, clip_params, x, bank), -1)
  if not jax.tree.leaves(learn):  # nothing learned (zero-shot): one "seed"
    fn = jax.jit(lambda p, x: predict(p, x)[None])
  else:
    fn = jax.jit(jax.vmap(predict, in_axes=(0, None)))
  correct = 0
  for s in range(0, len(labels), batch):
    pred = fn(learn, to_pixels(jnp.asarray(images[s:s + batch])))
    correct = correct + np.asarray(jnp.sum(pred == jnp.asarray(labels[s:s + batch]), -1))
  return 100.0 * np.atleast_1d(correct) / len(labels)


def linear_probe(train_feats: jax.Array, train_labels: jax.Array, num_classes: int,
                 weight_decay: float = 1e-4, steps: int = 300, lr: float = 0.05) -> dict:
  """Logistic regression on standardised frozen features, vmapped over seeds.

  Features are centred and scaled with the training set's per-dimension mean/std (small
  contrastive models have highly similar image features; without this the L2 penalty
  dominates).

  Args:
    train_feats: [S, n, P]; train_labels: [S, n].

  Returns:
    ``{"w": [S, P, K], "b": [S, K], "mu": [S, P], "sd": [S, P]}``.
  """

  def one(x, y):
    mu, sd = x.mean(0), x.std(0) + 1e-6
    x = (x - mu) / sd
    params = {"w": jnp.zeros((x.shape[-1], num_classes)), "b": jnp.zeros((num_classes,))}
    tx = optax.adam(lr)

    def loss(p):
      return cross_entropy(x @ p["w"] + p["b"], y) + weight_decay * jnp.sum(p["w"] ** 2)

    def body(carry, _):
      p, s = carry
      u, s = tx.update(jax.grad(loss)(p), s, p)
      return (optax.apply_updates(p, u), s), None

    (params, _), _ = jax.lax.scan(body, (params, tx.init(params)), None, length=steps)
    return {**params, "mu": mu, "sd": sd}

  return jax.jit(jax.vmap(one))(train_feats, train_labels)


def probe_accuracy(probe: dict, feats: jax.Array, labels: np.ndarray) -> np.ndarray:
  """Accuracy (%) per seed of a stacked linear probe on features [n, P]."""
  x = (feats[None] - probe["mu"][:, None]) / probe["sd"][:, None]
  pred = jnp.argmax(jnp.einsum("snp,spk->snk", x, probe["w"]) + probe["b"][:, None], -1)
  return 100.0 * np.asarray(jnp.mean(pred == jnp.asarray(labels), -1))
