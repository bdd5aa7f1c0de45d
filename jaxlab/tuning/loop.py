"""The one fine-tuning loop for every arm (heads, random heads, full, LoRA, LoRA-on-heads).

One jitted step trains ``S`` lanes at once: ``jax.vmap`` over a leading lane axis
of the trainable state, each lane with its own learning rate, seed (data order,
LoRA init) and, for head arms, its own head set (random-k controls). The base
parameters are a jit *argument* shared by every lane (never a folded constant).
The host loop (progress, metrics.jsonl, checkpoints, resume, NaN guard) is
``jaxlab.core.train.fit`` with the lanes as the state's leading axis.

Speed for head arms:
  - the trainable tree is the selected slices only (``tuning.slices``), so the
    gradient, Adam moments and weight decay exist only for those entries;
  - ``start_layer`` = the lowest tuned layer: the residual entering it is computed
    once per batch with the frozen base (forward only, no backward) and the
    differentiated forward runs layers ``start_layer..L-1`` only;
  - only the last ``target_len`` positions are unembedded (the supervised tail of
    left-padded rows).

The loss is next-token cross-entropy where ``loss_mask[:, t] = 1`` marks token
``t`` as a *target* (predicted from position ``t - 1``). AdamW: Adam moments,
decoupled weight decay, lr decaying linearly from the lane's ``lr`` to ``end_lr``
over ``steps`` (SPT's released polynomial schedule with power 1).

References:
  Chen et al., "From Yes-Men to Truth-Tellers" (ICML 2024), pinpoint tuning.
  Zhang et al., "Interpreting and Improving LLMs in Arithmetic Calculation" (ICML 2024).
"""

import dataclasses
import functools
import hashlib
import json
import pathlib
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab.core import hardware
from jaxlab.core.checkpoint import Checkpointer
from jaxlab.core.errors import ConfigError
from jaxlab.core.metrics import write_json
from jaxlab.core.state import TrainState
from jaxlab.core.train import all_finite, fit
from jaxlab.data import BatchIterator
from jaxlab.models import decoder
from jaxlab.tuning import lora as lora_lib
from jaxlab.tuning import slices
from jaxlab.tuning import transform

KINDS = ("heads", "full", "lora")
COMPUTE_DTYPES = ("float32", "bfloat16")


def check_compute_dtype(value: str, key: str = "compute_dtype", *, warn: bool = True) -> None:
  """Refuses a training-step dtype other than fp32 / bf16, naming the caller's config key;
  with ``warn``, warns (``warn_emulated_bf16``) when bf16 would be slower than fp32 here.
  ``TrainConfig`` passes ``warn=False``: asking JAX for its backend while a config is built
  (possibly before ``jax.distributed.initialize``) would start the runtime; ``sweep`` warns."""
  if value not in COMPUTE_DTYPES:
    raise ConfigError(f"{key}={value!r}; use {' or '.join(map(repr, COMPUTE_DTYPES))}.")
  if warn:
    warn_emulated_bf16(value, key)


def warn_emulated_bf16(value: str, key: str = "compute_dtype") -> None:
  """Warns when a bf16 step would run on a CPU that emulates bf16 products (slower than fp32)."""
  if value == "bfloat16" and hardware.native_bf16() is False:
    warnings.warn(f"{key}='bfloat16' on a CPU without native bf16 products "
                  f"({hardware.cpu_summary()}; needs {' or '.join(hardware.BF16_FLAGS)}): XLA "
                  "emulates them and the step is slower than in float32 (full FT of SmolLM2: "
                  "18.5 s against 14.1 s per step on an AVX2 EPYC); use float32 here.",
                  stacklevel=2)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Arm:
  """What an arm trains (the learning rate and seed belong to its lanes).

  Attributes:
    name: label in results.
    kind: "heads" (selected q/(k/v)/o slices), "full", or "lora".
    heads: ``(layer, head)`` pairs: the heads arm's selection; for LoRA, restricts
      LoRA to these heads (SPT's "LoRA on selected heads"); empty = every layer.
    policy: GQA policy for head slices ("auto": qkvo for MHA, qo for GQA).
    precise_level: 3 = q (+kv) and o slices; 4 = without o.
    mlp_layers: whole MLP layers trained too (paper 1's "+ top-m MLPs").
    lora_rank, lora_scale: LoRA rank and alpha / rank.
  """

  name: str
  kind: str = "heads"
  heads: tuple[tuple[int, int], ...] = ()
  policy: str = "auto"
  precise_level: int = 3
  mlp_layers: tuple[int, ...] = ()
  lora_rank: int = 16
  lora_scale: float = 2.0

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ConfigError(f"Arm.kind={self.kind!r}; use one of {KINDS}.")
    if self.precise_level not in (3, 4):
      raise ConfigError(f"precise_level={self.precise_level}: the slice loop supports 3 "
                        "(q+o) and 4 (q only); use mlp_layers for + MLPs, kind='full' for 0.")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig:
  """Shared settings of one sweep.

  Attributes:
    steps, batch_size: optimizer steps and rows per step (per lane).
    end_lr: the lr every lane decays to, linearly (released: 1e-7).
    weight_decay: AdamW decoupled weight decay (released: 0.1).
    target_len: positions at the end of each row that carry the loss (static).
    start_layer: None = automatic (lowest tuned layer for head arms, 0 otherwise);
      0 forces the full differentiated forward (the benchmark's baseline).
    ckpt_every: checkpoint period in steps when an ``out_dir`` is given (0: never).
    compute_dtype: dtype of the training step's activations and matrix products; it
      replaces the model config's ``compute_dtype`` inside the step ("float32", or
      "bfloat16": mixed precision, bf16 products accumulated in fp32,
      fp32 master weights and Adam moments; ``decoder_ops.mm``). Only the step changes:
      the tuned parameters come back in fp32 and are evaluated with the caller's config.
  """

  steps: int = 100
  batch_size: int = 8
  end_lr: float = 1e-7
  weight_decay: float = 0.1
  target_len: int = 64
  start_layer: int | None = None
  ckpt_every: int = 0
  compute_dtype: str = "float32"

  def __post_init__(self):
    if self.steps < 1 or self.batch_size < 1 or self.target_len < 1:
      raise ConfigError("steps, batch_size and target_len must be >= 1.")
    check_compute_dtype(self.compute_dtype, warn=False)


class Lane(NamedTuple):
  """One run in a sweep: its peak lr, its seed, and (head arms) its own heads."""

  lr: float
  seed: int = 0
  heads: tuple[tuple[int, int], ...] | None = None


def tail_ce(cfg: decoder.DecoderConfig, params: dict, batch: dict, n: int, *,
            start_layer: int = 0, resid: jax.Array | None = None) -> jax.Array:
  """Mean next-token CE over ``loss_mask`` targets among the last ``n`` tokens (fp32)."""
  _, acts = decoder.apply(cfg, params, batch["ids"], batch["mask"],
                          capture=decoder.Capture(resid_final=True),
                          start_layer=start_layer, resid=resid)
  logits = decoder.final_logits(cfg, params, acts["resid_final"][:, -n - 1:-1])
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["ids"][:, -n:])
  w = batch["loss_mask"][:, -n:].astype(jnp.float32)
  return jnp.sum(ce * w) / jnp.maximum(jnp.sum(w), 1.0)


def lr_at(lr: jax.Array, end_lr: float, step: jax.Array, steps: int) -> jax.Array:
  """Linear decay from ``lr`` at step 0 to ``end_lr`` at ``steps``."""
  frac = jnp.minimum(step.astype(jnp.float32) / steps, 1.0)
  return lr + (end_lr - lr) * frac


class _Plan(NamedTuple):
  to_params: Callable[[Any, dict, dict], dict]
  tx: optax.GradientTransformation
  start: int


def _lora_masks(cfg, arm: Arm, lora: dict):
  if not arm.heads:
    return None
  return lora_lib.lora_head_masks(lora, list(arm.heads), n_layers=cfg.n_layers,
                                  n_heads=cfg.n_heads, n_kv_heads=cfg.kv_heads,
                                  policy=arm.policy)


def init_lane(cfg: decoder.DecoderConfig, base: dict, arm: Arm, lane: Lane):
  """``(trainable tree, index dict)`` of one lane before training."""
  if arm.kind == "heads":
    heads = lane.heads if lane.heads is not None else arm.heads
    if not heads and not arm.mlp_layers:
      raise ConfigError(f"arm {arm.name!r} selects no heads; pass Arm(heads=...) or Lane(heads=).")
    index = slices.select(cfg, list(heads), policy=arm.policy, mlp_layers=arm.mlp_layers)
    return slices.gather(base, index, level=arm.precise_level), index
  if arm.kind == "full":
    return jax.tree.map(jnp.array, base), {}
  lora = lora_lib.lora_init(jax.random.key(lane.seed), base, rank=arm.lora_rank)
  lmasks = _lora_masks(cfg, arm, lora)
  return (lora if lmasks is None else lora_lib.restrict_lora(lora, lmasks)), {}


def plan(cfg: decoder.DecoderConfig, arm: Arm, tc: TrainConfig, lanes: Sequence[Lane],
         base: dict) -> _Plan:
  """The parameter map, optimizer and static start layer of an arm's sweep."""
  adamw = optax.chain(optax.scale_by_adam(), optax.add_decayed_weights(tc.weight_decay))
  start = 0
  if arm.kind == "heads":
    firsts = [slices.first_layer(init_lane(cfg, base, arm, ln)[1]) for ln in lanes]
    start = min(firsts)
    to_params = lambda tr, b, idx: slices.scatter(b, idx, tr)
    tx = adamw
  elif arm.kind == "full":
    to_params = lambda tr, b, idx: tr
    tx = adamw
  else:
    lmasks = _lora_masks(cfg, arm, lora_lib.lora_init(jax.random.key(0), base, rank=arm.lora_rank))
    if arm.heads:
      start = min(h[0] for h in arm.heads)
    to_params = lambda tr, b, idx: lora_lib.lora_merge(b, tr, scale=arm.lora_scale)
    tx = adamw if lmasks is None else transform.pinpoint(adamw, lmasks)
  if tc.start_layer is not None:
    if tc.start_layer > start:
      raise ConfigError(f"start_layer={tc.start_layer} is above the lowest tuned layer {start}; "
                        "the frozen prefix would skip trained weights.")
    start = tc.start_layer
  return _Plan(to_params, tx, start)


def make_step(cfg: decoder.DecoderConfig, pl: _Plan, tc: TrainConfig):
  """``step(state, batch, key, base) -> (state, {"loss": [S]})`` over S vmapped lanes."""
  n, start = tc.target_len, pl.start
  cfg = cfg.replace(compute_dtype=tc.compute_dtype)

  def one(state: TrainState, batch: dict, base: dict):
    resid = None
    if start > 0:  # frozen prefix: computed once per batch, never differentiated
      resid, _ = decoder.apply(cfg, base, batch["ids"], batch["mask"], stop_layer=start)
      resid = jax.lax.stop_gradient(resid)

    def loss_fn(trainable):
      params = pl.to_params(trainable, base, state.model_state["index"])
      return tail_ce(cfg, params, batch, n, start_layer=start, resid=resid)

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    updates, opt_state = pl.tx.update(grads, state.opt_state, state.params)
    lr = lr_at(state.hparams["lr"], tc.end_lr, state.step, tc.steps)
    params = jax.tree.map(lambda p, u: p - (lr * u).astype(p.dtype), state.params, updates)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), loss

  def step(state, batch, key, base):
    del key  # deterministic loss (no dropout)
    state, loss = jax.vmap(one, in_axes=(0, 0, None))(state, batch, base)
    return state, {"loss": loss}

  return jax.jit(step, donate_argnums=0)


def _stack(trees: Sequence[Any]) -> Any:
  return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


def init_state(cfg, base: dict, arm: Arm, lanes: Sequence[Lane], tx) -> TrainState:
  """The stacked ``[S, ...]`` state of every lane (index arrays ride in model_state)."""
  states = []
  for ln in lanes:
    trainable, index = init_lane(cfg, base, arm, ln)
    states.append(TrainState.create(trainable, tx, model_state={"index": index},
                                    hparams={"lr": ln.lr}))
  shapes = {jax.tree.map(jnp.shape, s.model_state["index"]).__repr__() for s in states}
  if len(shapes) > 1:
    raise ConfigError("lanes select different numbers of heads / KV groups; a sweep needs "
                      "equal k per lane (use policy='qo' for random heads on GQA models).")
  return _stack(states)


class _Batches:
  """S per-lane iterators (seeded data order) yielding ``[S, b, ...]`` batches."""

  def __init__(self, data: dict, batch_size: int, seeds: Sequence[int]):
    arrays = {k: data[k] for k in ("ids", "mask", "loss_mask")}
    self.its = [BatchIterator(arrays, min(batch_size, len(arrays["ids"])), seed=s) for s in seeds]

  def __next__(self):
    rows = [next(it) for it in self.its]
    return {k: jnp.asarray(np.stack([r[k] for r in rows])) for k in rows[0]}

  def state(self):
    return [it.state() for it in self.its]

  def restore(self, states):
    for it, st in zip(self.its, states):
      it.restore(st)


class SweepResult(NamedTuple):
  """A finished sweep: per-lane losses ``[S, steps]``, the final state and how to read it."""

  losses: np.ndarray
  state: TrainState
  trainable: int
  start_layer: int
  params_of: Callable[[int], dict]


def sweep(cfg: decoder.DecoderConfig, base: dict, arm: Arm, data: dict, lanes: Sequence[Lane],
          tc: TrainConfig, *, out_dir: pathlib.Path | str | None = None,
          desc: str | None = None) -> SweepResult:
  """Trains every lane of one arm in one vmapped program.

  Args:
    cfg, base: the model and its parameters (never modified).
    arm: what to train.
    data: ``ids``, ``mask`` (left-padded) and ``loss_mask`` (target convention) ``[n, t]``.
    lanes: one ``Lane(lr, seed, heads)`` per run.
    tc: shared settings.
    out_dir: ``metrics.jsonl`` (one line per step, per-lane losses) and, with
      ``tc.ckpt_every``, orbax checkpoints; a rerun resumes from the last one.
    desc: progress-bar label.

  Returns:
    A ``SweepResult``; ``params_of(i)`` gives lane i's tuned decoder params.

  Raises:
    NonFiniteError: a lane's loss or parameters became NaN/inf (checked every
      step); the message names the failing lanes' learning rates.
  """
  if not lanes:
    raise ConfigError("sweep needs at least one Lane(lr, seed).")
  warn_emulated_bf16(tc.compute_dtype)
  pl = plan(cfg, arm, tc, lanes, base)
  # base stays a jit argument (partial of the jitted step), never a baked-in constant
  step = functools.partial(make_step(cfg, pl, tc), base=base)
  batches = _Batches(data, tc.batch_size, [ln.seed for ln in lanes])
  losses = np.full((len(lanes), tc.steps), np.nan)
  ckpt = None
  if out_dir is not None and tc.ckpt_every:
    ckpt = Checkpointer(pathlib.Path(out_dir) / "checkpoints")

  def record(done: int, metrics: dict) -> None:
    losses[:, done - 1] = np.asarray(metrics["loss"])

  def restore(extra: dict) -> None:
    done = int(extra["step"])
    losses[:, :done] = np.asarray(extra["losses"])[:, :done]

  def describe_bad(done: int, state: TrainState, metrics: dict) -> str:
    loss_ok = np.isfinite(np.asarray(metrics["loss"]))
    lane_ok = loss_ok & np.asarray(jax.vmap(all_finite)(state.params))
    bad = ", ".join(f"lr={lanes[j].lr:g}" for j in np.flatnonzero(~lane_ok))
    what = "loss" if not loss_ok.all() else "parameters"
    return (f"arm {arm.name}: {what} became NaN/inf at step {done} for {bad}; lower that "
            "learning rate")

  state = fit(step_fn=step, state=init_state(cfg, base, arm, lanes, pl.tx), batches=batches,
              key=jax.random.key(0), num_steps=tc.steps, out_dir=out_dir, log_every=1,  # key unused
              ckpt_every=tc.ckpt_every, checkpointer=ckpt, desc=desc or f"tune {arm.name}",
              on_step=record, on_restore=restore,
              extra_fn=lambda: {"losses": np.nan_to_num(losses).tolist()},
              describe_bad=describe_bad)
  trainable = int(sum(np.prod(x.shape[1:]) for x in jax.tree.leaves(state.params)))
  if arm.heads and arm.kind == "lora":
    one_lane = jax.tree.map(lambda x: x[0], state.params)
    trainable = lora_lib.lora_param_count(one_lane, _lora_masks(cfg, arm, one_lane))

  def params_of(i: int) -> dict:
    lane = jax.tree.map(lambda x: x[i], state.params)
    index = jax.tree.map(lambda x: x[i], state.model_state["index"])
    return pl.to_params(lane, base, index)

  return SweepResult(losses, state, trainable, pl.start, params_of)


def train(cfg: decoder.DecoderConfig, base: dict, arm: Arm, data: dict, *, lr: float,
          seed: int = 0, tc: TrainConfig = TrainConfig(), out_dir=None) -> tuple[dict, dict]:
  """One lane: ``(tuned params, {"trainable", "first_loss", "final_loss", "start_layer"})``."""
  res = sweep(cfg, base, arm, data, [Lane(lr, seed)], tc, out_dir=out_dir)
  return res.params_of(0), {"trainable": res.trainable, "first_loss": float(res.losses[0, 0]),
                            "final_loss": float(res.losses[0, -1]),
                            "start_layer": res.start_layer}


class ChunkedSweep(NamedTuple):
  """``sweep_chunked``'s result: per-lane evaluation rows, losses and kept parameters."""

  rows: list[dict]          # evaluate(params) of every lane, in lane order
  losses: np.ndarray        # [lanes, steps]
  trainable: int
  start_layer: int          # the lowest over the chunks
  kept: dict[int, dict]     # lane index -> host params, for the lanes ``keep`` chose


def chunk_dir(root: pathlib.Path | str, index: int, lanes: Sequence[Lane],
              tc: TrainConfig) -> pathlib.Path:
  """``root/<index>-<hash>``: the hash covers the lanes (lr, seed, heads), the steps, batch,
  weight decay, target length and a non-fp32 compute dtype, so a changed grid or step count
  starts a fresh folder instead of restoring the wrong lanes."""
  fields = [tc.steps, tc.batch_size, tc.weight_decay, tc.target_len]
  if tc.compute_dtype != "float32":  # fp32 folders keep their earlier names
    fields.append(tc.compute_dtype)
  key = json.dumps([[float(ln.lr), int(ln.seed), [[int(x) for x in h] for h in (ln.heads or ())]]
                    for ln in lanes] + fields)
  return pathlib.Path(root) / f"{index}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def sweep_chunked(cfg: decoder.DecoderConfig, base: dict, arm: Arm, data: dict,
                  lanes: Sequence[Lane], tc: TrainConfig, *,
                  evaluate: Callable[[dict], dict], lane_chunk: int = 0,
                  out_dir: pathlib.Path | str | None = None,
                  keep: Callable[[int, Lane], bool] = lambda i, lane: False,
                  desc: str | None = None) -> ChunkedSweep:
  """``sweep`` over ``lane_chunk`` lanes at a time (memory), resumable inside an arm.

  Args:
    evaluate: tuned params -> a JSON-able dict of numbers (one row per lane).
    lane_chunk: lanes per vmapped program (0: all in one).
    out_dir: with ``tc.ckpt_every``, each chunk trains under ``chunk_dir(out_dir, c, ...)``
      with orbax checkpoints and saves its rows to ``rows.json``; a rerun restores a finished
      chunk's last step (no training) and its rows (no evaluation), and resumes an
      unfinished chunk from its last checkpoint.
    keep: which lanes' tuned params to return (host copies), e.g. seed 0 of every lr.
  """
  if not lanes:
    raise ConfigError("sweep needs at least one Lane(lr, seed).")
  size = lane_chunk if lane_chunk > 0 else len(lanes)
  rows, losses, starts, kept, trainable = [], [], [], {}, 0
  for c, start in enumerate(range(0, len(lanes), size)):
    chunk = lanes[start:start + size]
    where = chunk_dir(out_dir, c, chunk, tc) if out_dir is not None and tc.ckpt_every else None
    name = f"{desc or 'tune ' + arm.name} {c}" if len(lanes) > size else desc
    res = sweep(cfg, base, arm, data, chunk, tc, out_dir=where, desc=name)
    trainable = res.trainable
    starts.append(res.start_layer)
    losses.append(res.losses)
    done = where / "rows.json" if where is not None else None
    restored = done is not None and done.exists()   # finished earlier: no evaluation
    fresh = []
    for i, ln in enumerate(chunk):   # one lane's params at a time (full FT: a model each)
      if restored and not keep(start + i, ln):
        continue
      tuned = res.params_of(i)
      if not restored:
        fresh.append(evaluate(tuned))
      if keep(start + i, ln):
        kept[start + i] = jax.device_get(tuned)
    if done is not None and not restored:
      write_json(done, fresh)
    rows.extend(json.loads(done.read_text()) if restored else fresh)
    del res
  return ChunkedSweep(rows, np.concatenate(losses), trainable, min(starts), kept)


def sweep_then_seeds(cfg: decoder.DecoderConfig, base: dict, arm: Arm, data: dict,
                     lanes: Sequence[Lane], tc: TrainConfig, *,
                     score: Callable[[dict], float], evaluate: Callable[[dict], dict],
                     lane_chunk: int = 0, out_dir: pathlib.Path | str | None = None,
                     keep: Callable[[int, Lane], bool] = lambda i, lane: False,
                     desc: str | None = None) -> tuple[list[Lane], ChunkedSweep, float]:
  """Two-stage protocol over a grid of lanes (every lr x seed): first the lowest seed of each
  lr, then the other seeds of the lr whose first-stage row has the highest ``score`` (a
  validation number). It trains ``n_lr + n_seeds - 1`` lanes instead of ``n_lr * n_seeds``;
  the lr is chosen on one seed, the reported lr then has every seed.

  Stage 1 trains under ``out_dir`` (with one lane per chunk, the same folders as a one-seed
  grid run), stage 2 under ``out_dir/seeds``; both resume as ``sweep_chunked``.

  Returns:
    ``(lanes run, in order: stage 1 then stage 2; their ChunkedSweep; the chosen lr)``.
    ``keep`` and the sweep's ``kept`` use indices into the returned lanes.
  """
  if not lanes:
    raise ConfigError("sweep needs at least one Lane(lr, seed).")
  seed0 = min(ln.seed for ln in lanes)
  first = [ln for ln in lanes if ln.seed == seed0]
  if len({ln.lr for ln in first}) != len(first):
    raise ConfigError(f"arm {arm.name}: two lanes share lr and seed; a grid has one per pair.")
  a = sweep_chunked(cfg, base, arm, data, first, tc, evaluate=evaluate, lane_chunk=lane_chunk,
                    out_dir=out_dir, keep=keep, desc=desc)
  best = first[int(np.argmax([score(r) for r in a.rows]))].lr
  more = [ln for ln in lanes if ln.lr == best and ln.seed != seed0]
  if not more:
    return first, a, best
  n = len(first)
  b = sweep_chunked(cfg, base, arm, data, more, tc, evaluate=evaluate, lane_chunk=lane_chunk,
                    out_dir=None if out_dir is None else pathlib.Path(out_dir) / "seeds",
                    keep=lambda i, ln: keep(n + i, ln),
                    desc=f"{desc or 'tune ' + arm.name} seeds")
  both = ChunkedSweep(a.rows + b.rows, np.concatenate([a.losses, b.losses]), a.trainable,
                      min(a.start_layer, b.start_layer),
                      {**a.kept, **{n + i: p for i, p in b.kept.items()}})
  return first + more, both, best


def sweep_lanes(cfg: decoder.DecoderConfig, base: dict, arm: Arm, data: dict,
                lanes: Sequence[Lane], tc: TrainConfig, *, protocol: str,
                score: Callable[[dict], float],
                **kw) -> tuple[list[Lane], ChunkedSweep, float | None]:
  """One arm under a seed protocol: "grid" (every lane, ``sweep_chunked``; no lr chosen here)
  or "best" (``sweep_then_seeds``). Returns ``(lanes run, sweep, chosen lr or None)``."""
  if protocol == "grid":
    return list(lanes), sweep_chunked(cfg, base, arm, data, lanes, tc, **kw), None
  if protocol == "best":
    return sweep_then_seeds(cfg, base, arm, data, lanes, tc, score=score, **kw)
  raise ConfigError(f"seed protocol {protocol!r}: use 'grid' (every lr x seed) or 'best' "
                    "(seeds at the lr seed 0 picks).")
