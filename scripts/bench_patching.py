"""Benchmark: the full [30 x 9] path-patching map of SmolLM2-135M on 32 prompts.

Compares, in one process on the same dequantized weights and prompts:
  1. jaxlab fast path (one jitted call for all 270 heads, spec e.2);
  2. jaxlab naive (one full forward per head, jitted once);
  3. the SPT reference approach: transformers ``LlamaForCausalLM`` (PyTorch, eager attention)
     with forward hooks, one forward per head (``path_patching_hf.py`` semantics: o_proj input
     slice of head h at the last position from x_c; later self_attn inputs at the last
     position reset to x_r's; MLPs recompute).
The naive and PyTorch loops cost ~270 full forwards; by default they run on ``--heads`` heads
spread over all layers and their time is extrapolated to 270 (printed as such); ``--heads 270``
runs them in full. Scores: ``100 * mean((l_p(C) - l_r(C)) / l_r(C))`` (paper 1's relative
logit change). Prints seconds, ratios and the largest score difference.

  .venv/bin/python scripts/bench_patching.py [--prompts 32] [--heads 30] [--threads 2]
"""

import argparse
import time

import jax
import numpy as np


def build_prompts(tok, n):
  from jaxlab.methods.arith_heads import data

  s = data.build(tok, op="+", template="equation", shots=4, draws=5, seed=0)
  idx = np.random.default_rng(0).permutation(len(s))[:n]
  return s.take(idx)


def torch_model(cfg, params):
  """transformers Llama with jaxlab's (un-permuted, HF-order) weights."""
  import torch
  from transformers import LlamaConfig, LlamaForCausalLM

  hf = LlamaConfig(vocab_size=cfg.vocab_size, hidden_size=cfg.d_model,
                   intermediate_size=cfg.d_ff, num_hidden_layers=cfg.n_layers,
                   num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.kv_heads,
                   rms_norm_eps=cfg.norm_eps, rope_theta=cfg.rope_theta,
                   max_position_embeddings=cfg.max_positions, tie_word_embeddings=True,
                   attn_implementation="eager")
  model = LlamaForCausalLM(hf).eval()
  p = jax.tree.map(np.asarray, params)
  lay, D = p["layers"], cfg.d_model
  sd = {"model.embed_tokens.weight": p["embed"], "model.norm.weight": p["final_norm_scale"],
        "lm_head.weight": p["embed"]}
  for i in range(cfg.n_layers):
    pre = f"model.layers.{i}."
    sd[pre + "input_layernorm.weight"] = lay["attn_norm_scale"][i]
    sd[pre + "post_attention_layernorm.weight"] = lay["mlp_norm_scale"][i]
    for name, w in (("q", "wq"), ("k", "wk"), ("v", "wv")):
      sd[pre + f"self_attn.{name}_proj.weight"] = lay[w][i].reshape(D, -1).T
    sd[pre + "self_attn.o_proj.weight"] = lay["wo"][i].reshape(-1, D).T
    sd[pre + "mlp.gate_proj.weight"] = lay["w_gate"][i].T
    sd[pre + "mlp.up_proj.weight"] = lay["w_up"][i].T
    sd[pre + "mlp.down_proj.weight"] = lay["w_down"][i].T
  model.load_state_dict({k: torch.from_numpy(np.array(v, np.float32)) for k, v in sd.items()},
                        strict=False)
  return model


def torch_path_patching(model, cfg, ids_r, mask, ids_c, target, heads):
  """SPT's hook loop (path_patching_hf.py semantics): metric values [n_heads, b]."""
  import torch

  layers = model.model.layers
  d = cfg.d_model // cfg.n_heads
  ids_r, ids_c = torch.from_numpy(ids_r).long(), torch.from_numpy(ids_c).long()
  am = torch.from_numpy(mask).long()
  tgt = torch.from_numpy(target).long()
  attn_in, z_c, handles = {}, {}, []

  def record_attn(i):
    def hook(mod, args, kwargs):
      attn_in[i] = kwargs["hidden_states"][:, -1].clone()
    return hook

  def record_z(i):
    def hook(mod, args):
      z_c[i] = args[0][:, -1].clone()
    return hook

  def logit_c(ids):
    with torch.no_grad():
      out = model(input_ids=ids, attention_mask=am).logits[:, -1]
    return out.gather(1, tgt[:, None])[:, 0].numpy()

  handles = [l.self_attn.register_forward_pre_hook(record_attn(i), with_kwargs=True)
             for i, l in enumerate(layers)]
  m_ref = logit_c(ids_r)
  for h in handles:
    h.remove()
  handles = [l.self_attn.o_proj.register_forward_pre_hook(record_z(i))
             for i, l in enumerate(layers)]
  logit_c(ids_c)
  for h in handles:
    h.remove()
  out = []
  for (l, h) in heads:
    def patch_z(mod, args, l=l, h=h):
      x = args[0].clone()
      x[:, -1, h * d:(h + 1) * d] = z_c[l][:, h * d:(h + 1) * d]
      return (x,)

    def freeze(j):
      def hook(mod, args, kwargs):
        x = kwargs["hidden_states"].clone()
        x[:, -1] = attn_in[j]
        kwargs["hidden_states"] = x
        return args, kwargs
      return hook

    hs = [layers[l].self_attn.o_proj.register_forward_pre_hook(patch_z)]
    hs += [layers[j].self_attn.register_forward_pre_hook(freeze(j), with_kwargs=True)
           for j in range(l + 1, cfg.n_layers)]
    out.append(logit_c(ids_r))
    for x in hs:
      x.remove()
  return np.stack(out), m_ref


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--prompts", type=int, default=32)
  ap.add_argument("--heads", type=int, default=30, help="heads timed in the slow loops")
  ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
  args = ap.parse_args()

  import torch

  from jaxlab.core import bench as B
  from jaxlab.interp import fast, metrics, patching
  from jaxlab.models.loaders import load_model

  rec = B.Recorder("patching", vars(args))
  torch.set_num_threads(args.threads)
  cfg, params, tok = load_model("smollm2-135m-instruct")
  s = build_prompts(tok, args.prompts)
  pair = patching.Pair.make(s.ids_r, s.mask, s.ids_c, s.mask)
  metric = metrics.target_logit(s.target)
  L, H = cfg.n_layers, cfg.n_heads
  rng = np.random.default_rng(0)
  n = min(args.heads, L * H)
  sel = sorted(set(map(tuple, np.array(np.unravel_index(
    rng.choice(L * H, n, replace=False), (L, H))).T.tolist())))
  print(f"SmolLM2-135M, {len(s)} prompts x {s.ids_r.shape[1]} tokens, {L * H} heads; "
        f"slow loops timed on {len(sel)} heads, devices {jax.devices()[0].device_kind}")

  t = time.perf_counter()
  res = fast.path_patch_fast(cfg, params, pair, metric)
  jax.block_until_ready(res.heads)
  t_fast_first = time.perf_counter() - t
  t = time.perf_counter()
  res = fast.path_patch_fast(cfg, params, pair, metric)
  jax.block_until_ready(res.heads)
  t_fast = time.perf_counter() - t
  fast_scores = np.asarray(res.head_scores("relative"))
  print(f"jaxlab fast path : {t_fast:8.2f} s  (first call incl. compile {t_fast_first:.2f} s)",
        flush=True)

  patching.path_patch_naive(cfg, params, pair, metric, heads=sel[:1])  # compile
  t = time.perf_counter()
  nv = patching.path_patch_naive(cfg, params, pair, metric, heads=sel)
  t_naive = (time.perf_counter() - t) * (L * H) / len(sel)
  naive_scores = np.asarray(nv.head_scores("relative"))
  print(f"jaxlab naive     : {t_naive:8.2f} s (270 heads, from {len(sel)})", flush=True)

  model = torch_model(cfg, params)
  torch_path_patching(model, cfg, s.ids_r[:, -8:], s.mask[:, -8:], s.ids_c[:, -8:], s.target,
                      sel[:1])  # warm-up
  t = time.perf_counter()
  vals, m_ref = torch_path_patching(model, cfg, s.ids_r, s.mask, s.ids_c, s.target, sel)
  t_torch = (time.perf_counter() - t) * (L * H) / len(sel)
  torch_scores = 100 * np.mean((vals - m_ref) / m_ref, -1)

  idx = tuple(np.array(sel).T)
  d_torch = np.abs(fast_scores[idx] - torch_scores).max()
  d_naive = np.abs(fast_scores[idx] - naive_scores[idx]).max()
  d_ref = np.abs(np.asarray(res.m_ref) - m_ref).max()
  extrap = "" if len(sel) == L * H else f" (extrapolated from {len(sel)} heads)"
  print(f"PyTorch hooks    : {t_torch:8.2f} s{extrap}")
  print(f"speed-up fast vs PyTorch hooks: {t_torch / t_fast:.1f}x; vs jaxlab naive: "
        f"{t_naive / t_fast:.1f}x; incl. compile vs PyTorch: {t_torch / t_fast_first:.1f}x")
  print(f"max |score diff| (percentage points) fast vs PyTorch: {d_torch:.2e}; "
        f"fast vs naive: {d_naive:.2e}; max |logit_r diff| jax vs torch: {d_ref:.2e}")
  top_f = [divmod(int(i), H) for i in np.argsort(fast_scores.ravel())[:5]]
  print(f"top-5 heads (fast): {', '.join(f'{a}.{b}' for a, b in top_f)}")
  rec.row("full path-patching map, fast path vs PyTorch hook loop", jaxlab_s=t_fast,
          baseline_s=t_torch, goal=40.0, compile_s=t_fast_first, max_score_diff=float(d_torch),
          heads_timed=len(sel), torch_threads=args.threads)
  rec.row("full path-patching map incl. compile vs PyTorch hook loop", jaxlab_s=t_fast_first,
          baseline_s=t_torch)
  rec.row("fast path vs jaxlab naive per-head loop", jaxlab_s=t_fast, baseline_s=t_naive)
  rec.finish()


if __name__ == "__main__":
  main()
