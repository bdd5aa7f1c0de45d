"""SCAFFOLD learning-rate sweep on the quick MNIST setting, logging ||c|| and ||c_k||.

Why SCAFFOLD diverged at lr 0.05 on the MNIST CNN (docs/federated.md, "SCAFFOLD and
FedNova as their papers define them"): R learning rates run as one vmapped program
(``fl.sweep.Sweep``), same init, same clients, same batches; per round and per run we log
the server control variate ||c||, the sampled clients' ||c_k|| and correction
||c - c_k||, the server step ||w_g+ - w_g||, the training loss and test accuracy.
"""

import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab import federated as fl
from jaxlab.core.metrics import MetricsWriter
from jaxlab.core.progress import progress
from jaxlab.data import load, to_numpy
from jaxlab.federated import eval as fl_eval
from jaxlab.models import CNN

DESCRIPTION = "SCAFFOLD lr sweep (vmapped) on quick MNIST, logging ||c||, ||c_k|| per round"
CLAIM = ("SCAFFOLD (option II) at the lr shared by all baselines (0.05) diverged on the MNIST"
         " CNN. One vmapped sweep over client lrs (same init, clients and batches) logs the"
         " control-variate norms per round to locate the stable region and show whether the"
         " control variates grow before the loss does.")

MEAN, STD = 0.1307, 0.3081


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
  """Attributes: the quick MNIST setting of fed-baselines-mnist-quick, plus the lr grid.

  weight_mode / server_scale: passed to ``fl.algorithms.scaffold`` (paper defaults).
  """
  dataset: str = "mnist"
  alpha: float = 0.1
  num_clients: int = 100
  per_round: int = 10
  rounds: int = 40
  local_epochs: int = 1
  batch_size: int = 50
  learning_rates: tuple[float, ...] = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
  weight_mode: str = "uniform"
  server_scale: str = "paper"
  channels: tuple[int, int] = (8, 16)
  hidden: int = 64
  train_subset: int = 20000
  test_subset: int = 2000
  eval_every: int = 5
  seed: int = 0


def get_config(smoke: bool = False) -> Config:
  if smoke:
    return Config(num_clients=10, per_round=3, rounds=2, learning_rates=(0.01, 0.1),
                  channels=(4, 8), hidden=16, train_subset=600, test_subset=500, eval_every=1)
  return Config()


def _load(cfg: Config):
  d = load(cfg.dataset)
  tr = to_numpy(d["train"], ["image", "label"])
  te = to_numpy(d["test"], ["image", "label"])
  rs = np.random.RandomState(cfg.seed)
  keep = np.sort(rs.permutation(len(tr["label"]))[: cfg.train_subset])
  tr = {k: v[keep] for k, v in tr.items()}
  keep = np.sort(rs.permutation(len(te["label"]))[: cfg.test_subset])
  return tr, {k: v[keep] for k, v in te.items()}


def _sq(tree, keep: int):
  """Sum of squares over every leaf axis after the first ``keep`` axes."""
  return sum(jnp.sum(jnp.square(x), axis=tuple(range(keep, x.ndim)))
             for x in jax.tree.leaves(tree))


@jax.jit
def _norms(sims: fl.SimState, ids: jax.Array) -> dict:
  """Per run [R]: ||c||, ||w_g||; per run and sampled client [R, S]: ||c_k||, ||c - c_k||."""
  c = sims.server.alg
  table = sims.clients["alg"]
  table = table["c_k"] if isinstance(table, dict) and "c_k" in table else table
  rows = jax.tree.map(lambda t: t[:, ids], table)
  corr = jax.tree.map(lambda a, b: a[:, None] - b, c, rows)
  return {"c": jnp.sqrt(_sq(c, 1)), "w": jnp.sqrt(_sq(sims.server.params, 1)),
          "c_k": jnp.sqrt(_sq(rows, 2)), "corr": jnp.sqrt(_sq(corr, 2))}


def run(config: Config, out_dir: pathlib.Path) -> dict:
  """Runs the sweep; writes metrics.jsonl (one row per round, lists over lrs) and a PNG."""
  cfg, out_dir = config, pathlib.Path(out_dir)
  tr, te = _load(cfg)
  prep = lambda x: ((x.astype(jnp.float32) / 255.0 - MEAN) / STD)[..., None]
  model = fl.Model.from_linen(
    CNN(channels=cfg.channels, hidden=cfg.hidden, im2col=jax.default_backend() == "cpu"),
    jnp.zeros((2, 28, 28, 1)))
  parts = fl.partition.hetero(tr["label"], cfg.num_clients, cfg.alpha, seed=cfg.seed)
  alg = fl.algorithms.scaffold(model, fl.client_sgd(cfg.learning_rates[0]),
                               num_clients=cfg.num_clients, weight_mode=cfg.weight_mode,
                               server_scale=cfg.server_scale)
  lrs = np.asarray(cfg.learning_rates, np.float32)
  r_runs = len(lrs)
  sweep = fl.sweep.Sweep(alg, fl.EngineConfig(batch_size=cfg.batch_size,
                                              local_epochs=cfg.local_epochs),
                         tr["image"], tr["label"], parts, num_runs=r_runs, preprocess=prep)
  init_key, train_key = jax.random.split(jax.random.key(cfg.seed))
  # Every run starts from the same init and sees the same batches: only the lr differs.
  sims = sweep.init(jnp.stack([init_key] * r_runs), {"learning_rate": jnp.asarray(lrs)})
  keys = jnp.stack([train_key] * r_runs)
  evaluate = jax.vmap(fl_eval.make_evaluate(model, 500, prep), in_axes=(0, 0, None, None, None))
  x_te, y_te, m_te = fl_eval.pad_eval(te["image"], te["label"], 500)
  writer = MetricsWriter(out_dir)
  writer.truncate(-1)
  hist = []
  for r in progress(range(cfg.rounds), total=cfg.rounds, desc="scaffold lr sweep"):
    ids = fl.sample_clients(r, cfg.num_clients, cfg.per_round)
    jids = jnp.asarray(ids)
    pre = _norms(sims, jids)
    w_prev = jax.tree.map(jnp.copy, sims.server.params)
    sims, m = sweep.run_round(sims, ids, keys)
    post = _norms(sims, jids)
    step = jnp.sqrt(_sq(jax.tree.map(jnp.subtract, sims.server.params, w_prev), 1))
    pre, post, loss, step = jax.device_get((pre, post, m["loss"], step))
    row = {"round": r + 1, "learning_rate": list(cfg.learning_rates), "loss": loss.tolist(),
           "c_norm": post["c"].tolist(), "w_norm": post["w"].tolist(),
           "server_step": step.tolist(),
           "c_k_mean": post["c_k"].mean(1).tolist(), "c_k_max": post["c_k"].max(1).tolist(),
           "corr_mean": pre["corr"].mean(1).tolist(), "corr_max": pre["corr"].max(1).tolist()}
    if (r + 1) % cfg.eval_every == 0 or r + 1 == cfg.rounds:
      ev = evaluate(sims.server.params, sims.server.model_state, x_te, y_te, m_te)
      row["accuracy"] = np.asarray(ev["accuracy"]).tolist()
    writer.write(r + 1, row)
    hist.append(row)
  result = summarize(cfg, hist)
  _plot(out_dir / "scaffold_lr.png", cfg, hist)
  return result


def summarize(cfg: Config, hist: list[dict]) -> dict:
  """Per lr: first round with a non-finite loss, final / best accuracy, norm peaks."""
  per_lr = {}
  for i, lr in enumerate(cfg.learning_rates):
    loss = np.array([h["loss"][i] for h in hist])
    bad = np.flatnonzero(~np.isfinite(loss))
    acc = [(h["round"], h["accuracy"][i]) for h in hist if "accuracy" in h]
    finite_acc = [a for _, a in acc if np.isfinite(a)]
    c = np.array([h["c_norm"][i] for h in hist])
    ck = np.array([h["c_k_max"][i] for h in hist])
    per_lr[f"{lr:g}"] = {
      "diverged_round": int(bad[0]) + 1 if len(bad) else None,
      "final_accuracy": float(acc[-1][1]) if acc else float("nan"),
      "best_accuracy": float(max(finite_acc)) if finite_acc else float("nan"),
      "final_loss": float(loss[-1]),
      "c_norm_round_5": float(c[min(4, len(c) - 1)]),
      "c_norm_final": float(c[-1]),
      "c_k_max_peak": float(np.nanmax(ck)) if np.isfinite(ck).any() else float("nan")}
  stable = [lr for lr, v in per_lr.items() if v["diverged_round"] is None]
  return {"per_lr": per_lr, "stable_lrs": stable, "rounds": cfg.rounds,
          "config": dataclasses.asdict(cfg), "devices": len(jax.devices())}


def _plot(path: pathlib.Path, cfg: Config, hist: list[dict]) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  rounds = [h["round"] for h in hist]
  panels = [("loss", "train loss (mean over local steps)", True),
            ("accuracy", "test accuracy", False),
            ("c_norm", "||c|| (server control variate)", True),
            ("c_k_mean", "mean ||c_k+|| over sampled clients", True),
            ("corr_mean", "mean ||c - c_k|| at round start (sampled)", True),
            ("server_step", "||w_g+ - w_g||", True)]
  fig, axs = plt.subplots(2, 3, figsize=(14, 7))
  for ax, (key, title, logy) in zip(axs.flat, panels):
    for i, lr in enumerate(cfg.learning_rates):
      pts = [(h["round"], h[key][i]) for h in hist if key in h]
      ax.plot([p[0] for p in pts], [p[1] if np.isfinite(p[1]) else np.nan for p in pts],
              "o-" if key == "accuracy" else "-", ms=3, label=f"lr {lr:g}")
    ax.set(title=title, xlabel="round", xlim=(0, max(rounds) + 1))
    if logy:
      ax.set_yscale("log")
    ax.grid(alpha=0.3)
  axs.flat[0].legend(fontsize=8)
  fig.suptitle(f"SCAFFOLD ({cfg.weight_mode} weights), {cfg.dataset} {cfg.train_subset} images,"
               f" Dirichlet {cfg.alpha}, K={cfg.num_clients}, S={cfg.per_round},"
               f" B={cfg.batch_size}, CNN {cfg.channels}/{cfg.hidden}; NaN = diverged")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def report(result: dict) -> str:
  lines = ["| lr | diverged at round | final acc | best acc | ||c|| round 5 | ||c|| final |"
           " max ||c_k|| |", "|---|---|---|---|---|---|---|"]
  for lr, v in result["per_lr"].items():
    lines.append(f"| {lr} | {v['diverged_round'] or '-'} | {v['final_accuracy']:.4f} |"
                 f" {v['best_accuracy']:.4f} | {v['c_norm_round_5']:.3g} |"
                 f" {v['c_norm_final']:.3g} | {v['c_k_max_peak']:.3g} |")
  lines.append(f"\nStable (no non-finite loss in {result['rounds']} rounds): "
               f"{', '.join(result['stable_lrs']) or 'none'}")
  return "\n".join(lines)
