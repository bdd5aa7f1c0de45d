"""The Twin-sight study: the paper's six methods (and Twin-sight ablations) over seeds.

Each method runs its R = seeds (x ablation variants, for Twin-sight) simulations as
one vmapped program (``fl.Sweep``: per-seed Dirichlet partition, labeled clients or
label split, init and batch order; the ablations are the swept scalars ``sim``,
``insdis`` and ``np_xor`` in the same vmap). Client sampling is round-seeded, the same
for every method and seed. Resumable per method (orbax), one metrics row per round.
"""

import dataclasses
import json
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core import plot
from jaxlab.core.checkpoint import Checkpointer
from jaxlab.core.errors import ConfigError, NonFiniteError
from jaxlab.core.metrics import MetricsWriter, write_json
from jaxlab.core.progress import progress
from jaxlab.federated import EngineConfig, client_sgd, partition, sample_clients, schedule
from jaxlab.federated.eval import make_evaluate_server, pad_eval
from jaxlab.federated.sweep import Sweep
from jaxlab.methods.twin_sight import data as data_lib
from jaxlab.methods.twin_sight import settings
from jaxlab.methods.twin_sight.augment import AugConfig
from jaxlab.methods.twin_sight.config import TwinSightConfig
from jaxlab.methods.twin_sight.method import METHODS, make
from jaxlab.methods.twin_sight.model import BackboneConfig, make_twin

ABLATIONS = ("np_off", "insdis_off", "np_xor")
LABELS = {"fedavg_lower": "FedAvg lower bound", "fedavg_upper": "FedAvg upper bound",
          "fedprox_lower": "FedProx lower bound", "fixmatch": "FedAvg+FixMatch",
          "freematch": "FedAvg+FreeMatch", "twin_sight": "Twin-sight",
          "twin_sight/np_off": "Twin-sight, NP off (sim=0)",
          "twin_sight/insdis_off": "Twin-sight, instance discr. off (insDis=0)",
          "twin_sight/np_xor": "Twin-sight, XOR normaliser (B^2 quirk)"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class StudyConfig:
  """One Twin-sight study (see docs/twin_sight.md).

  Attributes:
    dataset: ``fashion_mnist``, ``mnist``, ``cifar10`` (or a local path) or ``random_cifar``.
    train_size / test_size: class-stratified subsets (0 = all).
    num_clients / per_round / alpha: K, S, Dirichlet alpha.
    unlabeled_fraction: PC fraction of unlabeled clients (reference ids where known).
    labeled_fraction: PD labeled fraction per client.
    methods: from ``METHODS``; ablations: from ``ABLATIONS`` (Twin-sight variants).
    seeds: partition/init/training seeds, one vmapped run each.
    rounds, batch_size, local_epochs, learning_rate, momentum, weight_decay: schedule and SGD.
    backbone / proj_hidden / proj_dim: the twin (ResNet-18 + 4096/2048 in the paper).
    twin: Twin-sight settings (PC/PD, losses, quirks); aug: the views.
    fedprox_mu / prox_half: the FedProx lower bound.
    eval_every / checkpoint_every / step_bucket / groups: engine and loop.
  """
  dataset: str = "fashion_mnist"
  train_size: int = 0
  test_size: int = 0
  num_clients: int = 10
  per_round: int = 5
  alpha: float = 0.1
  unlabeled_fraction: float = 0.6
  labeled_fraction: float = 0.05
  methods: tuple[str, ...] = METHODS
  ablations: tuple[str, ...] = ()
  seeds: tuple[int, ...] = (0, 1, 2)
  rounds: int = 500
  batch_size: int = 64
  local_epochs: int = 1
  learning_rate: float = 0.01
  momentum: float = 0.9
  weight_decay: float = 1e-4
  backbone: BackboneConfig = BackboneConfig()
  proj_hidden: int = 4096
  proj_dim: int = 2048
  twin: TwinSightConfig = TwinSightConfig()
  aug: AugConfig = AugConfig()
  fedprox_mu: float = 0.5
  prox_half: bool = False
  eval_every: int = 1
  checkpoint_every: int = 25
  step_bucket: str = "mult:8"
  groups: int = 1

  def __post_init__(self):
    bad = [m for m in self.methods if m not in METHODS]
    bad += [a for a in self.ablations if a not in ABLATIONS]
    if bad:
      raise ConfigError(f"unknown methods/ablations {bad}; methods: {METHODS}, ablations:"
                        f" {ABLATIONS}")
    if not 1 <= self.per_round <= self.num_clients:
      raise ConfigError(f"per_round={self.per_round}; need 1 <= per_round <= num_clients")


def _variant_hparams(cfg: StudyConfig, variant: str) -> dict:
  hp = {"sim": cfg.twin.sim, "insdis": cfg.twin.insdis, "np_xor": float(cfg.twin.quirk_np_xor)}
  return {**hp, **{"np_off": {"sim": 0.0}, "insdis_off": {"insdis": 0.0},
                   "np_xor": {"np_xor": 1.0}}.get(variant, {})}


class MethodRun:
  """One method's sweep over seeds (and Twin-sight ablation variants), resumable."""

  def __init__(self, cfg: StudyConfig, ds: data_lib.Arrays, method: str):
    self.cfg, self.method = cfg, method
    k, c = cfg.num_clients, ds.num_classes
    variants = ("",) + tuple(cfg.ablations) if method == "twin_sight" else ("",)
    self.runs = [(s, v) for s in cfg.seeds for v in variants]
    self.tags = [f"{method}/{v}" if v else method for v in variants]
    parts = {s: partition.hetero(ds.y_train, k, cfg.alpha, seed=s) for s in cfg.seeds}
    by_id = {id(parts[s][0]): s for s in cfg.seeds}
    if cfg.twin.setting == "pc":
      lab = {s: settings.pc_labeled(cfg.dataset, k, cfg.unlabeled_fraction, s) for s in cfg.seeds}
      extra = lambda p: {"labeled": lab[by_id[id(p[0])]]}
    else:
      extra = settings.pd_extra(cfg.labeled_fraction, len(ds.y_train), by_id)
    aug = cfg.aug._replace(mean=tuple(ds.mean), std=tuple(ds.std))
    sample = jnp.zeros((cfg.batch_size, *ds.x_train.shape[1:]), jnp.float32)
    twin = make_twin(cfg.backbone, c, sample, proj_hidden=cfg.proj_hidden, proj_dim=cfg.proj_dim,
                     predictor=cfg.twin.ssl_model == "byol")
    tx = client_sgd(cfg.learning_rate, cfg.momentum, cfg.weight_decay)
    self.built = make(method, twin, cfg.twin, aug, num_clients=k, num_classes=c, client_tx=tx,
                      batch_size=cfg.batch_size, fedprox_mu=cfg.fedprox_mu,
                      prox_half=cfg.prox_half, preprocess=schedule.default_preprocess)
    ecfg = EngineConfig(batch_size=cfg.batch_size, local_epochs=cfg.local_epochs,
                        step_bucket=cfg.step_bucket, groups=cfg.groups)
    self.sweep = Sweep(self.built.algorithm, ecfg, ds.x_train, ds.y_train,
                       [parts[s] for s, _ in self.runs], extra=extra, sampler=self.built.sampler)
    self.keys = jnp.stack([jax.random.key(s) for s, _ in self.runs])
    self.hparams = ({} if method != "twin_sight" else
                    {n: np.asarray([_variant_hparams(cfg, v)[n] for _, v in self.runs],
                                   np.float32) for n in ("sim", "insdis", "np_xor")})
    eb = min(500, len(ds.y_test))
    ev = make_evaluate_server(self.built.plugin.eval_logits, eb)
    xt, yt, mt = pad_eval(ds.x_test, ds.y_test, eb)
    self.evaluate = jax.jit(jax.vmap(lambda s: ev(s, xt, yt, mt)["accuracy"]))

  def train(self, out_dir: pathlib.Path, writer: MetricsWriter, offset: int) -> np.ndarray:
    """All rounds, resuming from ``out_dir/checkpoints/<method>``; acc [evals, 1 + R]."""
    cfg, tag = self.cfg, self.method
    sims, acc, start = self.sweep.init(self.keys, self.hparams), [], 0
    ckpt = Checkpointer(out_dir / "checkpoints" / tag) if cfg.checkpoint_every else None
    if ckpt is not None and ckpt.latest_step() is not None:
      sims, extra = ckpt.restore(sims)
      start, acc = int(extra["round"]), [list(a) for a in extra["acc"]]
      _drop_rows(writer, tag, start)
    for r in progress(range(start, cfg.rounds), total=cfg.rounds - start, desc=tag):
      sims, m = self.sweep.run_round(sims, sample_clients(r, cfg.num_clients, cfg.per_round),
                                     self.keys)
      row = {"run": tag, "round": r + 1}
      if (r + 1) % cfg.eval_every == 0 or r + 1 == cfg.rounds:
        a = np.asarray(self.evaluate(sims.server))
        acc.append([r + 1, *a.tolist()])
        row.update(acc_mean=float(a.mean()), acc=a.tolist())
      m = jax.device_get(m)
      if not np.all(np.isfinite(np.asarray(m["loss"]))):
        raise NonFiniteError(f"{tag}: loss {m['loss']} at round {r + 1}; lower learning_rate")
      row.update({k: float(np.mean(v)) for k, v in m.items()})
      writer.write(offset + r + 1, row)
      if ckpt is not None and ((r + 1) % cfg.checkpoint_every == 0 or r + 1 == cfg.rounds):
        ckpt.save(r + 1, sims, {"round": r + 1, "acc": acc})
    return np.asarray(acc, np.float64)


def _drop_rows(writer: MetricsWriter, tag: str, start: int) -> None:
  rows = [r for r in writer.rows() if not (r.get("run") == tag and r.get("round", 0) > start)]
  writer.path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def summarize(acc: np.ndarray, target: float | None) -> dict[str, Any]:
  """Final/best accuracy mean and std over seeds, the mean of the last 5 evaluations
  (the curves are noisy under label skew); first round the seed-mean curve reaches
  ``target``."""
  rounds, a = acc[:, 0], acc[:, 1:]
  out = {"final_mean": float(a[-1].mean()), "final_std": float(a[-1].std()),
         "last5_mean": float(a[-5:].mean()),
         "best_mean": float(a.max(0).mean()), "best_std": float(a.max(0).std())}
  if target is not None:
    hit = np.flatnonzero(a.mean(1) >= target - 1e-9)
    out["rounds_to_target"] = int(rounds[hit[0]]) if len(hit) else None
  return out


def split_runs(run: MethodRun, acc: np.ndarray) -> dict[str, np.ndarray]:
  """[evals, 1 + R] -> {tag: [evals, 1 + seeds]} (one entry per Twin-sight variant)."""
  variants = sorted({v for _, v in run.runs}, key=[v for _, v in run.runs].index)
  out = {}
  for tag, v in zip(run.tags, variants):
    cols = [1 + i for i, (_, vi) in enumerate(run.runs) if vi == v]
    out[tag] = acc[:, [0, *cols]]
  return out


def run(cfg: StudyConfig, out_dir: pathlib.Path) -> dict:
  """Runs every method of ``cfg``; writes metrics.jsonl, summary.json and PNG curves."""
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  ds = data_lib.load(cfg.dataset, cfg.train_size, cfg.test_size)
  writer, curves, offset = MetricsWriter(out_dir), {}, 0
  for method in cfg.methods:
    mr = MethodRun(cfg, ds, method)
    curves.update(split_runs(mr, mr.train(out_dir, writer, offset)))
    offset += cfg.rounds + 1
  lower = curves.get("fedavg_lower")
  target = float(lower[-1, 1:].mean()) if lower is not None else None
  result = {"methods": {t: summarize(c, target) for t, c in curves.items()},
            "target_lower_final": target, "setting": cfg.twin.setting,
            "note": (f"{cfg.dataset} train_size={cfg.train_size or 'all'} K={cfg.num_clients}"
                     f" S={cfg.per_round} alpha={cfg.alpha} rounds={cfg.rounds}"
                     f" B={cfg.batch_size} backbone={cfg.backbone.kind}"
                     f" seeds={list(cfg.seeds)} np_xor={cfg.twin.quirk_np_xor}")}
  _plot(out_dir, {t: c for t, c in curves.items() if "/" not in t}, "accuracy.png",
        f"{cfg.twin.setting.upper()}: test accuracy of f_s (mean ± std over seeds)")
  abl = {t: c for t, c in curves.items() if t.startswith("twin_sight")}
  if len(abl) > 1:
    _plot(out_dir, abl, "ablations.png", "Twin-sight ablations")
  write_json(out_dir / "summary.json", result)
  return result


def _plot(out_dir: pathlib.Path, curves: dict, name: str, title: str) -> None:
  if not curves:
    return
  x = next(iter(curves.values()))[:, 0]
  mean = {LABELS.get(t, t): c[:, 1:].mean(1) for t, c in curves.items()}
  bands = {LABELS.get(t, t): (c[:, 1:].mean(1) - c[:, 1:].std(1), c[:, 1:].mean(1)
                              + c[:, 1:].std(1)) for t, c in curves.items()}
  plot.lines(out_dir / name, x, mean, bands=bands, xlabel="round", ylabel="test accuracy",
             title=title)


PAPER_FMNIST = {"fedavg_upper": 88.98, "fedavg_lower": 72.46, "fedprox_lower": 70.71,
                "fixmatch": 67.52, "freematch": 63.10, "twin_sight": 79.95}


def report(result: dict, title: str) -> str:
  """Markdown table: final/best accuracy, rounds to the lower bound's final accuracy."""
  out = [f"### {title}", "", result.get("note", ""), "",
         "| method | final acc | best acc | mean of last 5 evals | rounds to lower-bound final"
         " | paper FMNIST (PC) |", "|---|---|---|---|---|---|"]
  for t, r in result["methods"].items():
    paper = PAPER_FMNIST.get(t)
    out.append(f"| {LABELS.get(t, t)} | {100 * r['final_mean']:.2f} ± {100 * r['final_std']:.2f}"
               f" | {100 * r['best_mean']:.2f} ± {100 * r['best_std']:.2f} |"
               f" {100 * r.get('last5_mean', float('nan')):.2f} | {r.get('rounds_to_target')} |"
               f" {paper if paper else '-'} |")
  return "\n".join(out) + "\n"
