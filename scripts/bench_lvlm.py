"""Bench: batched LLaVA generation, jaxlab (jit + KV cache) vs transformers ``generate``.

Same tiny random ``LlavaForConditionalGeneration`` weights (built with torch, saved, loaded by
jaxlab), the same left-padded batch of prompts with one image each, greedy, a fixed number of
new tokens (EOS disabled). Prints tokens/s of each, the ratio and the share of identical
tokens; one JSON record via jaxlab.core.bench.

  python scripts/bench_lvlm.py [--batch 8] [--new 64] [--reps 3] [--threads 0]
"""

import argparse
import tempfile

import jax
import numpy as np

from jaxlab.core import bench as B
from jaxlab.models import lvlm
from jaxlab.models.loaders.llava import load_llava

IMG = 99


def build(path, d_model: int, layers: int):
  import torch
  import transformers

  vc = transformers.CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                                     num_attention_heads=4, image_size=32, patch_size=8)
  tc = transformers.LlamaConfig(vocab_size=100, hidden_size=d_model, intermediate_size=2 * d_model,
                                num_hidden_layers=layers, num_attention_heads=4,
                                num_key_value_heads=2, max_position_embeddings=512)
  conf = transformers.LlavaConfig(vision_config=vc, text_config=tc, image_token_index=IMG,
                                  image_seq_length=16)
  torch.manual_seed(0)
  model = transformers.LlavaForConditionalGeneration(conf).eval()
  model.save_pretrained(path)
  model.generation_config.eos_token_id = None
  return model


def batch(b: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  rows = [[1, IMG] + list(rng.integers(3, IMG, int(rng.integers(12, 25)))) for _ in range(b)]
  rows = [lvlm.expand_image_tokens(r, IMG, 16) for r in rows]
  t = max(map(len, rows))
  ids, mask = np.zeros((b, t), np.int32), np.zeros((b, t), np.int32)
  for i, r in enumerate(rows):
    ids[i, t - len(r):], mask[i, t - len(r):] = r, 1
  return ids, mask, rng.standard_normal((b, 32, 32, 3)).astype(np.float32)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--batch", type=int, default=8)
  ap.add_argument("--new", type=int, default=64)
  ap.add_argument("--reps", type=int, default=3)
  ap.add_argument("--d-model", type=int, default=64)
  ap.add_argument("--layers", type=int, default=2)
  ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
  args = ap.parse_args()
  import torch

  if args.threads:
    torch.set_num_threads(args.threads)
  rec = B.Recorder("lvlm", vars(args))
  with tempfile.TemporaryDirectory() as d:
    model = build(d, args.d_model, args.layers)
    cfg, params, _, _ = load_llava(d)
  ids, mask, pix = batch(args.batch)
  n_tok = args.batch * args.new

  def ours():
    g = lvlm.generate(cfg, params, ids, mask, pix, max_new_tokens=args.new, stop_ids=())
    return np.asarray(jax.block_until_ready(g.tokens))

  t_ids, t_mask = torch.tensor(ids, dtype=torch.long), torch.tensor(mask, dtype=torch.long)
  t_pix = torch.tensor(pix.transpose(0, 3, 1, 2))

  def theirs():
    with torch.no_grad():
      out = model.generate(input_ids=t_ids, attention_mask=t_mask, pixel_values=t_pix,
                           do_sample=False, max_new_tokens=args.new, min_new_tokens=args.new,
                           pad_token_id=0)
    return out[:, ids.shape[1]:].numpy()

  tj = B.time_call(ours, reps=args.reps)
  tt = B.time_call(theirs, reps=args.reps)
  same = float((ours() == theirs()).mean())
  ours_tps, theirs_tps = n_tok / tj["steady_s"], n_tok / tt["steady_s"]
  print(f"batch {args.batch} x {args.new} new tokens (prompts {ids.shape[1]} incl. 16 image "
        f"tokens): jaxlab {ours_tps:.0f} tok/s (compile {tj['compile_s']:.1f} s), "
        f"transformers generate {theirs_tps:.0f} tok/s; ratio x{ours_tps / theirs_tps:.2f}; "
        f"identical tokens {100 * same:.1f}%")
  rec.row(f"LLaVA greedy generation b={args.batch} new={args.new} (tiny random)",
          jaxlab_s=tj["steady_s"], baseline_s=tt["steady_s"], compile_s=tj["compile_s"],
          goal=1.5, jaxlab_tok_s=ours_tps, baseline_tok_s=theirs_tps, identical_tokens=same)
  rec.finish()


if __name__ == "__main__":
  main()
