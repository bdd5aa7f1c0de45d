"""One Twin-sight round: jaxlab (vmapped clients, one jit) vs the reference pattern in PyTorch.

Same work on both sides: Fashion-MNIST subset (3000 images), K = 10 clients (Dirichlet
0.1; the reference's FMNIST unlabeled ids, 4 labeled), all 10 clients in the round, E = 1,
B = 32, the CPU twin (f_s: im2col conv3x3 8/16 + pool, fc 64, head 10; f_u: the same
backbone + projector 128 -> BN -> 64), weak views twice (pad-2 crop + flip), loss
CE (labeled) + 0.5 NT-Xent (tau 0.07) + NP, SGD lr 0.01 momentum 0.9 wd 1e-4 on both
models, n_k-weighted average of both. PyTorch: clients one after another, two
``nn.Module``s each (the reference's ``SemiFed`` pattern), augmentations vectorised per
batch. Prints seconds per round (``jaxlab.core.bench``: load average, compile time beside
the steady median, JSON record) and the ratio. Run: python scripts/bench_twin_sight.py
"""

import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab import federated as fl
from jaxlab.core import bench
from jaxlab.federated import partition
from jaxlab.methods import twin_sight as ts
from jaxlab.methods.twin_sight import data as data_lib

K, B, C, LR, MOM, WD = 10, 32, 10, 0.01, 0.9, 1e-4
BACKBONE = ts.BackboneConfig(kind="cnn", channels=(8, 16), kernel=3, feat_dim=64)


def data():
  ds = data_lib.load("fashion_mnist", train_size=3000, test_size=100)
  parts = partition.hetero(ds.y_train, K, 0.1, seed=0)
  return ds, parts, ts.pc_labeled("fashion_mnist", K, 0.6)


def bench_jax(ds, parts, lab, groups, reps, engine="vmap"):
  aug = ts.AugConfig(crop_pad=2, mean=ds.mean, std=ds.std)
  twin = ts.make_twin(BACKBONE, C, jnp.zeros((B, 28, 28, 1)), proj_hidden=128, proj_dim=64)
  built = ts.make("twin_sight", twin, ts.TwinSightConfig(), aug, num_clients=K, num_classes=C,
                  client_tx=fl.client_sgd(LR, MOM, WD), batch_size=B)
  mesh = fl.clients_mesh() if engine == "stepped" else None
  eng = fl.Engine(built.algorithm, fl.EngineConfig(batch_size=B, step_bucket="exact",
                                                   groups=groups, grouping="optimal"),
                  fl.make_fed_data(ds.x_train, ds.y_train, parts, extra=ts.pc_extra(lab)(parts)),
                  mesh=mesh)
  run = eng.run_round if engine == "vmap" else (
    lambda s, i, k: fl.stepped.run_round(eng, s, i, k))
  state = {"sim": eng.init(jax.random.key(0))}
  key, ids = jax.random.key(1), np.arange(K)
  print(f"jaxlab padded-step waste: {eng.waste(ids):.1%} (groups={groups})")

  def one_round():
    state["sim"], _ = run(state["sim"], ids, key)
    jax.block_until_ready(state["sim"])

  return bench.time_call(one_round, reps=reps)


def bench_torch(ds, parts, lab, reps, threads=0):
  import torch
  from torch import nn
  if threads:   # 0: PyTorch's default (all cores), what a user gets
    torch.set_num_threads(threads)
  F = nn.functional

  def backbone():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
                         nn.Flatten(), nn.Linear(16 * 7 * 7, 64), nn.ReLU())

  class Sup(nn.Module):
    def __init__(self):
      super().__init__()
      self.backbone, self.head = backbone(), nn.Linear(64, C)

    def forward(self, x):
      f = self.backbone(x)
      return f, self.head(f)

  class Unsup(nn.Module):
    def __init__(self):
      super().__init__()
      self.backbone = backbone()
      self.proj = nn.Sequential(nn.Linear(64, 128), nn.BatchNorm1d(128), nn.ReLU(),
                                nn.Linear(128, 64))

    def forward(self, x):
      f = self.backbone(x)
      return f, self.proj(f)

  x_all = torch.tensor(ds.x_train[..., 0], dtype=torch.float32) / 255.0
  y_all = torch.tensor(ds.y_train, dtype=torch.long)
  g_s, g_u = Sup(), Unsup()
  moms = {}

  def view(xb):
    n = xb.shape[0]
    xp = F.pad(xb, (2, 2, 2, 2))
    i, j = torch.randint(0, 5, (n,)), torch.randint(0, 5, (n,))
    rows = i[:, None] + torch.arange(28)[None]
    cols = j[:, None] + torch.arange(28)[None]
    out = xp[torch.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    out = torch.where(torch.rand(n)[:, None, None] < 0.5, out.flip(-1), out)
    return ((out - ds.mean[0]) / ds.std[0])[:, None]

  def nt_xent(p1, p2, tau=0.07):
    z = F.normalize(torch.cat([p1, p2]), dim=1)
    sim = z @ z.t() / tau
    sim.fill_diagonal_(-1e9)
    n = p1.shape[0]
    pos = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(sim, pos)

  def client(k):
    fs, fu = Sup(), Unsup()
    fs.load_state_dict(g_s.state_dict())
    fu.load_state_dict(g_u.state_dict())
    opt = torch.optim.SGD([*fs.parameters(), *fu.parameters()], lr=LR, momentum=MOM,
                          weight_decay=WD)
    if k in moms:
      opt.load_state_dict(moms[k])
    idx = torch.tensor(parts[k])[torch.randperm(len(parts[k]))]
    for s in range(0, len(idx), B):
      bi = idx[s:s + B]
      xb = x_all[bi]
      xw, xs = view(xb), view(xb)
      inp = torch.cat([xw, xs])
      feat_s, logits = fs(inp)
      feat_u, proj = fu(inp)
      n = len(bi)
      zs, zu = F.normalize(feat_s[:n], dim=1), F.normalize(feat_u[:n], dim=1)
      l_np = ((zu @ zu.t() - zs @ zs.t()) ** 2).sum() / n ** 2
      loss = 0.5 * nt_xent(proj[:n], proj[n:]) + l_np
      if lab[k] > 0:
        loss = loss + F.cross_entropy(logits[:n], y_all[bi])
      opt.zero_grad()
      loss.backward()
      opt.step()
    moms[k] = opt.state_dict()
    return fs.state_dict(), fu.state_dict(), len(parts[k])

  def one_round():
    outs = [client(k) for k in range(K)]
    w = torch.tensor([o[2] for o in outs], dtype=torch.float32)
    w = w / w.sum()
    for g, pos in ((g_s, 0), (g_u, 1)):
      sd = g.state_dict()
      for name in sd:
        if sd[name].is_floating_point():
          sd[name] = sum(wk * o[pos][name] for wk, o in zip(w, outs))
      g.load_state_dict(sd)

  return bench.time_call(one_round, reps=reps)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--groups", type=int, default=3)
  ap.add_argument("--reps", type=int, default=3)
  ap.add_argument("--torch-threads", type=int, default=0,
                  help="PyTorch intra-op threads (default 0: PyTorch's own default, all cores; "
                       "1 was hard-coded before 2026-12-06)")
  ap.add_argument("--engine", default="stepped", choices=("vmap", "stepped"),
                  help="stepped: one client per CPU device (2 devices), fastest for convs on CPU")
  args = ap.parse_args()
  rec = bench.Recorder("twin_sight", {"K": K, "S": K, "B": B, "groups": args.groups,
                                      "engine": args.engine})
  ds, parts, lab = data()
  tj = bench_jax(ds, parts, lab, args.groups, args.reps, args.engine)
  print(f"jaxlab {args.engine} Twin-sight: {tj['steady_s']:.3f} s/round"
        f" (first call incl. compile {tj['compile_s']:.3f} s)")
  try:
    tt = bench_torch(ds, parts, lab, args.reps, args.torch_threads)
  except ImportError:
    print("torch not installed: no ratio")
    rec.finish()
    return
  import torch
  print(f"PyTorch sequential twin clients ({torch.get_num_threads()} threads):"
        f" {tt['steady_s']:.3f} s/round")
  print(f"speed-up (torch / jaxlab): {tt['steady_s'] / tj['steady_s']:.2f}x")
  rec.row(f"Twin-sight round, 10 clients, {args.engine} vs torch loop", jaxlab_s=tj["steady_s"],
          baseline_s=tt["steady_s"], compile_s=tj["compile_s"], goal=1.5)
  rec.finish()


if __name__ == "__main__":
  if "--engine=vmap" not in sys.argv and "vmap" not in sys.argv:
    jax.config.update("jax_num_cpu_devices", 2)    # the stepped engine: one lane per core
  main()
