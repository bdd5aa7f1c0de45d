"""Bench: one SPT head-arm training step, jaxlab's loop vs the masked full-tree step.

The alternative a user would write (and jaxlab's previous ``spt.tune``): gradients of
the whole parameter tree through the full forward, masked to the selected slices by
``tuning.pinpoint`` around AdamW (tail-only unembedding in both). jaxlab's loop
trains the gathered slices only and starts the differentiated forward at the lowest
tuned layer (``start_layer``), the frozen prefix computed once per batch without a
backward pass. A third row isolates ``start_layer``: the loop with ``start_layer=0``; a
fourth times the loop in bf16 mixed precision (``TrainConfig.compute_dtype``).
Same batch, same heads, one process; prints seconds per step, ratios and the load.

  python scripts/bench_spt.py [--model smollm2|tiny-random] [--steps 3] [--batch 8]
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab.core import bench as B
from jaxlab.core.state import TrainState
from jaxlab.methods.spt import pipeline, questions, train_data
from jaxlab.tuning import loop, masks, transform

# The top-8 heads of the SmolLM2 localisation (docs/spt.md); tiny-random uses its own.
SMOLLM2_HEADS = ((21, 1), (25, 6), (24, 6), (21, 4), (17, 0), (21, 3), (14, 1), (21, 0))


def _masked_step(cfg, params, heads, n):
  """The masked full-tree step: what the loop replaces."""
  m = masks.head_masks(params, list(heads), n_heads=cfg.n_heads, n_kv_heads=cfg.kv_heads)
  tx = transform.pinpoint(optax.adamw(1e-3, weight_decay=0.1), m)

  @jax.jit
  def step(state, batch):
    loss, g = jax.value_and_grad(lambda p: loop.tail_ce(cfg, p, batch, n))(state.params)
    u, opt = tx.update(g, state.opt_state, state.params)
    return state.replace(params=optax.apply_updates(state.params, u), opt_state=opt), loss

  return TrainState.create(params, tx), step


def _loop_step(cfg, params, heads, n, start_layer, dtype="float32"):
  arm = loop.Arm(name="spt", heads=tuple(heads))
  tc = loop.TrainConfig(steps=100, batch_size=1, target_len=n, start_layer=start_layer,
                        compute_dtype=dtype)
  lanes = [loop.Lane(1e-3, 0)]
  pl = loop.plan(cfg, arm, tc, lanes, params)
  state = loop.init_state(cfg, params, arm, lanes, pl.tx)
  return state, loop.make_step(cfg, pl, tc), pl.start


def _time(step, state, batch, reps):
  """Seconds per step (first call = compile + run); the state is threaded through."""
  box = {"s": state}

  def call():
    box["s"], m = step(box["s"], batch)
    jax.block_until_ready(m)

  return B.time_call(call, reps=reps)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--model", default="smollm2")
  ap.add_argument("--steps", type=int, default=3)
  ap.add_argument("--batch", type=int, default=8)
  args = ap.parse_args()
  rec = B.Recorder("spt", vars(args))
  cfg, params, tok = pipeline.load_model(args.model)
  heads = SMOLLM2_HEADS if args.model == "smollm2" else ((1, 0), (1, 3))
  convs = train_data.build_conversations([questions.arithmetic_mc(2 * args.batch)],
                                         neutral_openers=True)
  data = train_data.tokenize(tok, convs[:args.batch], max_len=160)
  batch = {k: jnp.asarray(v) for k, v in data.items()}
  n = -(-int(data["loss_mask"].sum(1).max() + 1) // 8) * 8
  s_mask, f_mask = _masked_step(cfg, jax.tree.map(jnp.array, params), heads, n)
  s_loop, f_loop, start = _loop_step(cfg, params, heads, n, None)
  s_l0, f_l0, _ = _loop_step(cfg, params, heads, n, 0)
  s_bf, f_bf, _ = _loop_step(cfg, params, heads, n, None, "bfloat16")
  vbatch = jax.tree.map(lambda x: x[None], batch)  # one lane
  t_mask = _time(f_mask, s_mask, batch, args.steps)
  t_loop = _time(lambda s, b: f_loop(s, b, None, params), s_loop, vbatch, args.steps)
  t_l0 = _time(lambda s, b: f_l0(s, b, None, params), s_l0, vbatch, args.steps)
  t_bf = _time(lambda s, b: f_bf(s, b, None, params), s_bf, vbatch, args.steps)
  a, b, c, d = t_mask["steady_s"], t_loop["steady_s"], t_l0["steady_s"], t_bf["steady_s"]
  load = B.machine_load()
  print(f"{args.model} batch {args.batch}x160, {len(heads)} heads, start_layer={start}: "
        f"masked full-tree step {a:.3f} s, loop (slices, start_layer) {b:.3f} s -> x{a / b:.2f}; "
        f"loop with start_layer=0 {c:.3f} s (start_layer alone x{c / b:.2f}); "
        f"loop in bf16 {d:.3f} s (x{b / d:.2f} vs fp32 loop); load {load}")
  rec.row("SPT head step: loop (slices + start_layer) vs masked full-tree AdamW",
          jaxlab_s=b, baseline_s=a, compile_s=t_loop["compile_s"])
  rec.row("SPT head step: start_layer alone (loop, start_layer=auto vs 0)",
          jaxlab_s=b, baseline_s=c, compile_s=t_l0["compile_s"])
  rec.row("SPT head step: loop in bf16 mixed precision vs the fp32 loop",
          jaxlab_s=d, baseline_s=b, compile_s=t_bf["compile_s"])
  rec.finish()
  return np.asarray([a, b, c, d])


if __name__ == "__main__":
  main()
