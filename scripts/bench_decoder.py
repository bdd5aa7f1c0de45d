"""Benchmark: SmolLM2-135M-Instruct on CPU, jaxlab (JAX) vs transformers (PyTorch).

Same weights (the dequantised GGUF), same left-padded prompts, one process. Measures prefill
tokens/s (one forward over the batch) and batched greedy generation tokens/s (KV cache,
incl. prefill), median of repeats after a warm-up (jaxlab compile time reported apart).

  .venv/bin/python scripts/bench_decoder.py [--batch 4] [--prompt-len 48] [--new 24] [--threads N]

Pod-scale checks (no torch; on CPU the mesh is made of fake devices):

  .venv/bin/python scripts/bench_decoder.py --mesh data=2,model=4   # SmolLM2 loaded sharded:
      per-device parameter bytes (goal total/4 for sharded tensors), tokens/s mesh vs 1 device
  .venv/bin/python scripts/bench_decoder.py --synthetic 1b --mesh data=1,model=8
      # a random 0.98B-parameter bf16 Llama written to disk, loaded sharded: peak RSS
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core import bench as B
from jaxlab.models import decoder
from jaxlab.models.generate import generate
from jaxlab.models.loaders import load_smollm2
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


def _parse_mesh(text):
  return {k: int(v) for k, v in (part.split("=") for part in text.split(","))}


def _rss_mb():
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) / 1024
  return float("nan")


def _prompts(tok, batch, prompt_len):
  ids_all = tok.encode(TEXT * 4)
  return pad_left([ids_all[i:i + prompt_len - 2 * (i % 4)] for i in range(batch)], tok.pad_id)


def _mesh(text):
  from jaxlab.core.sharding import make_mesh  # noqa: PLC0415

  shape = _parse_mesh(text)
  need = int(np.prod(list(shape.values())))
  devices = jax.devices() if len(jax.devices()) == need else jax.devices("cpu")[:need]
  return shape, make_mesh(shape, devices=devices)


def mesh_main(args, rec):
  """SmolLM2 loaded straight into shards on the mesh; bytes per device; tokens/s vs 1 device."""
  from jaxlab.models import decoder_mesh  # noqa: PLC0415

  shape, mesh = _mesh(args.mesh)
  t0 = time.perf_counter()
  cfg, sp, tok = load_smollm2(mesh=mesh)
  load_s = time.perf_counter() - t0
  specs = jax.tree.leaves(decoder_mesh.param_specs(cfg, mesh),
                          is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))
  leaves = jax.tree.leaves(sp)
  total = sum(x.nbytes for x in leaves)
  sharded = sum(x.nbytes for x, s in zip(leaves, specs) if "model" in s)
  per_dev = decoder_mesh.bytes_per_device(sp)
  per_dev_sharded = {}
  for x, s in zip(leaves, specs):
    if "model" in s:
      for sh in x.addressable_shards:
        per_dev_sharded[sh.device.id] = per_dev_sharded.get(sh.device.id, 0) + sh.data.nbytes
  m = shape.get("model", 1)
  dev0 = mesh.devices.flat[0]
  params1 = jax.device_put(sp, dev0)
  ids, mask = _prompts(tok, args.batch, args.prompt_len)
  sids, smask = decoder_mesh.shard_batch(mesh, ids, mask)
  jids, jmask = jax.device_put((jnp.asarray(ids), jnp.asarray(mask)), dev0)
  n_real = int(mask.sum())

  def run(params, i, mk, fn, with_mesh):
    if not with_mesh:
      return fn(params, i, mk)
    with jax.set_mesh(mesh):
      return fn(params, i, mk)

  prefill = lambda p, i, mk: decoder.jit_apply(cfg, p, i, mk)[0].block_until_ready()
  gen = lambda p, i, mk: np.asarray(generate(cfg, p, i, mk, max_new_tokens=args.new,
                                             stop_ids=()).tokens)
  res = {"mesh": shape, "devices": f"{mesh.size} x {dev0.device_kind}", "load_sharded_s": load_s,
         "param_bytes_total": total, "param_bytes_sharded_tensors": sharded,
         "per_device_bytes_max": max(per_dev.values()),
         "per_device_sharded_bytes_max": max(per_dev_sharded.values()),
         "goal_sharded_per_device": sharded / m}
  tok_same = None
  for name, fn, work in (("prefill", prefill, n_real), ("generate", gen, args.batch * args.new)):
    one = B.time_call(lambda fn=fn: run(params1, jids, jmask, fn, False), reps=args.repeats)
    msh = B.time_call(lambda fn=fn: run(sp, sids, smask, fn, True), reps=args.repeats)
    res[name] = {"one_device_tok_s": work / one["steady_s"], "mesh_tok_s": work / msh["steady_s"],
                 "compile_s_mesh": msh["compile_s"]}
    if name == "generate":
      tok_same = bool((run(params1, jids, jmask, fn, False) == run(sp, sids, smask, fn, True))
                      .all())
  res["greedy_identical"] = tok_same
  print(json.dumps(res, indent=1))
  print(f"SmolLM2-135M on mesh {shape}: {total / 2**20:.1f} MiB of parameters, "
        f"{sharded / 2**20:.1f} MiB in tensors the rules shard; per device "
        f"{max(per_dev_sharded.values()) / 2**20:.2f} MiB of them (goal total/{m} = "
        f"{sharded / m / 2**20:.2f} MiB), {max(per_dev.values()) / 2**20:.1f} MiB in all")
  for name in ("prefill", "generate"):
    r = res[name]
    print(f"{name:9s} mesh {r['mesh_tok_s']:9.1f} tok/s   one device {r['one_device_tok_s']:9.1f}"
          " tok/s")
  rec.row(f"SmolLM2 sharded on {args.mesh}: per-device bytes of sharded tensors / goal",
          ratio=(sharded / m) / max(per_dev_sharded.values()), goal=1.0,
          per_device_mb=max(per_dev.values()) / 2**20, total_mb=total / 2**20)
  rec.row(f"SmolLM2 generate tokens/s on {args.mesh} vs 1 device",
          ratio=res["generate"]["mesh_tok_s"] / res["generate"]["one_device_tok_s"],
          mesh_tok_s=res["generate"]["mesh_tok_s"], greedy_identical=tok_same)
  return res


def synthetic_main(args, rec):
  """A random ~1B-parameter bf16 checkpoint (written by a child process) loaded sharded."""
  from jaxlab.models import decoder_mesh  # noqa: PLC0415
  from jaxlab.models.loaders import load_hf, synthetic  # noqa: PLC0415

  cfg = synthetic.llama_1b()
  if args.synthetic != "1b":
    cfg = cfg.replace(n_layers=int(args.synthetic))
  path = args.synthetic_dir or os.path.join(tempfile.gettempdir(),
                                            f"jaxlab-synth-{cfg.n_layers}l")
  if not os.path.exists(os.path.join(path, "model.safetensors.index.json")):
    code = ("import sys; from jaxlab.models.loaders import synthetic as s; "
            f"s.write_random_llama(s.llama_1b().replace(n_layers={cfg.n_layers}), sys.argv[1])")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, path], check=True)
    print(f"wrote {path} in {time.perf_counter() - t0:.1f}s")
  _, mesh = _mesh(args.mesh)
  try:  # fixed glibc mmap threshold: freed per-layer blocks go back to the OS at once
    import ctypes  # noqa: PLC0415

    ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD = 1 MiB
  except OSError:
    pass
  base = _rss_mb()
  t0 = time.perf_counter()
  cfg2, params, _ = load_hf(path, "bfloat16", mesh=mesh)
  jax.block_until_ready(params)
  load_s = time.perf_counter() - t0
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  model_mb = sum(x.nbytes for x in jax.tree.leaves(params)) / 2**20
  per_dev = decoder_mesh.bytes_per_device(params)
  res = {"params": synthetic.n_params(cfg2), "model_mb": model_mb, "mesh": args.mesh,
         "rss_before_load_mb": base, "peak_rss_mb": peak, "peak_minus_base_mb": peak - base,
         "goal_peak_mb": 1.2 * model_mb, "load_s": load_s,
         "per_device_mb_max": max(per_dev.values()) / 2**20}
  print(json.dumps(res, indent=1))
  print(f"synthetic {res['params'] / 1e9:.2f}B params bf16 ({model_mb:.0f} MiB) loaded sharded on "
        f"{args.mesh} in {load_s:.1f}s: peak RSS {peak:.0f} MiB (process, incl. {base:.0f} MiB "
        f"before loading; goal < {1.2 * model_mb:.0f} MiB), max per device "
        f"{res['per_device_mb_max']:.0f} MiB")
  rec.row("synthetic 0.98B bf16 sharded load: (model size x 1.2) / peak RSS",
          ratio=1.2 * model_mb / peak, goal=1.0, peak_rss_mb=peak, model_mb=model_mb,
          load_s=load_s)
  return res


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--batch", type=int, default=4)
  ap.add_argument("--prompt-len", type=int, default=48)
  ap.add_argument("--new", type=int, default=24)
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--threads", type=int, default=None,
                  help="torch intra-op threads (default: torch's own choice)")
  ap.add_argument("--out", default=None, help="write the numbers as JSON here")
  ap.add_argument("--mesh", default=None, help="e.g. data=2,model=4: the pod-scale checks")
  ap.add_argument("--synthetic", default=None,
                  help="'1b' (or a layer count): load a random Llama sharded, report peak RSS")
  ap.add_argument("--synthetic-dir", default=None, help="where the random checkpoint lives")
  args = ap.parse_args()
  if args.mesh or args.synthetic:
    shape = _parse_mesh(args.mesh or "data=1,model=8")
    args.mesh = ",".join(f"{k}={v}" for k, v in shape.items())
    # fake CPU devices when the default backend has too few (set before any backend starts)
    jax.config.update("jax_num_cpu_devices", int(np.prod(list(shape.values()))))
    rec = B.Recorder("decoder_mesh" if not args.synthetic else "decoder_synthetic", vars(args))
    res = synthetic_main(args, rec) if args.synthetic else mesh_main(args, rec)
    rec.finish()
    if args.out:
      with open(args.out, "w") as f:
        json.dump(res, f, indent=2)
    return
  import torch  # noqa: PLC0415

  from jaxlab.models.loaders.export import torch_llama  # noqa: PLC0415

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
