"""One FedFed phase-2 round: jaxlab (vmapped clients, one jit) vs a PyTorch per-client loop.

Same work on both sides: Fashion-MNIST subset (6,000 images), K = 10 clients
(Dirichlet 0.1), all 10 in the round, small CNN (conv 16/32, fc 128), E = 1, batch
32 raw + 32 + 32 shared rows, SGD lr 0.01 / momentum 0.9 / wd 1e-4 with a per-client
persistent optimizer, crop(pad 4) + flip on every row, per local epoch a class-balanced
resample of both shared copies (q = n_k // C per class + remainder). The shared pool
holds two noised copies of every training image (an untrained VAE's x_s: the share is
one-shot and not timed). The PyTorch side is the reference pattern: per client, load
the global weights, ``random.sample`` the class-balanced subsets, a ``DataLoader`` over
a triples dataset (local, shared 1, shared 2), then the n_k-weighted average.
jaxlab's default engine is ``stepped`` (one client per CPU device, 2 devices, local
steps unrolled at the top level of a program) with XLA's own convolution: on XLA:CPU a
convolution's kernel gradient is slow only inside a loop or under ``vmap`` (spec §11),
and at the top level it costs ~40% less CPU than the im2col matmul the vmapped engine
needs. ``--engine vmap`` (im2col CNN, 4 optimal groups) is the previous default;
``--compare`` times both in this process. The CNN's one-channel first convolution runs
as ``shift_conv`` on CPU (``CNN(first_conv="auto")``, since 2026-12-07);
``--first-conv xla`` times ``nn.Conv`` there instead, ``--first-conv auto,xla`` both in
this process. CPU seconds are printed beside wall seconds (the shared machine's load
inflates wall time).
Run: python scripts/bench_fedfed.py [--engine stepped|vmap] [--compare] [--first-conv auto,xla]
[--reps N]
"""

import argparse
import random
import resource
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

K, S, B, C, ROUNDS = 10, 10, 32, 10, 2
CH, HID = (16, 32), 128


def data():
  from jaxlab.federated import partition
  from jaxlab.methods.fedfed import data as data_lib
  ds = data_lib.load("fashion_mnist", train_size=6000, test_size=100)
  return ds, partition.hetero(ds.y_train, K, 0.1, seed=0)


def cpu_s() -> float:
  r = resource.getrusage(resource.RUSAGE_SELF)
  return r.ru_utime + r.ru_stime


def timed(fn, reps: int) -> dict:
  """``bench.time_call`` plus the process CPU seconds of the steady calls (median)."""
  from jaxlab.core import bench
  cpus = []

  def call():
    c = cpu_s()
    fn()
    cpus.append(cpu_s() - c)

  t = bench.time_call(call, reps=reps)
  return {**t, "cpu_s": float(np.median(cpus[1:]))}


def jax_setup(ds, parts, engine: str, first_conv: str = "auto"):
  from jaxlab import federated as fl
  from jaxlab.methods import fedfed
  from jaxlab.models import CNN
  sample_x = jnp.asarray(ds.x_train[:B], jnp.float32) / 255.0
  cfg = fedfed.FedFedConfig(vae_width=8)
  im2col = engine == "vmap"      # vmapped scans need the matmul conv; stepped: XLA's conv
  ff = fedfed.make(CNN(num_classes=C, channels=CH, hidden=HID, im2col=im2col,
                       first_conv=first_conv),
                   CNN(num_classes=C, channels=(4, 8),
                   hidden=16), config=cfg, sample_x=sample_x,
                   client_tx=fl.client_sgd(0.01, 0.9, 1e-4), num_clients=K, num_classes=C,
                   batch_size=B, persist_opt_state=True)
  extra = fedfed.extra_fn(ds.y_train, C, cfg)(parts)
  data = fl.make_fed_data(ds.x_train, ds.y_train, parts, extra=extra)
  ecfg = fl.EngineConfig(batch_size=B, step_bucket="exact", groups=4, grouping="optimal")
  mesh = fl.clients_mesh() if engine == "stepped" else None
  p1 = fl.Engine(ff.phase.plugin, fl.EngineConfig(batch_size=cfg.vae_batch), data,
                 sampler=ff.phase_sampler).init(jax.random.key(2))
  eng = fl.Engine(ff.algorithm, ecfg, data, sampler=ff.sampler, mesh=mesh)
  sim = eng.init(jax.random.key(0))
  eng = eng.add_pool(ff.make_pool(data.idx.shape[1]), fl.phases.handoff(ff.phase, p1, sim),
                     jax.random.key(3))
  return eng, sim


def bench_jax(ds, parts, engine: str, reps: int, first_conv: str = "auto"):
  from jaxlab import federated as fl
  from jaxlab.core import bench
  eng, sim = jax_setup(ds, parts, engine, first_conv)
  state, key = {"sim": sim}, jax.random.key(1)
  run = eng.run_round if engine == "vmap" else (lambda s, i, k: fl.stepped.run_round(eng, s, i, k))

  def rounds():
    for r in range(ROUNDS):
      state["sim"], _ = run(state["sim"], fl.sample_clients(r, K, S), key)
    jax.block_until_ready(state["sim"])

  t = timed(rounds, reps)
  return {k: v / ROUNDS for k, v in t.items()}


def bench_torch(ds, parts, threads: int, reps: int):
  import torch
  from torch import nn
  from torch.utils.data import DataLoader, Dataset
  from jaxlab.core import bench
  from jaxlab import federated as fl
  if threads:
    torch.set_num_threads(threads)
  x = torch.tensor(ds.x_train[:, None, :, :, 0] / 255.0, dtype=torch.float32)
  y = torch.tensor(ds.y_train, dtype=torch.long)
  pool1 = x + 0.2 * torch.randn_like(x) - 0.5      # stand-ins for the two noised copies
  pool2 = x + 0.25 * torch.randn_like(x) - 0.5
  by_class = [torch.nonzero(y == c).flatten().tolist() for c in range(C)]

  def net():
    return nn.Sequential(nn.Conv2d(1, CH[0], 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
                         nn.Conv2d(CH[0], CH[1], 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
                         nn.Flatten(), nn.Linear(CH[1] * 49, HID), nn.ReLU(), nn.Linear(HID, C))

  def aug(xb):                                       # crop(pad 4) + flip per image
    pad = nn.functional.pad(xb, (4, 4, 4, 4))
    out = torch.empty_like(xb)
    for i in range(len(xb)):
      a, b = random.randint(0, 8), random.randint(0, 8)
      im = pad[i, :, a:a + 28, b:b + 28]
      out[i] = im.flip(-1) if random.random() < 0.5 else im
    return out

  class Triples(Dataset):
    def __init__(self, local, s1, s2):
      self.local, self.s1, self.s2 = local, s1, s2
    def __len__(self):
      return len(self.local)
    def __getitem__(self, i):
      a, b, c = self.local[i], self.s1[i], self.s2[i]
      return x[a], y[a], pool1[b], y[b], pool2[c], y[c]

  def balanced(n):
    q = n // C
    out = [i for c in range(C) for i in random.sample(by_class[c], q)]
    return out + random.sample(range(len(y)), n - q * C)

  model, glob = net(), net().state_dict()
  opt_states = {}

  def one_round(r):
    nonlocal glob
    ups, ws = [], []
    for k in fl.sample_clients(r, K, S):
      model.load_state_dict(glob)
      opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
      if k in opt_states:
        opt.load_state_dict(opt_states[k])
      local = parts[k].tolist()
      loader = DataLoader(Triples(local, balanced(len(local)), balanced(len(local))),
                          batch_size=B, shuffle=True)
      for xa, ya, x1, y1, x2, y2 in loader:
        out = model(torch.cat([aug(xa), aug(x1), aug(x2)]))
        loss = nn.functional.cross_entropy(out, torch.cat([ya, y1, y2]))
        opt.zero_grad()
        loss.backward()
        opt.step()
      opt_states[k] = opt.state_dict()
      ups.append({n: v.detach().clone() for n, v in model.state_dict().items()})
      ws.append(len(local))
    w = [wk / sum(ws) for wk in ws]
    glob = {n: sum(wk * u[n] for wk, u in zip(w, ups)) for n in glob}

  def rounds():
    for r in range(ROUNDS):
      one_round(r)

  t = timed(rounds, reps)
  return {k: v / ROUNDS for k, v in t.items()}


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--engine", default="stepped", choices=["vmap", "stepped"])
  ap.add_argument("--compare", action="store_true", help="also time the other engine")
  ap.add_argument("--torch-threads", type=int, default=0,
                  help="PyTorch intra-op threads (default 0: PyTorch's own default, all cores, "
                       "what a user gets; 1 was the default before 2026-12-06)")
  ap.add_argument("--first-conv", default="auto",
                  help="comma list of CNN.first_conv values to time (auto, xla, shift)")
  ap.add_argument("--reps", type=int, default=3)
  args = ap.parse_args()
  from jaxlab.core import bench
  rec = bench.Recorder("fedfed", {"K": K, "S": S, "B": B, "rounds": ROUNDS, "engine": args.engine})
  ds, parts = data()
  engines = [args.engine] + ([e for e in ("stepped", "vmap") if e != args.engine]
                             if args.compare else [])
  variants = {(e if fc == "auto" else f"{e}, first_conv={fc}"): (e, fc)
              for e in engines for fc in args.first_conv.split(",")}
  tj = {}
  for e, (engine, fc) in variants.items():
    tj[e] = bench_jax(ds, parts, engine, args.reps, fc)
    print(f"jaxlab FedAvg+FedFed phase-2 round ({e}): {tj[e]['steady_s']:.3f} s/round,"
          f" {tj[e]['cpu_s']:.3f} CPU s/round (first pass incl. compile"
          f" {tj[e]['compile_s']:.3f} s/round)", flush=True)
  try:
    tt = bench_torch(ds, parts, args.torch_threads, args.reps)
  except ImportError:
    print("torch not installed: no ratio")
    rec.finish()
    return
  import torch
  print(f"PyTorch per-client loop ({torch.get_num_threads()} threads):"
        f" {tt['steady_s']:.3f} s/round,"
        f" {tt['cpu_s']:.3f} CPU s/round")
  for e in variants:
    print(f"speed-up (torch / jaxlab {e}): {tt['steady_s'] / tj[e]['steady_s']:.2f}x wall,"
          f" {tt['cpu_s'] / tj[e]['cpu_s']:.2f}x CPU seconds")
    rec.row(f"FedFed phase-2 round, {e} vs torch loop", jaxlab_s=tj[e]["steady_s"],
            baseline_s=tt["steady_s"], compile_s=tj[e]["compile_s"] * ROUNDS, goal=1.5)
  rec.finish()


if __name__ == "__main__":
  jax.config.update("jax_num_cpu_devices", 2)    # the stepped engine: one lane per core
  main()
