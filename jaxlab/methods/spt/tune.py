"""SPT and its baselines as training arms on one code path (``jaxlab.tuning``).

Arms:

- ``"spt"``: q/o slices of the selected heads (``precise_level`` 3, SPT's GQA
  policy: q+o for GQA, q/k/v/o for MHA), frozen entries bit-identical;
- ``"full"``: full fine-tuning (SFT);
- ``"lora"``: LoRA r16 on q/k/v/o of every layer;
- ``"lora_heads"``: LoRA restricted to the selected heads.

The loss is next-token cross-entropy on the loss-masked (assistant) tokens only.
Because batches are left-padded and the supervised turn is last, only the final
``target_len`` positions are unembedded.
"""

import dataclasses
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab import tuning
from jaxlab.core import errors
from jaxlab.core.checkpoint import Checkpointer
from jaxlab.core.state import TrainState
from jaxlab.core.train import fit, jit_step, make_step
from jaxlab.data import BatchIterator
from jaxlab.models import decoder, decoder_ops

ARMS = ("spt", "full", "lora", "lora_heads")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TuneConfig:
  """One tuning arm (released defaults: lr 3e-5 -> 1e-7 polynomial, wd 0.1).

  Attributes:
    arm: one of ``ARMS``.
    steps: optimizer steps (released: 120 at batch 128).
    batch_size: rows per step.
    lr: peak learning rate; decays linearly to ``end_lr``.
    end_lr: final learning rate.
    weight_decay: AdamW decoupled weight decay.
    precise_level: SPT level (3 = q + o slices).
    policy: GQA policy for head masks ("auto", "qo", "qkvo").
    lora_rank: LoRA rank.
    lora_scale: LoRA alpha / rank.
    decay_frozen_slices: reproduce the released AdamW leak on frozen slices.
    target_len: how many final positions carry the loss (static).
    seed: data-order and LoRA-init seed.
  """
  arm: str = "spt"
  steps: int = 30
  batch_size: int = 8
  lr: float = 1e-4
  end_lr: float = 1e-7
  weight_decay: float = 0.1
  precise_level: int = 3
  policy: str = "auto"
  lora_rank: int = 16
  lora_scale: float = 2.0
  decay_frozen_slices: bool = False
  target_len: int = 64
  seed: int = 0

  def __post_init__(self):
    if self.arm not in ARMS:
      raise errors.ConfigError(f"arm={self.arm!r}: use one of {ARMS}.")
    if self.steps < 1 or self.batch_size < 1:
      raise errors.ConfigError("steps and batch_size must be >= 1.")


def target_logits(cfg: decoder.DecoderConfig, params: dict, ids: jax.Array, mask: jax.Array,
                  n: int) -> jax.Array:
  """Logits of the last ``n`` next-token predictions, fp32 ``[b, n, V]``.

  Captures the final residual (the unused full logits are dead code under jit), then
  applies the final norm and the unembedding on positions ``t-n-1 .. t-2`` only.
  """
  _, acts = decoder.apply(cfg, params, ids, mask, capture=decoder.Capture(resid_final=True))
  x = acts["resid_final"][:, -n - 1:-1]
  x = decoder_ops.norm(cfg, x, params["final_norm_scale"], params.get("final_norm_bias"))
  w_u = params["embed"].T if cfg.tie_embeddings else params["unembed"]
  return jnp.einsum("bnd,dv->bnv", x.astype(jnp.float32), w_u.astype(jnp.float32))


def masked_ce(cfg: decoder.DecoderConfig, params: dict, batch: dict, n: int) -> jax.Array:
  """Mean cross-entropy over ``loss_mask`` tokens among the last ``n`` targets."""
  logits = target_logits(cfg, params, batch["ids"], batch["mask"], n)
  targets = batch["ids"][:, -n:]
  weights = batch["loss_mask"][:, -n:].astype(jnp.float32)
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
  return jnp.sum(ce * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def _optimizer(tc: TuneConfig, masks: Any) -> optax.GradientTransformation:
  sched = optax.polynomial_schedule(tc.lr, tc.end_lr, power=1.0, transition_steps=tc.steps)
  return tuning.masked_adamw(sched, masks, weight_decay=tc.weight_decay,
                             decay_frozen_slices=tc.decay_frozen_slices)


def setup(cfg: decoder.DecoderConfig, params: dict, heads: Any, tc: TuneConfig):
  """(state, loss_fn, optimizer, trainable count) for an arm; ``heads`` is ignored by full/lora."""
  n = tc.target_len
  if tc.arm in ("spt", "full"):
    masks = (tuning.full_masks(params) if tc.arm == "full" else tuning.head_masks(
      params, heads, n_heads=cfg.n_heads, n_kv_heads=cfg.kv_heads, n_layers=cfg.n_layers,
      tuning=tuning.HeadTuning(precise_level=tc.precise_level, policy=tc.policy)))

    def loss_fn(p, model_state, batch, key):
      del key
      return masked_ce(cfg, p, batch, n), (model_state, {})

    tx = _optimizer(tc, masks)
    return TrainState.create(params, tx), loss_fn, tx, tuning.count_trainable(params, masks)
  lora = tuning.lora_init(jax.random.key(tc.seed), params, rank=tc.lora_rank)
  masks = (tuning.full_masks(lora) if tc.arm == "lora" else tuning.lora_head_masks(
    lora, heads, n_layers=cfg.n_layers, n_heads=cfg.n_heads, n_kv_heads=cfg.kv_heads,
    policy=tc.policy))
  if tc.arm == "lora_heads":  # zero o's frozen ``a`` rows so the delta cannot leak
    lora = tuning.restrict_lora(lora, masks)

  def lora_loss(lp, model_state, batch, key):
    del key
    merged = tuning.lora_merge(model_state["base"], lp, scale=tc.lora_scale)
    return masked_ce(cfg, merged, batch, n), (model_state, {})

  tx = _optimizer(tc, masks)
  state = TrainState.create(lora, tx, model_state={"base": params})
  return state, lora_loss, tx, tuning.count_trainable(lora, masks)


def tuned_params(state: TrainState, tc: TuneConfig) -> dict:
  """The decoder parameters after tuning (LoRA merged)."""
  if tc.arm.startswith("lora"):
    return tuning.lora_merge(state.model_state["base"], state.params, scale=tc.lora_scale)
  return state.params


def train(cfg: decoder.DecoderConfig, params: dict, heads: Any, data: dict[str, np.ndarray],
          tc: TuneConfig, out_dir: pathlib.Path | None = None,
          checkpoint: bool = False) -> tuple[dict, dict[str, float]]:
  """Tunes one arm on ``data`` (``ids``/``mask``/``loss_mask`` from ``train_data.tokenize``).

  Args:
    cfg: decoder config.
    params: base parameters (not modified; a copy is trained).
    heads: selected ``(layer, head)`` pairs (SPT and lora_heads arms).
    data: training arrays.
    tc: arm config.
    out_dir: where ``metrics.jsonl`` (and checkpoints) go; None for a temp dir.
    checkpoint: save orbax checkpoints every 10 steps and resume from them.

  Returns:
    ``(tuned params, {"trainable": count, "final_loss": loss})``.
  """
  import tempfile  # pylint: disable=import-outside-toplevel
  out = pathlib.Path(out_dir or tempfile.mkdtemp(prefix="spt_tune_"))
  params = jax.tree.map(jnp.array, params)  # a private copy: the step donates it
  state, loss_fn, tx, count = setup(cfg, params, heads, tc)
  step = jit_step(make_step(loss_fn, tx))
  ckpt = Checkpointer(out / "checkpoints") if checkpoint else None
  it = BatchIterator(data, min(tc.batch_size, len(data["ids"])), seed=tc.seed)
  state = fit(step_fn=step, state=state, batches=it, key=jax.random.key(tc.seed),
              num_steps=tc.steps, out_dir=out, log_every=1,
              ckpt_every=10 if checkpoint else 0, checkpointer=ckpt, desc=f"tune {tc.arm}")
  if ckpt is not None:
    ckpt.wait()
  from jaxlab.core.metrics import read_jsonl  # pylint: disable=import-outside-toplevel
  rows = [r for r in read_jsonl(out / "metrics.jsonl") if "loss" in r]
  return tuned_params(state, tc), {"trainable": float(count),
                                   "final_loss": float(rows[-1]["loss"]) if rows else np.nan}
