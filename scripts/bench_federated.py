"""One FedAvg round: jaxlab's vmap, stepped and sequential engines vs a PyTorch loop.

Same data (MNIST, Dirichlet alpha=0.1 partition), same local epochs and batch size,
two models (FedAvg CNN conv5x5-32/pool/conv5x5-64/pool/fc512/fc10; MLP 784-200-200-10),
S clients per round. Prints real client-steps per second (padded steps not counted),
each engine's padded-step waste, ratios against the PyTorch loop, the peak
resident-memory growth of each measurement and the process's peak RSS during it.

  python scripts/bench_federated.py                       # defaults below
  python scripts/bench_federated.py --models mlp --clients 10,100,1000
  python scripts/bench_federated.py --sweep                # R = 64 FedProx runs, one program
  python scripts/bench_federated.py --scale --cpu-devices 8  # client-sharded table, K = 1k/10k

``--scale`` (issue 16): SCAFFOLD, MLP 784-200-200-10, MNIST split IID over K clients
(every client non-empty), 100 clients per round, B = 32, E = 1, on the
``--cpu-devices`` devices of one ``clients`` mesh. Each (K, table layout) runs in a
fresh subprocess (so its peak RSS is its own) and reports the per-device bytes of
the SCAFFOLD c_k table from the arrays' shardings (``fl.shard.device_bytes``), the
process's peak RSS, and the round time (best of ``--repeats`` rounds after a
compile round). The sharded table (``client_table="sharded"``) is compared with the
replicated one (engine v1) at the K values in ``--scale-replicated``.
``--scale-tables sharded,host,host-disk`` adds the host table (``client_table="host"``:
the K rows in host NumPy arrays; ``host-disk``: in ``.npy`` memmaps under
``--scale-table-dir``), whose device bytes are only the round's rows.

``--sweep``: R = 64 FedProx runs (4 client lrs x 4 mu x 4 seeds; a seed sets the
Dirichlet(0.1) partition of MNIST over 100 clients and the init), MLP 784-200-200-10,
10 clients per round, 5 rounds, as one compiled ``jaxlab.federated.sweep.Sweep``
versus the same runs one after another in the PyTorch loop below (a FedProx term
added when mu > 0). ``--sweep-torch-runs`` of the 64 torch runs are timed (spread
over the grid) and the total is scaled to 64, which the output says.
``--sweep-packing jobs,runs`` times the packed layout (the default: every run's
clients sorted together, one program for every round) and the rank-aligned one
(engine v1) in the same process; the first listed is compared with torch.

Every timing goes through ``jaxlab.core.bench`` (load average at start and end,
compile time beside steady-state time, a JSON record in $JAXLAB_BENCH_JSON).

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
import dataclasses
import os
import resource
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
import numpy as np  # noqa: E402

from jaxlab import federated as fl  # noqa: E402
from jaxlab.core import bench  # noqa: E402
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
  state = {"sim": sim}
  if engine != "vmap":
    state["sim"], _ = run(state["sim"], warm_ids, key)   # compile the per-step pieces
    jax.block_until_ready(state["sim"])
  out = {}

  def one_round():
    with PeakRSS() as mem:
      state["sim"], m = run(state["sim"], ids, key)
      jax.block_until_ready(state["sim"])
    out.update(steps=int(m["real_steps"]), peak=max(out.get("peak", 0.0), mem.peak),
               max=max(out.get("max", 0.0), mem.max))

  t = bench.time_call(one_round, reps=args.repeats)
  return out["steps"] / t["best_s"], waste, out["peak"], t["best_s"], out["max"], t["compile_s"]


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
  res = []
  t = bench.time_call(lambda: res.append(_torch_round(net, loaders, parts, ids, global_w,
                                                      loss_fn, args)), reps=args.repeats)
  sps, peak_growth, dt, peak = min(res[1:], key=lambda r: r[2])
  return sps, peak_growth, t["best_s"], max(r[3] for r in res)


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
  ap.add_argument("--sweep", action="store_true",
                  help="R = 64 FedProx runs as one program vs 64 torch runs (see above)")
  ap.add_argument("--sweep-rounds", type=int, default=5)
  ap.add_argument("--sweep-per-round", type=int, default=10)
  ap.add_argument("--sweep-groups", type=int, default=80,
                  help="sweep: groups of jobs per device block (packing 'jobs': 80 = 4 jobs a"
                       " group on 2 devices, the fastest measured; 'runs' was run at 10)")
  ap.add_argument("--sweep-mesh", default="auto", choices=("auto", "off"),
                  help="sweep: shard the runs over the 'sweep' axis of all CPU devices (auto)")
  ap.add_argument("--sweep-torch-threads", default=f"1,{os.cpu_count()}",
                  help="sweep: torch thread counts to time; the fastest is the baseline (on a"
                       " busy machine 2 threads can thrash, so 1 is always tried)")
  ap.add_argument("--sweep-torch-runs", type=int, default=8,
                  help="sweep: torch runs actually timed (spread over the grid), scaled to R;"
                       " 0 skips torch (jaxlab timings only)")
  ap.add_argument("--sweep-packing", default="jobs,runs:10",
                  help="sweep: Sweep packings to time, comma-separated ('jobs', 'runs', or"
                       " 'jobs:20' with its own group count); the first is compared with torch")
  ap.add_argument("--sweep-ab", action="store_true",
                  help="sweep: then time the packings again with rounds interleaved (A/B)")
  ap.add_argument("--scale", action="store_true",
                  help="client-sharded persistent table vs replicated (see above)")
  ap.add_argument("--scale-clients", default="1000,10000", help="--scale: K values")
  ap.add_argument("--scale-per-round", type=int, default=100)
  ap.add_argument("--scale-replicated", default="1000",
                  help="--scale: K values where the replicated table is timed too")
  ap.add_argument("--scale-tables", default="sharded",
                  help="--scale: table layouts timed at every K: sharded, host (host RAM),"
                       " host-disk (memmap files under --scale-table-dir)")
  ap.add_argument("--scale-table-dir", default=None,
                  help="--scale: where host-disk tables go (default: a temporary directory)")
  ap.add_argument("--scale-processes", type=int, default=1,
                  help="--scale: split the --cpu-devices over this many processes"
                       " (jax.distributed over gloo on this machine; RSS is per process)")
  ap.add_argument("--scale-one", default=None, help=argparse.SUPPRESS)   # "K,layout"
  ap.add_argument("--scale-proc", default=None, help=argparse.SUPPRESS)  # "port,P,id"
  ap.add_argument("--json", default=None, help="append the bench record here")
  args = ap.parse_args()
  if args.scale_one:
    return scale_one(args)
  if args.scale:
    return scale_bench(args)
  rec = bench.Recorder("federated_sweep" if args.sweep else "federated", vars(args), args.json)
  d = load("mnist")
  tr = to_numpy(d["train"], ["image", "label"])
  x, y = tr["image"], tr["label"]
  if args.sweep:
    sweep_bench(x, y, args, rec)
  else:
    rounds_bench(x, y, args, rec)
  rec.finish()
  print(f"process peak RSS (ru_maxrss): {peak_rss_mb():.0f} MB")


def peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rounds_bench(x, y, args, rec):
  engines = args.engines.split(",")
  print(f"device: {jax.devices()[0].device_kind} x{len(jax.devices())}, cores {os.cpu_count()},"
        f" B={args.batch}, E={args.epochs}, alpha={args.alpha}; 'vs torch' = vs the fastest"
        " torch thread count; seconds = best of --repeats rounds after a compile round")
  print("| model | S (of K) | engine | client-steps/s | vs torch | pad waste | seconds |"
        " compile s | RSS growth MB | peak RSS MB (process) |")
  print("|---|---|---|---|---|---|---|---|---|---|")
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
          res[f"torch x{th} thr"] = (sps, 0.0, mem, dt, peak, float("nan"))
      for e in ("vmap", "stepped", "sequential"):
        if e in engines and not (e == "sequential" and s > args.sequential_max_clients):
          res[e] = bench_jax(name, data, ids, args, e)
      torch_best = max((v for e, v in res.items() if e.startswith("torch")),
                       key=lambda v: v[0], default=None)
      for e, (sps, waste, mem, dt, peak, comp) in res.items():
        ratio = f"{sps / torch_best[0]:.2f}x" if torch_best else "-"
        print(f"| {name} | {s} ({k}, a={alpha}) | {e} | {sps:.1f} | {ratio} | {waste:.1%} |"
              f" {dt:.2f} | {comp:.1f} | {mem:.0f} | {peak:.0f} |", flush=True)
        if torch_best and not e.startswith("torch"):
          # baseline_s: torch's time for the same number of real client steps.
          rec.row(f"{name} S={s} {e} vs torch (round)", jaxlab_s=dt,
                  baseline_s=dt * sps / torch_best[0], compile_s=comp, pad_waste=waste,
                  peak_rss_mb=peak)


# ---- --sweep: R runs as one program vs R torch runs ---------------------------------------
SWEEP_LRS = (0.01, 0.02, 0.05, 0.1)
SWEEP_MUS = (0.0, 0.01, 0.1, 1.0)
SWEEP_SEEDS = (0, 1, 2, 3)


def sweep_grid():
  """The 64 runs as (seed, lr, mu), seed slowest (row-major over seeds x lrs x mus)."""
  return [(s, lr, mu) for s in SWEEP_SEEDS for lr in SWEEP_LRS for mu in SWEEP_MUS]


def sweep_bench(x, y, args, rec):
  from jaxlab.federated import sweep as sweep_lib
  k, runs = 100, sweep_grid()
  parts = {s: fl.partition.hetero(y, k, args.alpha, seed=s) for s in SWEEP_SEEDS}
  ids_per_round = [fl.sample_clients(r, k, args.sweep_per_round) for r in range(args.sweep_rounds)]
  print(f"sweep: R={len(runs)} FedProx runs (lr {SWEEP_LRS} x mu {SWEEP_MUS} x seeds"
        f" {SWEEP_SEEDS}), MLP 784-200-200-10, MNIST Dir({args.alpha}), K={k}, S="
        f"{args.sweep_per_round}, {args.sweep_rounds} rounds, B={args.batch}, E={args.epochs};"
        f" devices: {jax.devices()[0].device_kind} x{len(jax.devices())}, cores {os.cpu_count()}")
  # jaxlab: one Sweep, one compiled round per scan-length tuple.
  model = jax_model("mlp", "vmap")
  alg = fl.algorithms.fedprox(model, fl.client_sgd(0.05), num_clients=k, mu=0.0)
  cfg = fl.EngineConfig(batch_size=args.batch, local_epochs=args.epochs, step_bucket="exact",
                        groups=args.sweep_groups)
  mesh = (sweep_lib.sweep_mesh() if args.sweep_mesh == "auto" and len(jax.devices()) > 1
          and len(runs) % len(jax.devices()) == 0 else None)
  print(f"jaxlab: runs sharded over {len(jax.devices()) if mesh else 1} CPU device(s)")
  keys = jnp.stack([jax.random.key(s) for s, _, _ in runs])
  hp = {"learning_rate": [lr for _, lr, _ in runs], "mu": [mu for _, _, mu in runs]}
  results, sweeps = {}, {}
  for spec in args.sweep_packing.split(","):        # "jobs" or "jobs:20" (its own groups)
    packing, _, groups = spec.partition(":")
    with PeakRSS() as mem_build:
      sw = sweep_lib.Sweep(alg, dataclasses.replace(cfg, groups=int(groups or cfg.groups)),
                           x, y, [parts[s] for s, _, _ in runs], preprocess=prep, mesh=mesh,
                           packing=packing)
    results[spec] = time_sweep(sw, keys, hp, ids_per_round, args, mem_build)
    sweeps[spec] = sw
  packing = args.sweep_packing.split(",")[0]
  tj, out, waste = results[packing]
  if args.sweep_ab:
    sweep_ab(sweeps, keys, hp, ids_per_round)
  if args.sweep_torch_runs <= 0:
    return
  # torch: the same runs one after another (a spread subset, scaled to R).
  import torch
  xt = ((torch.from_numpy(np.array(x)).float() / 255.0 - MEAN) / STD)[:, None]
  yt = torch.from_numpy(np.array(y)).long()
  n_t = max(1, min(args.sweep_torch_runs, len(runs)))
  pick = np.linspace(0, len(runs) - 1, n_t).round().astype(int)
  t_torch, best_threads = float("inf"), None
  for threads in sorted({int(t) for t in str(args.sweep_torch_threads).split(",")}):
    torch.set_num_threads(threads)
    with PeakRSS() as tmem:
      t0 = time.perf_counter()
      torch_steps = 0
      for i in pick:
        s, lr, mu = runs[i]
        torch_steps += torch_fedprox_run(xt, yt, parts[s], ids_per_round, s, lr, mu, args)
      t_sub = time.perf_counter() - t0
    scaled = t_sub * len(runs) / n_t
    print(f"torch loop ({threads} threads): {n_t} of {len(runs)} runs timed in {t_sub:.1f} s"
          f" ({torch_steps / t_sub:.0f} client-steps/s) -> {scaled:.1f} s for all {len(runs)}"
          f" (scaled); peak RSS {tmem.max:.0f} MB")
    if scaled < t_torch:
      t_torch, best_threads = scaled, threads
  print(f"baseline: the fastest torch loop ({best_threads} threads)")
  print("| what | seconds (R=64) | vs torch |")
  print("|---|---|---|")
  print(f"| torch loop, 64 runs one after another (scaled from {n_t}) | {t_torch:.1f} | 1.00x |")
  print(f"| jaxlab Sweep, steady (compiled) | {tj['steady_s']:.1f} | {t_torch / tj['steady_s']:.2f}x |")
  print(f"| jaxlab Sweep, first call incl. compile | {tj['compile_s']:.1f} |"
        f" {t_torch / tj['compile_s']:.2f}x |")
  rec.row("FedProx sweep R=64 (steady)", jaxlab_s=tj["steady_s"], baseline_s=t_torch,
          compile_s=tj["compile_s"], goal=5.0, torch_runs_timed=int(n_t), pad_waste=waste,
          packing=packing,
          torch_threads=best_threads,
          peak_rss_mb=out["max"], torch_peak_rss_mb=tmem.max)
  rec.row("FedProx sweep R=64 (first call incl. compile)", jaxlab_s=tj["compile_s"],
          baseline_s=t_torch)


def sweep_ab(sweeps, keys, hp, ids_per_round, passes=2):
  """The same rounds timed again, alternating the sweeps round by round (same load)."""
  load = lambda: open("/proc/loadavg").read().split()[0]
  for p in range(passes):
    sims = {k: sw.init(keys, hp) for k, sw in sweeps.items()}
    tot = dict.fromkeys(sweeps, 0.0)
    for ids in ids_per_round:
      for k, sw in sweeps.items():
        t0 = time.perf_counter()
        sims[k], _ = sw.run_round(sims[k], ids, keys)
        jax.block_until_ready(sims[k])
        tot[k] += time.perf_counter() - t0
    first = next(iter(sweeps))
    print(f"A/B pass {p + 1} (rounds interleaved, load {load()}): "
          + ", ".join(f"{k} {v:.1f} s ({v / tot[first]:.2f}x of {first})" for k, v in tot.items()),
          flush=True)


def time_sweep(sw, keys, hp, ids_per_round, args, mem_build):
  """Times the whole sweep (init + rounds) with ``bench.time_call``; prints one line."""
  waste = sum(sw.waste(i) for i in ids_per_round) / len(ids_per_round)
  real_steps = int(sum(sw.steps_host[:, i].sum() for i in ids_per_round))
  out = {}

  def all_runs():
    with PeakRSS() as mem:
      sims = sw.init(keys, hp)
      for ids in ids_per_round:
        sims, m = sw.run_round(sims, ids, keys)
      jax.block_until_ready(sims)
    out.update(peak=max(out.get("peak", 0.0), mem.peak), max=max(out.get("max", 0.0), mem.max),
               loss=np.asarray(m["loss"]))

  tj = bench.time_call(all_runs, reps=args.repeats)
  print(f"jaxlab sweep (packing={sw.packing}, groups={sw.config.groups}): first call (compiles"
        f" + runs) {tj['compile_s']:.1f} s, steady {tj['steady_s']:.1f} s (median of"
        f" {args.repeats}; {real_steps / tj['steady_s']:.0f} real client-steps/s), pad waste"
        f" {waste:.1%}, RSS growth {out['peak'] + mem_build.peak:.0f} MB, peak RSS"
        f" {out['max']:.0f} MB, mean final loss {out['loss'].mean():.6f}", flush=True)
  return tj, out, waste


def torch_fedprox_run(xt, yt, parts, ids_per_round, seed, lr, mu, args):
  """One FedProx run in the PyTorch loop (FedML pattern); returns its client steps.

  ``xt``/``yt``: the normalised training set as tensors (built once, not timed per run).
  """
  import torch
  from torch import nn
  from torch.utils.data import DataLoader, TensorDataset
  torch.manual_seed(seed)
  net = nn.Sequential(nn.Flatten(), nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 200),
                      nn.ReLU(), nn.Linear(200, 10))
  loss_fn = nn.CrossEntropyLoss()
  global_w = copy.deepcopy(net.state_dict())
  steps = 0
  for ids in ids_per_round:
    w_locals = []
    for k in ids:
      net.load_state_dict(global_w)
      anchor = [p.detach().clone() for p in net.parameters()]
      opt = torch.optim.SGD(net.parameters(), lr=lr)
      loader = DataLoader(TensorDataset(xt[parts[k]], yt[parts[k]]), batch_size=args.batch,
                          shuffle=True)
      for _ in range(args.epochs):
        for xb, yb in loader:
          opt.zero_grad()
          loss = loss_fn(net(xb), yb)
          if mu > 0:
            loss = loss + mu / 2 * sum(((p - a) ** 2).sum()
                                       for p, a in zip(net.parameters(), anchor))
          loss.backward()
          opt.step()
          steps += 1
      w_locals.append((len(parts[k]), copy.deepcopy(net.state_dict())))
    total = sum(n for n, _ in w_locals)
    global_w = {key: sum(n / total * w[key] for n, w in w_locals) for key in global_w}
  return steps



# ---- --scale: the client-sharded persistent table ----------------------------------------
def scale_one(args):
  """One (K, layout) case in this process; prints one JSON line."""
  import json
  k, layout = args.scale_one.split(",")
  k = int(k)
  if args.scale_proc:
    port, nproc, pid = map(int, args.scale_proc.split(","))
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=nproc, process_id=pid)
  with PeakRSS() as mem:
    tr = to_numpy(load("mnist")["train"], ["image", "label"])
    parts = fl.partition.iid(tr["label"], k, seed=0)
    data = fl.make_fed_data(tr["image"], tr["label"], parts)
    model = fl.Model.from_linen(MLP(), jnp.zeros((2, 28, 28, 1)))
    alg = fl.algorithms.scaffold(model, fl.client_sgd(args.lr), num_clients=k)
    cfg = fl.EngineConfig(batch_size=args.batch, local_epochs=args.epochs, step_bucket="exact")
    path = None
    if layout == "host-disk":
      import tempfile
      path = tempfile.mkdtemp(prefix="fedtable_", dir=args.scale_table_dir)
    eng = fl.Engine(alg, cfg, data, preprocess=prep, mesh=fl.clients_mesh(),
                    client_table="host" if layout.startswith("host") else layout,
                    client_table_path=path)
    state = {"sim": eng.init(jax.random.key(0)), "r": 0}
    if eng.table_mode == "host":     # on devices: only each round's sampled rows
      table = {"total": fl.host_table.host_bytes(state["sim"].clients), "per_device": 0}
    else:
      table = fl.shard.device_bytes(state["sim"].clients)
    key = jax.random.key(1)

    def one_round():
      ids = fl.sample_clients(state["r"], k, args.scale_per_round)
      state["sim"], m = eng.run_round(state["sim"], ids, key)
      jax.block_until_ready(state["sim"])
      state["r"] += 1
      state["loss"] = float(m["loss"])

    t = bench.time_call(one_round, reps=args.repeats)
  row = {"K": k, "layout": layout, "devices": len(jax.devices()), **table,
         "processes": jax.process_count(),
         "row_bytes": table["total"] // eng.table_rows, "round_s": t["best_s"],
         "compile_s": t["compile_s"], "rss_peak_mb": mem.max, "ru_maxrss_mb": peak_rss_mb(),
         "loss": state["loss"]}
  if path is not None:
    import shutil
    del state
    shutil.rmtree(path, ignore_errors=True)
  print(json.dumps(row), flush=True)


def _free_port() -> int:
  import socket
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def scale_bench(args):
  import json
  import subprocess
  rec = bench.Recorder("federated_scale", vars(args), args.json)
  print(f"SCAFFOLD, MLP 784-200-200-10, MNIST IID, S={args.scale_per_round}, B={args.batch},"
        f" E={args.epochs}, {args.cpu_devices} CPU devices in {args.scale_processes}"
        f" process(es); round s = best of {args.repeats} after a compile round; each case"
        " in its own process(es); peak RSS = the largest process's")
  print("| K | table | total MB | per-device MB | goal total/D + row MB | round s |"
        " peak RSS MB | loss |")
  print("|---|---|---|---|---|---|---|---|")
  results = {}
  cases = [(k, lay) for k in map(int, args.scale_clients.split(","))
           for lay in args.scale_tables.split(",") + (
             ["replicated"] if str(k) in args.scale_replicated.split(",") else [])]
  nproc = args.scale_processes
  for k, lay in cases:
    cmd = [sys.executable, __file__, f"--cpu-devices={args.cpu_devices // nproc}",
           "--scale-one", f"{k},{lay}", "--repeats", str(args.repeats), "--lr", str(args.lr),
           "--batch", str(args.batch), "--epochs", str(args.epochs),
           "--scale-per-round", str(args.scale_per_round)]
    if nproc > 1:
      port = _free_port()
      procs = [subprocess.Popen(cmd + ["--scale-proc", f"{port},{nproc},{i}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(nproc)]
      outs = [subprocess.CompletedProcess(p.args, 0, *p.communicate()) for p in procs]
      for o, p in zip(outs, procs):
        o.returncode = p.returncode
    else:
      outs = [subprocess.run(cmd, capture_output=True, text=True)]
    bad = [o for o in outs if o.returncode != 0]
    if bad:
      print(f"| {k} | {lay} | failed: {bad[0].stderr.strip().splitlines()[-1][:120]} |",
            flush=True)
      continue
    rows = [json.loads(o.stdout.strip().splitlines()[-1]) for o in outs]
    r = {**rows[0], "rss_peak_mb": max(x["rss_peak_mb"] for x in rows)}   # per process
    results[(k, lay)] = r
    mb = 1 << 20
    goal = (k * r["row_bytes"] / r["devices"] + r["row_bytes"]) / mb
    print(f"| {k} | {lay} | {r['total'] / mb:.1f} | {r['per_device'] / mb:.1f} | {goal:.1f} |"
          f" {r['round_s']:.2f} | {r['rss_peak_mb']:.0f} | {r['loss']:.4f} |", flush=True)
    rec.row(f"K={k} {lay} table", per_device_mb=r["per_device"] / mb, total_mb=r["total"] / mb,
            round_s=r["round_s"], compile_s=r["compile_s"], peak_rss_mb=r["rss_peak_mb"])
  for k, (sh, ho) in [(k, (results.get((k, "sharded")), results.get((k, lay))))
                      for k in map(int, args.scale_clients.split(","))
                      for lay in ("host", "host-disk")]:
    if sh is not None and ho is not None:
      rec.row(f"K={k} round: {ho['layout']} vs sharded table", jaxlab_s=ho["round_s"],
              baseline_s=sh["round_s"])
  for k in [int(v) for v in args.scale_replicated.split(",") if v.isdigit()]:
    if (k, "sharded") in results and (k, "replicated") in results:
      sh, rp = results[(k, "sharded")], results[(k, "replicated")]
      rec.row(f"K={k} round: sharded vs replicated table (goal: sharded within 1.3x)",
              jaxlab_s=sh["round_s"], baseline_s=rp["round_s"], goal=1 / 1.3)
  rec.finish()


if __name__ == "__main__":
  main()
