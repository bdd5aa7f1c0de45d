"""One FedAvg round: jaxlab's vmap, stepped and sequential engines vs a PyTorch loop.

Same data (MNIST, Dirichlet alpha=0.1 partition), same local epochs and batch size,
two models (FedAvg CNN conv5x5-32/pool/conv5x5-64/pool/fc512/fc10; MLP 784-200-200-10),
S clients per round. Prints real client-steps per second (padded steps not counted),
each engine's padded-step waste, ratios against the PyTorch loop, the peak
resident-memory growth of each measurement and the process's peak RSS during it.

  python scripts/bench_federated.py                       # defaults below
  python scripts/bench_federated.py --models mlp --clients 10,100,1000

Engines: ``vmap`` (clients vmapped, local steps in lax.scan, im2col convolutions,
one device); ``stepped`` (one client per CPU device, host-driven steps, native
convolutions; ``--cpu-devices`` host devices, default = cores); ``sequential``.
Compile time is excluded (each engine runs a warm-up round first); the PyTorch loop
follows the FedML standalone pattern: per client load the global state dict, build
SGD, train E epochs over a shuffled DataLoader, keep a copy of the local state dict,
then average all kept state dicts weighted by n_k; torch uses as many threads as
there are cores (and also 1 thread up to --single-thread-max-clients clients).
"""

import argparse
import copy
import os
import sys
import threading
import time


def _cpu_devices() -> int:
  """``--cpu-devices`` must be known before JAX starts its CPU backend."""
  for i, a in enumerate(sys.argv):
    if a.startswith("--cpu-devices="):
      return int(a.split("=", 1)[1])
    if a == "--cpu-devices" and i + 1 < len(sys.argv):
      return int(sys.argv[i + 1])
  return os.cpu_count() or 1


import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", _cpu_devices())
import jax.numpy as jnp  # noqa: E402

from jaxlab import federated as fl  # noqa: E402
from jaxlab.data import load, to_numpy  # noqa: E402
from jaxlab.models import CNN, MLP  # noqa: E402

MEAN, STD = 0.1307, 0.3081


def rss_mb() -> float:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) / 1024
  return 0.0


class PeakRSS:
  """Samples VmRSS every 20 ms; ``.peak`` is the growth over the starting RSS (MB),
  ``.max`` the largest RSS seen (MB)."""

  def __enter__(self):
    self.base, self.max, self.stop = rss_mb(), rss_mb(), False
    self.thread = threading.Thread(target=self._run, daemon=True)
    self.thread.start()
    return self

  def _run(self):
    while not self.stop:
      self.max = max(self.max, rss_mb())
      time.sleep(0.02)

  def __exit__(self, *exc):
    self.stop = True
    self.thread.join()
    self.peak = self.max - self.base


def prep(x):
  return ((x.astype(jnp.float32) / 255.0 - MEAN) / STD)[..., None]


def jax_model(name, engine):
  """im2col convolutions under vmap + scan; native ones for the stepped engine."""
  module = CNN(im2col=engine != "stepped") if name == "cnn" else MLP()
  return fl.Model.from_linen(module, jnp.zeros((2, 28, 28, 1)))


def bench_jax(name, data, ids, args, engine):
  """Builds and warms up the engine, then times ``args.repeats`` rounds (best kept)."""
  model = jax_model(name, engine)
  alg = fl.algorithms.fedavg(model, fl.client_sgd(args.lr), num_clients=len(data.n))
  groups = min(len(ids), args.groups) if engine == "vmap" else 1
  chunk = args.chunk if engine == "vmap" and len(ids) >= args.chunk_min_clients else None
  cfg = fl.EngineConfig(batch_size=args.batch, local_epochs=args.epochs, step_bucket="exact",
                        groups=groups, grouping=args.grouping, client_chunk=chunk,
                        steps_per_call=args.steps_per_call)
  mesh = fl.clients_mesh() if engine == "stepped" else None
  eng = fl.Engine(alg, cfg, data, preprocess=prep, mesh=mesh)
  sim = eng.init(jax.random.key(0))
  key = jax.random.key(1)
  if engine == "vmap":
    run, warm_ids, waste = eng.run_round, ids, eng.waste(ids)
  elif engine == "stepped":
    run = lambda s, i, k: fl.stepped.run_round(eng, s, i, k)
    warm_ids, waste = ids[:2 * len(jax.devices())], fl.stepped.waste(eng, ids)
  else:
    run = lambda s, i, k: fl.sequential.run_round(eng, s, i, k)
    warm_ids, waste = ids[:2], 0.0
  sim, _ = run(sim, warm_ids, key)                       # compile
  jax.block_until_ready(sim)
  best = None
  for _ in range(args.repeats):
    with PeakRSS() as mem:
      t0 = time.perf_counter()
      sim, m = run(sim, ids, key)
      jax.block_until_ready(sim)
      dt = time.perf_counter() - t0
    if best is None or dt < best[3]:
      best = (int(m["real_steps"]) / dt, waste, mem.peak, dt, mem.max)
  return best


def bench_torch(name, x, y, parts, ids, args, threads):
  import torch
  from torch import nn
  from torch.utils.data import DataLoader, TensorDataset
  torch.set_num_threads(threads)
  torch.manual_seed(0)
  if name == "cnn":
    net = nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(3136, 512), nn.ReLU(), nn.Linear(512, 10))
  else:
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 200),
                        nn.ReLU(), nn.Linear(200, 10))
  xt = (torch.from_numpy(x.copy()).float() / 255.0 - MEAN) / STD
  xt, yt = xt[:, None], torch.from_numpy(y).long()
  loaders = [DataLoader(TensorDataset(xt[parts[k]], yt[parts[k]]), batch_size=args.batch,
                        shuffle=True) for k in ids]                     # built at setup
  global_w = copy.deepcopy(net.state_dict())
  loss_fn = nn.CrossEntropyLoss()
  warm = torch.optim.SGD(net.parameters(), lr=args.lr)       # warm-up, not timed
  for xb, yb in loaders[0]:
    warm.zero_grad()
    loss_fn(net(xb), yb).backward()
    warm.step()
  best = None
  for _ in range(args.repeats):
    sps, peak_growth, dt, peak = _torch_round(net, loaders, parts, ids, global_w, loss_fn, args)
    if best is None or dt < best[2]:
      best = (sps, peak_growth, dt, peak)
  return best


def _torch_round(net, loaders, parts, ids, global_w, loss_fn, args):
  import torch
  with PeakRSS() as mem:
    t0 = time.perf_counter()
    w_locals, steps = [], 0
    for k, loader in zip(ids, loaders):
      net.load_state_dict(global_w)
      opt = torch.optim.SGD(net.parameters(), lr=args.lr)
      net.train()
      for _ in range(args.epochs):
        for xb, yb in loader:
          opt.zero_grad()
          loss_fn(net(xb), yb).backward()
          opt.step()
          steps += 1
      w_locals.append((len(parts[k]), copy.deepcopy(net.state_dict())))
    total = sum(n for n, _ in w_locals)
    global_w = {key: sum(n / total * w[key] for n, w in w_locals) for key in global_w}
    dt = time.perf_counter() - t0
  return steps / dt, mem.peak, dt, mem.max


def split(y, k, alpha):
  """Dirichlet split; K = 1000 at alpha 0.1 has no split of MNIST with every
  client non-empty (1000 tries), so larger K falls back to alpha 0.5, then 1.0."""
  for a in (alpha, 0.5, 1.0):
    try:
      return fl.partition.hetero(y, k, a, seed=0, min_require="num_classes" if k <= 100
                                 else 1, max_tries=200), a
    except fl.partition.DataError:
      continue
  raise SystemExit(f"no Dirichlet split for K={k}")


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--models", default="mlp,cnn")
  ap.add_argument("--clients", default="10,100,1000")
  ap.add_argument("--cnn-max-clients", type=int, default=100,
                  help="skip CNN cases above this many clients (CPU time)")
  ap.add_argument("--batch", type=int, default=32)
  ap.add_argument("--epochs", type=int, default=1)
  ap.add_argument("--lr", type=float, default=0.05)
  ap.add_argument("--alpha", type=float, default=0.1)
  ap.add_argument("--groups", type=int, default=16, help="vmap engine step-count groups")
  ap.add_argument("--grouping", default="optimal", help="vmap engine: 'equal' or 'optimal'")
  ap.add_argument("--chunk", type=int, default=8,
                  help="vmap engine: clients per chunk (streamed aggregate) ...")
  ap.add_argument("--chunk-min-clients", type=int, default=500,
                  help="... when a round has at least this many clients")
  ap.add_argument("--repeats", type=int, default=1,
                  help="time this many rounds per engine and keep the fastest (noisy hosts)")
  ap.add_argument("--steps-per-call", type=int, default=8,
                  help="stepped engine: most local steps per call (unrolled)")
  ap.add_argument("--cpu-devices", type=int, default=os.cpu_count(),
                  help="host CPU devices (the stepped engine puts one client on each)")
  ap.add_argument("--threads", default=f"{os.cpu_count()}",
                  help="torch thread counts to measure (the ratio uses the fastest)")
  ap.add_argument("--single-thread-max-clients", type=int, default=10,
                  help="also measure torch with 1 thread up to this many clients")
  ap.add_argument("--sequential-max-clients", type=int, default=100,
                  help="skip the (slow) sequential engine above this many clients")
  ap.add_argument("--engines", default="vmap,stepped,sequential,torch")
  args = ap.parse_args()
  engines = args.engines.split(",")
  d = load("mnist")
  tr = to_numpy(d["train"], ["image", "label"])
  x, y = tr["image"], tr["label"]
  print(f"device: {jax.devices()[0].device_kind} x{len(jax.devices())}, cores {os.cpu_count()},"
        f" B={args.batch}, E={args.epochs}, alpha={args.alpha}; 'vs torch' = vs the fastest"
        " torch thread count")
  print("| model | S (of K) | engine | client-steps/s | vs torch | pad waste | seconds |"
        " RSS growth MB | peak RSS MB (process) |")
  print("|---|---|---|---|---|---|---|---|---|")
  for name in args.models.split(","):
    for s in map(int, args.clients.split(",")):
      if name == "cnn" and s > args.cnn_max_clients:
        continue
      k = max(100, s)
      parts, alpha = split(y, k, args.alpha)
      ids = fl.sample_clients(0, k, s)
      data = fl.make_fed_data(x, y, parts)
      res = {}
      if "torch" in engines:
        threads = list(map(int, args.threads.split(",")))
        if s <= args.single_thread_max_clients and 1 not in threads:
          threads = [1] + threads
        for th in threads:
          sps, mem, dt, peak = bench_torch(name, x, y, parts, ids, args, th)
          res[f"torch x{th} thr"] = (sps, 0.0, mem, dt, peak)
      for e in ("vmap", "stepped", "sequential"):
        if e in engines and not (e == "sequential" and s > args.sequential_max_clients):
          res[e] = bench_jax(name, data, ids, args, e)
      base = max((v[0] for e, v in res.items() if e.startswith("torch")), default=None)
      for e, (sps, waste, mem, dt, peak) in res.items():
        ratio = f"{sps / base:.2f}x" if base else "-"
        print(f"| {name} | {s} ({k}, a={alpha}) | {e} | {sps:.1f} | {ratio} | {waste:.1%} |"
              f" {dt:.2f} | {mem:.0f} | {peak:.0f} |", flush=True)


if __name__ == "__main__":
  main()
