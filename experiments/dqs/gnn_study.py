"""GNN label study at N = 4 (small budget): does the predictor learn the non-zero QFIs?

At dqs-4photon's budget the GNN's R^2 on the non-zero labels is ~0.02. This
study trains GNN variants on one dataset with one clean split (same val and
test for all) and reports R^2 / Spearman on all and on non-zero test labels,
plus the search-relevant precision: the fraction of the top-k predicted test
setups that are at the Heisenberg limit.

  python -m experiments.dqs.gnn_study --out runs/dqs-gnn-study [--epochs 8] [--smoke]

Resumable: the data chunks, each variant's training checkpoints and finished
variants' metrics live under --out. Writes study.json and study.png there.
"""

import argparse
import dataclasses
import json
import pathlib

import numpy as np

from jaxlab.methods.dqs import config as C
from jaxlab.methods.dqs import dataset, environments, graphs, train
from jaxlab.methods.dqs.predictor import PredictorConfig, regression_metrics


def variants(n: int, epochs: int, n_train: int, n_more: int) -> dict[str, tuple]:
  """name -> (PredictorConfig, training-set size)."""
  base = PredictorConfig(hidden=64, num_layers=2, heads=4, epochs=epochs, lr=1e-3,
                         eval_every=2, init_best=1e30)
  rep = dataclasses.replace
  return {
    "raw (reference loss)": (base, n_train),
    "log1p(QFI/N^2)": (rep(base, target="log1p", target_scale=float(n * n)), n_train),
    "zero head + raw": (rep(base, zero_head=True), n_train),
    "zero head + log1p(QFI/N^2)": (
      rep(base, zero_head=True, target="log1p", target_scale=float(n * n)), n_train),
    f"raw, {n_more // 1000}k train": (base, n_more),
  }


def top_k_precision(pred: np.ndarray, y: np.ndarray, hl: float, k: int) -> float:
  """Fraction of the k highest-predicted setups whose exact QFI is at HL."""
  top = np.argsort(-pred, kind="stable")[:k]
  return float(np.mean(y[top] >= hl - 1e-3))


def run(out: pathlib.Path, *, n: int = 4, epochs: int = 8, n_train: int = 5000,
        n_more: int = 15_000, n_val: int = 1000, n_test: int = 2000, top_k: int = 40) -> dict:
  cfg = C.SimConfig(n_photons=n)
  total = n_more + n_val + n_test
  data = dataset.generate(out / "data", cfg, total, chunk_size=1000, seed=0)
  g = graphs.build_graphs(dataset.as_setups(data), cfg)
  y = data["qfi"][:, 0].astype(np.float32)  # env Z
  split = train.split_indices(len(y), "clean", n_train=n_more, n_val=n_val, n_test=n_test)
  hl = environments.heisenberg_limit(n, "Z")
  done_path = out / "study.json"
  done = json.loads(done_path.read_text()) if done_path.exists() else {}
  for i, (name, (pcfg, size)) in enumerate(variants(n, epochs, n_train, n_more).items()):
    if name in done:
      continue
    sp = {**split, "train": split["train"][:size]}
    _, best, info = train.train(pcfg, g, y, sp, out / f"variant{i}", phase="gnn")
    pred = train.predict(best, pcfg, g.take(split["test"]))
    m = regression_metrics(pred, y[split["test"]])
    m[f"top{top_k}_precision_at_hl"] = top_k_precision(pred, y[split["test"]], hl, top_k)
    m["train_seconds"] = info["seconds"]
    m["n_train"] = size
    m["config"] = dataclasses.asdict(pcfg)
    done[name] = m
    done_path.write_text(json.dumps(done, indent=1))
    print(name, {k: round(v, 4) for k, v in m.items() if isinstance(v, float)}, flush=True)
  test_y = y[split["test"]]
  done["_test_set"] = {"n": int(len(test_y)), "nonzero": int(np.sum(test_y > 1e-6)),
                       "at_hl": int(np.sum(test_y >= hl - 1e-3))}
  done_path.write_text(json.dumps(done, indent=1))
  _plot(done, out / "study.png")
  return done


def _plot(done: dict, path: pathlib.Path) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  names = [k for k in done if not k.startswith("_")]
  keys = ("all/r2", "nonzero/r2", "nonzero/spearman", "top40_precision_at_hl")
  fig, ax = plt.subplots(figsize=(8, 4))
  w = 0.8 / len(names)
  for i, name in enumerate(names):
    ax.bar(np.arange(len(keys)) + i * w, [done[name].get(k, np.nan) for k in keys], w, label=name)
  ax.set_xticks(np.arange(len(keys)) + 0.4 - w / 2, keys)
  ax.axhline(0, color="k", lw=0.5)
  ax.set(title="DQS GNN label study, N = 4, env Z (held-out test)")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/dqs-gnn-study"))
  ap.add_argument("--epochs", type=int, default=8)
  ap.add_argument("--smoke", action="store_true", help="tiny sizes, one epoch")
  a = ap.parse_args()
  if a.smoke:
    run(a.out, epochs=1, n_train=200, n_more=400, n_val=100, n_test=100, top_k=10)
  else:
    run(a.out, epochs=a.epochs)


if __name__ == "__main__":
  main()
