"""Training the stand-in LVLM: LLaVA's two stages as pure steps, with orbax checkpoints.

* stage "align": trainable = ``{"projector"}``; the vision tower and the decoder are
  non-differentiated arguments, so they leave the stage bit-identical (a test checks it);
* stage "tune": trainable = ``{"projector", "lora"}`` (LoRA on q/k/v/o of every decoder
  layer, ``jaxlab.tuning.lora``), merged into the frozen decoder inside the loss.

The step is ``step(state, batch) -> (state, metrics)`` with the batch a pure function of the
step index (``batch_at``), so a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab.core.checkpoint import Checkpointer
from jaxlab.core.progress import progress
from jaxlab.methods.qvix import pipeline, standin
from jaxlab.models import lvlm
from jaxlab.tuning.lora import lora_init, lora_merge


@dataclasses.dataclass(frozen=True, kw_only=True)
class StageConfig:
  stage: str = "align"  # "align" (projector) or "tune" (projector + LoRA)
  steps: int = 40
  batch: int = 8
  lr: float = 1e-3
  lora_rank: int = 8
  lora_scale: float = 2.0
  seq_len: int = 0  # 0: the longest example rounded up to 16
  ckpt_every: int = 20


def encode(tok, cfg: lvlm.LVLMConfig, prompt: str, target: str) -> tuple[list[int], int]:
  """Ids of ``WRAP.format(prompt) + target`` (+ EOS) and the number of target tokens."""
  ids = pipeline.prompt_ids(tok, cfg, standin.WRAP.format(prompt))
  tgt = tok.encode(target, special=False) + list(tok.eos_ids[:1])
  return ids + tgt, len(tgt)


def make_dataset(tok, cfg, examples: Sequence[tuple[np.ndarray, str, str]],
                 seq_len: int = 0) -> dict[str, np.ndarray]:
  """Left-padded ids/mask/loss_mask [n, T] and pixels [n, h, w, 3] of (image, prompt, target)."""
  enc = [encode(tok, cfg, p, t) for _, p, t in examples]
  t_max = seq_len or -(-max(len(e) for e, _ in enc) // 16) * 16
  n = len(enc)
  ids = np.full((n, t_max), tok.pad_id, np.int32)
  mask, loss = np.zeros((n, t_max), np.int32), np.zeros((n, t_max), np.float32)
  for i, (e, k) in enumerate(enc):
    if len(e) > t_max:
      raise ValueError(f"example {i} has {len(e)} tokens > seq_len {t_max}.")
    ids[i, t_max - len(e):], mask[i, t_max - len(e):] = e, 1
    loss[i, t_max - k:] = 1.0
  proc = lvlm.ImageProcessing(shortest_edge=None, crop_hw=None)  # scenes are 32x32 already
  pixels = lvlm.preprocess([im for im, _, _ in examples], proc)
  return {"ids": ids, "mask": mask, "loss_mask": loss, "pixels": pixels}


def batch_at(data: dict[str, np.ndarray], step: int, batch: int, seed: int) -> dict:
  """The step's batch: a seeded permutation per epoch (a pure function of the step)."""
  n = len(data["ids"])
  per = max(n // batch, 1)
  perm = np.random.default_rng([seed, step // per]).permutation(n)
  idx = perm[(step % per) * batch:(step % per + 1) * batch]
  return {k: v[idx] for k, v in data.items()}


def _params(frozen: dict, trainable: dict, lora_scale: float) -> dict:
  dec = frozen["decoder"]
  if "lora" in trainable:
    dec = lora_merge(dec, trainable["lora"], scale=lora_scale)
  return {"vision": frozen["vision"], "projector": trainable["projector"], "decoder": dec}


def loss_fn(cfg: lvlm.LVLMConfig, frozen: dict, trainable: dict, batch: dict,
            lora_scale: float = 2.0) -> jax.Array:
  """Mean next-token cross-entropy over the target tokens."""
  logits = lvlm.forward(cfg, _params(frozen, trainable, lora_scale), batch["ids"],
                        batch["mask"], batch["pixels"])
  ce = optax.softmax_cross_entropy_with_integer_labels(logits[:, :-1], batch["ids"][:, 1:])
  w = batch["loss_mask"][:, 1:]
  return jnp.sum(ce * w) / jnp.maximum(jnp.sum(w), 1.0)


def init_state(cfg, params: dict, sc: StageConfig, key: jax.Array, tx) -> dict:
  trainable = {"projector": params["projector"]}
  if sc.stage == "tune":
    trainable["lora"] = lora_init(key, {"layers": params["decoder"]["layers"]},
                                  rank=sc.lora_rank)
  trainable = jax.tree.map(jnp.array, trainable)  # fresh buffers (donated below)
  return {"step": jnp.zeros((), jnp.int32), "trainable": trainable, "opt": tx.init(trainable)}


def make_step(cfg, tx, lora_scale: float):
  """``step(state, frozen, batch) -> (state, {"loss"})``, jitted, state donated.

  The frozen params are an argument, not a closure: closed-over arrays become XLA constants
  (a 135M-parameter decoder would be constant-folded at compile time).
  """
  grad = jax.value_and_grad(functools.partial(loss_fn, cfg, lora_scale=lora_scale), argnums=1)

  @functools.partial(jax.jit, donate_argnums=0)
  def step(state, frozen, batch):
    loss, g = grad(frozen, state["trainable"], batch)
    upd, opt = tx.update(g, state["opt"], state["trainable"])
    return {"step": state["step"] + 1, "trainable": optax.apply_updates(state["trainable"], upd),
            "opt": opt}, {"loss": loss}

  return step


def merged(params: dict, trainable: dict, lora_scale: float) -> dict:
  """The full LVLM params after a stage (LoRA merged into the decoder)."""
  frozen = {"vision": params["vision"], "decoder": params["decoder"]}
  return _params(frozen, trainable, lora_scale)


def train_stage(cfg, params: dict, data: dict, sc: StageConfig, out_dir: pathlib.Path, *,
                seed: int = 0, log=None) -> tuple[dict, list[float]]:
  """Runs (or resumes) one stage; returns (merged params, per-step losses)."""
  tx = optax.adam(sc.lr)
  frozen = {"vision": params["vision"], "decoder": params["decoder"]}
  state = init_state(cfg, params, sc, jax.random.key(seed), tx)
  ckpt = Checkpointer(pathlib.Path(out_dir) / f"checkpoints_{sc.stage}")
  losses: list[float] = []
  if ckpt.latest_step() is not None:
    state, extra = ckpt.restore(state)
    losses = list(extra.get("losses", []))
  step = make_step(cfg, tx, sc.lora_scale)
  start = int(state["step"])
  for i in progress(range(start, sc.steps), total=sc.steps, initial=start, desc=sc.stage):
    b = {k: jnp.asarray(v) for k, v in batch_at(data, i, sc.batch, seed).items()}
    state, m = step(state, frozen, b)
    losses.append(float(m["loss"]))
    if log is not None:
      log({"stage": sc.stage, "step": i + 1, "loss": losses[-1]})
    if (i + 1) % sc.ckpt_every == 0 or i + 1 == sc.steps:
      ckpt.save(i + 1, state, {"losses": losses})
  ckpt.close()
  return merged(params, state["trainable"], sc.lora_scale), losses
