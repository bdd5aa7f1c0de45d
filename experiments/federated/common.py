"""Shared glue for the federated baseline experiments (FedAvg/FedProx/SCAFFOLD/FedNova)."""

import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab import federated as fl
from jaxlab.core import plot, sharding
from jaxlab.core.errors import NonFiniteError
from jaxlab.core.metrics import MetricsWriter, read_jsonl
from jaxlab.data import load, to_numpy
from jaxlab.federated import eval as fl_eval
from jaxlab.federated import loop
from jaxlab.models import CNN

STATS = {"mnist": (0.1307, 0.3081), "fashion_mnist": (0.2860, 0.3530)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
  """Attributes: see docs/federated.md "Experiments"."""
  dataset: str = "mnist"
  algorithms: tuple[str, ...] = ("fedavg", "fedprox", "scaffold", "fednova")
  alphas: tuple[float, ...] = (0.1, 0.5)
  num_clients: int = 100
  per_round: int = 10
  rounds: int = 100
  local_epochs: int = 1
  batch_size: int = 32
  learning_rate: float = 0.05
  momentum: float = 0.0
  weight_decay: float = 0.0
  mu: float = 0.01
  channels: tuple[int, int] = (32, 64)
  hidden: int = 512
  first_conv: str = "auto"       # CNN.first_conv; "xla": nn.Conv, the runs before 2026-12-07
  train_subset: int = 0          # 0: all training images
  test_subset: int = 0           # 0: the whole test set
  eval_every: int = 5
  checkpoint_every: int = 10
  target_accuracy: float = 0.95
  engine: str = "auto"           # "vmap", "stepped", "sequential"; auto: stepped on CPU
  groups: int = 1
  seed: int = 0


def _load(cfg: Config):
  d = load(cfg.dataset)
  tr = to_numpy(d["train"], ["image", "label"])
  te = to_numpy(d["test"], ["image", "label"])
  rs = np.random.RandomState(cfg.seed)
  if cfg.train_subset:
    keep = np.sort(rs.permutation(len(tr["label"]))[: cfg.train_subset])
    tr = {k: v[keep] for k, v in tr.items()}
  if cfg.test_subset:
    keep = np.sort(rs.permutation(len(te["label"]))[: cfg.test_subset])
    te = {k: v[keep] for k, v in te.items()}
  return tr, te


def engine_kind(cfg: Config) -> str:
  """``auto``: the stepped engine on CPU (one client per CPU device, native
  convolutions: see docs/federated.md), the vmapped engine on GPU/TPU."""
  if cfg.engine != "auto":
    return cfg.engine
  if jax.process_count() > 1:      # the stepped engine drives lanes from one host
    return "vmap"
  return "stepped" if jax.default_backend() == "cpu" else "vmap"


def _mesh(kind: str):
  """Clients over every device of every process (``jaxlab run --cpu-devices N``)."""
  if kind == "sequential" or len(jax.devices()) == 1:
    return None
  return fl.clients_mesh()


def _table(mesh, cfg: Config) -> str | None:
  """The client table sharded over ``clients`` unless the axis outnumbers the round."""
  if mesh is not None and mesh.shape["clients"] > cfg.per_round:
    return "replicated"
  return None


def _put(mesh, tree):
  """Eval arrays on every device of the mesh (global arrays with several processes)."""
  return tree if mesh is None else sharding.put_global(tree, mesh)


def _waste(eng: fl.Engine, kind: str, ids: np.ndarray) -> float:
  """Padded-step fraction of a round on the engine that runs it."""
  if kind == "stepped":
    return fl.stepped.waste(eng, ids)
  return 0.0 if kind == "sequential" else eng.waste(ids)


def _preprocess(dataset: str):
  mean, std = STATS.get(dataset, (0.5, 0.25))
  return lambda x: ((x.astype(jnp.float32) / 255.0 - mean) / std)[..., None]


def _algorithm(cfg: Config, name: str, model: fl.Model):
  tx = fl.client_sgd(cfg.learning_rate, cfg.momentum, cfg.weight_decay)
  kw = {"mu": cfg.mu} if name == "fedprox" else {}
  return fl.algorithms.ALGORITHMS[name](model, tx, num_clients=cfg.num_clients, **kw)


def run(cfg: Config, out_dir: pathlib.Path) -> dict:
  """Trains every (alpha, algorithm) pair; per-run metrics and checkpoints in subfolders."""
  out_dir = pathlib.Path(out_dir)
  tr, te = _load(cfg)
  prep = _preprocess(cfg.dataset)
  kind = engine_kind(cfg)
  # im2col only where convolutions run inside lax.scan on XLA:CPU (the vmap engine).
  module = CNN(channels=cfg.channels, hidden=cfg.hidden, first_conv=cfg.first_conv,
               im2col=kind == "vmap" and jax.default_backend() == "cpu")
  model = fl.Model.from_linen(module, jnp.zeros((2, 28, 28, 1)))
  mesh = _mesh(kind)
  x_te, y_te, m_te = _put(mesh, fl_eval.pad_eval(te["image"], te["label"], 500))
  evaluate = fl_eval.make_evaluate(model, 500, prep)
  x_tr, y_tr, m_tr = _put(mesh, fl_eval.pad_eval(tr["image"], tr["label"], 500))
  ecfg = fl.EngineConfig(batch_size=cfg.batch_size, local_epochs=cfg.local_epochs,
                         groups=cfg.groups)
  lcfg = loop.LoopConfig(rounds=cfg.rounds, per_round=cfg.per_round, eval_every=cfg.eval_every,
                         checkpoint_every=cfg.checkpoint_every, engine=kind)
  engines, results, curves, client_acc = {}, {}, {}, {}
  summary = MetricsWriter(out_dir)
  if jax.process_index() == 0:    # followers of a multi-process run never write
    summary.truncate(-1)
  splits = {a: fl.partition.hetero(tr["label"], cfg.num_clients, a, seed=cfg.seed)
            for a in cfg.alphas}
  # One index-table width for every alpha (the largest client of all), so the alphas
  # share compiled rounds; never N (the table is [K, n_max]).
  width = max(len(p) for parts in splits.values() for p in parts)
  for alpha, parts in splits.items():
    if jax.process_index() == 0:
      fl.partition.plot(out_dir / f"partition_a{alpha}.png", tr["label"], parts,
                        title=f"{cfg.dataset} Dirichlet alpha={alpha}, K={cfg.num_clients}")
    data = fl.make_fed_data(tr["image"], tr["label"], parts, width=width)
    for name in cfg.algorithms:
      run_name = f"{name}_a{alpha}"
      if name not in engines:
        engines[name] = fl.Engine(_algorithm(cfg, name, model), ecfg, data, preprocess=prep,
                                  mesh=mesh, client_table=_table(mesh, cfg))
      eng = engines[name].with_data(data)
      ev = lambda sim: {k: v for k, v in evaluate(sim.server.params, sim.server.model_state,
                                                   x_te, y_te, m_te).items() if k != "pred"}
      try:
        sim, hist = loop.train(eng, jax.random.key(cfg.seed), lcfg, ev, out_dir / run_name,
                               desc=run_name)
      except NonFiniteError as err:   # one method diverging is a result, not a crash
        hist = read_jsonl(out_dir / run_name / "metrics.jsonl")
        res = {**loop.summarize(hist, cfg.target_accuracy), "diverged": str(err),
               "final_accuracy": float("nan"), "rounds": cfg.rounds,
               "seconds": sum(h.get("round_seconds", 0.0) for h in hist)}
        results[run_name] = res
        summary.write(len(results), {"run": run_name, **res})
        curves[run_name] = [(h["round"], h["accuracy"]) for h in hist if "accuracy" in h]
        continue
      pred = evaluate(sim.server.params, sim.server.model_state, x_tr, y_tr, m_tr)["pred"]
      client_acc[run_name] = fl_eval.per_client_accuracy(
        np.asarray(pred), tr["label"], np.asarray(data.idx), np.asarray(data.n))
      res = loop.summarize(hist, cfg.target_accuracy)
      # Seconds from the per-round log (compile in round 1 included): survives --resume.
      res.update(seconds=sum(h.get("round_seconds", 0.0) for h in hist), rounds=cfg.rounds,
                 waste=float(np.mean([_waste(eng, kind, fl.sample_clients(r, cfg.num_clients,
                                                                          cfg.per_round))
                                      for r in range(min(cfg.rounds, 20))])),
                 client_acc_p10=float(np.percentile(client_acc[run_name], 10)))
      results[run_name] = res
      summary.write(len(results), {"run": run_name, **res})
      curves[run_name] = [(h["round"], h["accuracy"]) for h in hist if "accuracy" in h]
  if jax.process_index() == 0:
    _plots(cfg, out_dir, curves, client_acc)
  return {"runs": results, "config": dataclasses.asdict(cfg), "engine": kind,
          "devices": len(jax.devices()), "processes": jax.process_count()}


def _plots(cfg: Config, out_dir: pathlib.Path, curves: dict, client_acc: dict) -> None:
  for alpha in cfg.alphas:
    runs = {n: c for n, c in curves.items() if n.endswith(f"_a{alpha}") and c}
    if runs:   # a diverged run stops early: its curve is NaN after its last evaluation
      x = max(([r for r, _ in c] for c in runs.values()), key=len)
      plot.lines(out_dir / f"accuracy_a{alpha}.png", x,
                 {n.rsplit("_a", 1)[0]: [dict(c).get(r, float("nan")) for r in x]
                  for n, c in runs.items()},
                 xlabel="round", ylabel="test accuracy",
                 title=f"{cfg.dataset}, Dirichlet alpha={alpha}, K={cfg.num_clients},"
                       f" S={cfg.per_round}")
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axs = plt.subplots(1, len(cfg.alphas), figsize=(5 * len(cfg.alphas), 3.5), squeeze=False)
  for ax, alpha in zip(axs[0], cfg.alphas):
    for n, a in client_acc.items():
      if n.endswith(f"_a{alpha}"):
        ax.hist(a, bins=20, range=(0, 1), histtype="step", label=n.rsplit("_a", 1)[0])
    ax.set(title=f"per-client accuracy, alpha={alpha}", xlabel="accuracy on own data",
           ylabel="clients")
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(out_dir / "client_accuracy_hist.png", dpi=110)
  plt.close(fig)


def report(result: dict) -> str:
  """Markdown table: final / best accuracy and rounds to target per run."""
  cfg = result.get("config", {})
  lines = [f"Dataset {cfg.get('dataset')}, K={cfg.get('num_clients')}, S={cfg.get('per_round')},"
           f" E={cfg.get('local_epochs')}, B={cfg.get('batch_size')},"
           f" lr={cfg.get('learning_rate')},"
           f" {cfg.get('rounds')} rounds, CNN {cfg.get('channels')}/{cfg.get('hidden')},"
           f" {result.get('engine')} engine"
           f" (small offline reproduction: trends only).", "",
           "| run | final acc | best acc | rounds to target | pad waste | 10th pct client acc |"
           " seconds |", "|---|---|---|---|---|---|---|"]
  for name, r in result.get("runs", {}).items():
    if "diverged" in r:
      lines.append(f"| {name} | diverged | {r.get('best_accuracy', float('nan')):.4f} |"
                   f" {r.get('rounds_to_target')} | - | - | {r.get('seconds', 0):.0f} |")
      continue
    lines.append(f"| {name} | {r.get('final_accuracy', float('nan')):.4f} |"
                 f" {r.get('best_accuracy', float('nan')):.4f} | {r.get('rounds_to_target')} |"
                 f" {r.get('waste', 0):.2f} | {r.get('client_acc_p10', 0):.3f} |"
                 f" {r.get('seconds', 0):.0f} |")
  for name, r in result.get("runs", {}).items():
    if "diverged" in r:
      lines.append(f"\n{name}: {r['diverged']} (the NaN guard stopped this run; the others"
                   " went on)")
  return "\n".join(lines)
