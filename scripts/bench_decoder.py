"""Benchmark: SmolLM2-135M-Instruct on CPU, jaxlab (JAX) vs transformers (PyTorch).

Same weights (the dequantised GGUF), same left-padded prompts, one process. Measures prefill
tokens/s (one forward over the batch) and batched greedy generation tokens/s (KV cache,
incl. prefill), median of repeats after a warm-up (jaxlab compile time reported apart).

  .venv/bin/python scripts/bench_decoder.py [--batch 4] [--prompt-len 48] [--new 24] [--threads N]
"""

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch

from jaxlab.core import bench as B
from jaxlab.models import decoder
from jaxlab.models.generate import generate
from jaxlab.models.loaders import load_smollm2
from jaxlab.models.loaders.export import torch_llama
from jaxlab.models.tokenizer import pad_left

TEXT = ("The history of the city begins in the Roman period, when a small settlement grew up on "
        "an island in the river. Over the following centuries it became the seat of kings, a "
        "centre of learning and trade, and eventually one of the largest cities in Europe, with "
        "museums, universities, markets, bridges, churches and a famous cathedral by the water.")


def timed_pair(f_a, f_b, repeats):
  """Median wall seconds of `repeats` alternating calls of f_a and f_b (shared noise)."""
  times_a, times_b = [], []
  for _ in range(repeats):
    for fn, times in ((f_a, times_a), (f_b, times_b)):
      t0 = time.perf_counter()
      fn()
      times.append(time.perf_counter() - t0)
  return statistics.median(times_a), statistics.median(times_b)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--batch", type=int, default=4)
  ap.add_argument("--prompt-len", type=int, default=48)
  ap.add_argument("--new", type=int, default=24)
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--threads", type=int, default=None,
                  help="torch intra-op threads (default: torch's own choice)")
  ap.add_argument("--out", default=None, help="write the numbers as JSON here")
  args = ap.parse_args()
  rec = B.Recorder("decoder", vars(args))
  if args.threads:
    torch.set_num_threads(args.threads)
  args.threads = torch.get_num_threads()
  cfg, params, tok = load_smollm2()
  ids_all = tok.encode(TEXT * 4)
  prompts = [ids_all[i:i + args.prompt_len - 2 * (i % 4)] for i in range(args.batch)]
  ids, mask = pad_left(prompts, tok.pad_id)
  n_real = int(mask.sum())
  model = torch_llama(cfg, params)
  ids_t, mask_t = torch.tensor(ids, dtype=torch.long), torch.tensor(mask, dtype=torch.long)
  pos_t = (mask_t.cumsum(-1) - 1).clamp(min=0)
  jids, jmask = jnp.asarray(ids), jnp.asarray(mask)

  def jax_prefill():
    decoder.jit_apply(cfg, params, jids, jmask)[0].block_until_ready()

  def torch_prefill():
    with torch.no_grad():
      model(input_ids=ids_t, attention_mask=mask_t, position_ids=pos_t)

  def jax_gen():
    return generate(cfg, params, jids, jmask, max_new_tokens=args.new, stop_ids=()).tokens \
      .block_until_ready()

  def torch_gen():
    with torch.no_grad():
      return model.generate(input_ids=ids_t, attention_mask=mask_t, do_sample=False,
                            max_new_tokens=args.new, pad_token_id=tok.pad_id)

  t0 = time.perf_counter()
  jax_prefill()
  compile_prefill = time.perf_counter() - t0
  t0 = time.perf_counter()
  jtoks = np.asarray(jax_gen())
  compile_gen = time.perf_counter() - t0
  torch_prefill()
  ttoks = torch_gen()[:, ids.shape[1]:].numpy()
  agree = float((jtoks == ttoks).mean())
  res = {"batch": args.batch, "prompt_tokens": n_real, "new_tokens": args.new,
         "torch_threads": args.threads, "jax_devices": str(jax.devices()[0].platform),
         "greedy_token_agreement": agree,
         "jax_compile_s": {"prefill": compile_prefill, "generate": compile_gen}}
  for name, (jf, tf, work) in {"prefill": (jax_prefill, torch_prefill, n_real),
                               "generate": (jax_gen, torch_gen, args.batch * args.new)}.items():
    tj, tt = timed_pair(jf, tf, args.repeats)
    res[name] = {"jaxlab_tok_s": work / tj, "torch_tok_s": work / tt, "speedup": tt / tj}
  print(f"SmolLM2-135M fp32, batch {args.batch}, ~{args.prompt_len}-token prompts, "
        f"{args.new} new tokens, torch threads {args.threads}")
  print(f"{'phase':10s} {'jaxlab tok/s':>14s} {'torch tok/s':>14s} {'jaxlab/torch':>13s}")
  for name in ("prefill", "generate"):
    r = res[name]
    print(f"{name:10s} {r['jaxlab_tok_s']:14.1f} {r['torch_tok_s']:14.1f} {r['speedup']:12.2f}x")
  print(f"jaxlab compile: prefill {compile_prefill:.1f}s, generate {compile_gen:.1f}s; "
        f"greedy tokens identical to torch: {agree:.1%}")
  for name, comp in (("prefill", compile_prefill), ("generate", compile_gen)):
    r = res[name]
    rec.row(f"SmolLM2-135M {name} tokens/s vs transformers (torch {args.threads} threads)",
            ratio=r["speedup"], compile_s=comp, jaxlab_tok_s=r["jaxlab_tok_s"],
            torch_tok_s=r["torch_tok_s"], greedy_token_agreement=agree)
  rec.finish()
  if args.out:
    with open(args.out, "w") as f:
      json.dump(res, f, indent=2)


if __name__ == "__main__":
  main()
