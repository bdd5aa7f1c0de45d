"""Bench: SPT's masked loss (unembed only the supervised tail) vs full-logit loss.

What a user would otherwise write is the plain loss over ``apply``'s full
``[b, t, V]`` logits. Both run the same value_and_grad on the same batch in one
process; prints seconds per step and the ratio.

  python scripts/bench_spt.py [--model smollm2|tiny-random] [--steps 3]
"""

import argparse

import jax
import jax.numpy as jnp
import optax

from jaxlab.core import bench as B
from jaxlab.methods.spt import pipeline, questions, train_data, tune
from jaxlab.models import decoder


def _full_loss(cfg, params, batch):
  logits, _ = decoder.apply(cfg, params, batch["ids"], batch["mask"])
  ce = optax.softmax_cross_entropy_with_integer_labels(logits[:, :-1], batch["ids"][:, 1:])
  w = batch["loss_mask"][:, 1:]
  return jnp.sum(ce * w) / jnp.maximum(jnp.sum(w), 1.0)


def _time(fn, params, batch, steps):
  return B.time_call(lambda: jax.block_until_ready(fn(params, batch)), reps=steps)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--model", default="smollm2")
  ap.add_argument("--steps", type=int, default=3)
  ap.add_argument("--batch", type=int, default=8)
  args = ap.parse_args()
  rec = B.Recorder("spt", vars(args))
  cfg, params, tok = pipeline.load_model(args.model)
  convs = train_data.build_conversations([questions.arithmetic_mc(2 * args.batch)])
  data = train_data.tokenize(tok, convs[:args.batch], max_len=160)
  batch = {k: jnp.asarray(v) for k, v in data.items()}
  n = int(data["loss_mask"].sum(1).max()) + 8
  tail = jax.jit(jax.value_and_grad(lambda p, b: tune.masked_ce(cfg, p, b, n)))
  full = jax.jit(jax.value_and_grad(lambda p, b: _full_loss(cfg, p, b)))
  lt, _ = tail(params, batch)
  lf, _ = full(params, batch)
  print(f"loss tail {float(lt):.5f} vs full {float(lf):.5f} (equal: same targets)")
  tt = _time(tail, params, batch, args.steps)
  tf = _time(full, params, batch, args.steps)
  t_tail, t_full = tt["steady_s"], tf["steady_s"]
  print(f"{args.model} batch {args.batch}x160: full-logit loss {t_full:.2f} s/step, "
        f"tail loss {t_tail:.2f} s/step, speed-up x{t_full / t_tail:.2f} "
        f"(compile {tt['compile_s']:.1f} s / {tf['compile_s']:.1f} s)")
  rec.row("SPT tail-only masked loss fwd+bwd vs full-logit loss", jaxlab_s=t_tail,
          baseline_s=t_full, compile_s=tt["compile_s"], loss_diff=abs(float(lt) - float(lf)))
  rec.finish()


if __name__ == "__main__":
  main()
