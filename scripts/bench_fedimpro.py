"""FedImpro rounds: jaxlab (vmapped clients, one jit) vs a PyTorch per-client loop.

Same work on both sides: Fashion-MNIST subset, K = 10 clients (Dirichlet 0.1), 5 per
round, MLP 784-200-200-10 split after its first layer, batch 64, one local epoch,
class-balanced fake features (M = 70 per step), count-weighted EMA estimator, uniform
server mean. Prints seconds per round (``jaxlab.core.bench``: load average at start and
end, compile time of the first pass beside the steady-state median, JSON record in
$JAXLAB_BENCH_JSON) and the ratio. Run: python scripts/bench_fedimpro.py
"""

import jax
import jax.numpy as jnp

from jaxlab import federated as fl
from jaxlab.core import bench
from jaxlab.federated import partition
from jaxlab.methods import fedimpro
from jaxlab.models import MLP

K, S, B, C, ROUNDS = 10, 5, 64, 10, 5


def data():
  from experiments.fedimpro import datasets
  ds = datasets.load("fashion_mnist", train_size=6000, test_size=100)
  parts = partition.hetero(ds.y_train, K, 0.1, seed=0)
  return ds, parts


def bench_jax(ds, parts):
  fi = fedimpro.make(MLP(hidden=(200, 200)), split_after=0,
                     sample_x=ds.preprocess(jnp.asarray(ds.x_train[:B])),
                     client_tx=fl.client_sgd(0.05), config=fedimpro.FedImproConfig(
                       fake_weight_max_epochs=10.0), num_clients=K, num_classes=C, batch_size=B)
  eng = fl.Engine(fi.algorithm, fl.EngineConfig(batch_size=B, step_bucket="mult:8"),
                  fl.make_fed_data(ds.x_train, ds.y_train, parts,
                                   extra=fedimpro.class_counts(ds.y_train, C)(parts)),
                  preprocess=ds.preprocess)
  state = {"sim": eng.init(jax.random.key(0))}
  key = jax.random.key(1)

  def rounds():          # the first call compiles every bucket that the timed calls use
    for r in range(ROUNDS):
      state["sim"], _ = eng.run_round(state["sim"], fl.sample_clients(r, K, S), key)
    jax.block_until_ready(state["sim"])

  t = bench.time_call(rounds, reps=3)
  return {k: v / ROUNDS for k, v in t.items()}


def bench_torch(ds, parts):
  import torch
  torch.set_num_threads(1)  # 2 threads thrash on a shared 2-core machine
  x = torch.tensor(((ds.x_train / 255.0 - 0.286) / 0.353).reshape(len(ds.x_train), -1),
                   dtype=torch.float32)
  y = torch.tensor(ds.y_train, dtype=torch.long)
  total = torch.bincount(y, minlength=C).float()
  low = torch.nn.Sequential(torch.nn.Linear(784, 200), torch.nn.ReLU())
  high = torch.nn.Sequential(torch.nn.Linear(200, 200), torch.nn.ReLU(), torch.nn.Linear(200, C))
  glob = [p.detach().clone() for p in [*low.parameters(), *high.parameters()]]
  mu, sd = torch.rand(C, 200), torch.full((C, 200), 0.1)
  y_fake = torch.arange(C).repeat(B // C + 1)
  ce = torch.nn.functional.cross_entropy

  def one_round(r):
    nonlocal mu, sd
    ups, mus, sds, ws = [], [], [], []
    for k in fl.sample_clients(r, K, S):
      for p, g in zip([*low.parameters(), *high.parameters()], glob):
        p.data.copy_(g)
      opt = torch.optim.SGD([*low.parameters(), *high.parameters()], lr=0.05)
      m, s = mu.clone(), sd.clone()
      idx = torch.tensor(parts[k])[torch.randperm(len(parts[k]))]
      for j in range(0, len(idx), B):
        bi = idx[j:j + B]
        xb, yb = x[bi], y[bi]
        hf = m[y_fake] + s[y_fake] * torch.randn(len(y_fake), 200)
        h = low(xb)
        out = high(torch.cat([h, hf]))
        loss = ce(out[:len(bi)], yb) + 0.5 * ce(out[len(bi):], y_fake)
        opt.zero_grad()
        loss.backward()
        opt.step()
        hd = h.detach()
        for c in yb.unique():
          hc = hd[yb == c]
          w = min(1.0, len(hc) / float(total[c]))
          m[c] = (1 - w) * m[c] + w * hc.mean(0)
          if len(hc) > 1:
            s[c] = torch.clamp((1 - w) * s[c] + w * hc.std(0), max=0.1)
      ups.append([p.detach().clone() for p in [*low.parameters(), *high.parameters()]])
      mus.append(m), sds.append(s), ws.append(len(parts[k]))
    w = torch.tensor(ws, dtype=torch.float32) / sum(ws)
    for i in range(len(glob)):
      glob[i] = sum(wk * u[i] for wk, u in zip(w, ups))
    mu, sd = torch.stack(mus).mean(0), torch.stack(sds).mean(0)

  def rounds():
    for r in range(ROUNDS):
      one_round(r)

  t = bench.time_call(rounds, reps=3)
  return {k: v / ROUNDS for k, v in t.items()}


def main():
  rec = bench.Recorder("fedimpro", {"K": K, "S": S, "B": B, "rounds": ROUNDS})
  ds, parts = data()
  tj = bench_jax(ds, parts)
  print(f"jaxlab vmapped FedImpro: {tj['steady_s']:.3f} s/round"
        f" (first pass incl. compile {tj['compile_s']:.3f} s/round)")
  try:
    tt = bench_torch(ds, parts)
  except ImportError:
    print("torch not installed: no ratio")
    rec.finish()
    return
  print(f"PyTorch per-client loop: {tt['steady_s']:.3f} s/round")
  print(f"speed-up (torch / jaxlab): {tt['steady_s'] / tj['steady_s']:.2f}x")
  rec.row("FedImpro round, vmapped vs torch loop", jaxlab_s=tj["steady_s"],
          baseline_s=tt["steady_s"], compile_s=tj["compile_s"] * ROUNDS)
  rec.finish()


if __name__ == "__main__":
  main()
