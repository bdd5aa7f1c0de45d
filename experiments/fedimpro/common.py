"""Shared driver of the FedImpro experiments: FedAvg vs FedImpro, seeds as one vmap.

For every setting ``alpha/K/S`` both methods run R = len(seeds) simulations as one
vmapped program (``jaxlab.federated.sweep.Sweep``; each seed has its own Dirichlet
partition and class counts, init and batch order; client sampling is round-seeded as in
the reference). Ablations (split
depth, upload noise sigma) run at the first setting; the noise sigmas are swept
inside the same vmap (seeds x sigmas). ``variants`` adds FedImpro runs with other
estimators (``VARIANTS``) at every setting, and every FedImpro run logs per round how far
the global feature estimate is from the true class statistics of the global model's
features on (up to ``probe_size`` rows of) the training set.
"""

import dataclasses
import json
import pathlib
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from experiments.fedimpro import datasets as data_lib
from jaxlab.core import plot
from jaxlab.core.checkpoint import Checkpointer
from jaxlab.core.errors import ConfigError, NonFiniteError
from jaxlab.core.metrics import MetricsWriter, write_json
from jaxlab.core.progress import progress
from jaxlab.federated import EngineConfig, algorithms, client_sgd, partition, sample_clients
from jaxlab.federated.eval import make_evaluate, pad_eval
from jaxlab.federated.types import Model
from jaxlab.methods import fedimpro
from jaxlab.methods.fedimpro import FedImproConfig
from jaxlab.methods.fedimpro.diagnostics import estimate_error, true_class_stats
from jaxlab.federated.sweep import Sweep

# Named FedImpro variants (overrides of Config.fedimpro), run beside the default.
VARIANTS = {
  "as_coded": {"estimator": "as_coded"},
  "as_coded_noclip": {"estimator": "as_coded", "sigma_clip": None},
  "count_ema_noclip": {"estimator": "count_ema", "sigma_clip": None},
  "last_batch": {"estimator": "last_batch"},
  "faithful": {"estimator": "running", "sigma_clip": None,
               "server_estimate": "selected_label_size"},
  # Diagnostics, not federated: after every round the driver sets the global estimate to
  # the true class mean/std of the new global model's features on the probe rows; the
  # clients never update it (beta_m = 1). ``oracle_clip`` keeps the 0.1 sigma clip.
  "oracle": {"estimator": "as_coded", "client_beta": 1.0, "sigma_clip": None},
  "oracle_clip": {"estimator": "as_coded", "client_beta": 1.0},
}
ORACLES = ("oracle", "oracle_clip")
_EST_KEYS = ("est_rel_mean_err", "est_sigma_ratio", "est_sigma", "true_std")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
  """One FedImpro-vs-FedAvg study (see docs/fedimpro.md).

  Attributes:
    dataset: ``mnist``, ``fashion_mnist``, ``cifar10`` (or a local path / cached HF
      name with ``img``/``image`` and ``label`` columns), or ``random_cifar``.
    train_size / test_size: keep a class-stratified random subset (0 = all).
    model: ``mlp``, ``cnn`` or ``resnet`` (staged jaxlab models).
    hidden: MLP hidden widths.
    resnet_stages / resnet_width: ResNet depth (2,2,2,2 = ResNet-18) and width.
    split_after: last stage of the low-level part.
    settings: ``"alpha/K/S"`` strings (Dirichlet alpha, clients, clients per round).
    seeds: one simulation per seed, vmapped together.
    rounds, batch_size, local_epochs: federated schedule.
    learning_rate, momentum, weight_decay: client SGD (the paper: momentum 0).
    fedimpro: the FedImpro settings.
    target: accuracy target for rounds-to-target; 0 = FedAvg's best mean accuracy in
      that setting (the paper's Table 2 definition).
    ablation_splits: extra split depths for FedImpro at the first setting.
    ablation_sigmas: upload-noise sigmas for FedImpro at the first setting.
    variants: extra FedImpro runs at every setting, names of ``VARIANTS`` (e.g.
      ``as_coded``, ``faithful``); their tags are ``<setting>_fedimpro_<name>``.
    probe_size: training rows (a fixed random subset) on which the estimator error is
      measured at every evaluation; 0 = off.
    eval_every: evaluate every this many rounds.
    checkpoint_every: orbax checkpoint every this many rounds (0 = never).
    step_bucket: the engine's scan-length bucketing.
  """

  dataset: str = "fashion_mnist"
  train_size: int = 0
  test_size: int = 0
  model: Literal["mlp", "cnn", "resnet"] = "mlp"
  hidden: tuple[int, ...] = (200, 200)
  resnet_stages: tuple[int, ...] = (2, 2, 2, 2)
  resnet_width: int = 64
  split_after: int = 0
  settings: tuple[str, ...] = ("0.1/10/5", "0.05/10/5", "0.1/100/10")
  seeds: tuple[int, ...] = (0, 1, 2)
  rounds: int = 100
  batch_size: int = 64
  local_epochs: int = 1
  learning_rate: float = 0.05
  momentum: float = 0.0
  weight_decay: float = 1e-4
  fedimpro: FedImproConfig = dataclasses.field(
    default_factory=lambda: FedImproConfig(fake_weight_max_epochs=50.0))
  target: float = 0.0
  ablation_splits: tuple[int, ...] = ()
  ablation_sigmas: tuple[float, ...] = ()
  variants: tuple[str, ...] = ()
  probe_size: int = 2000
  eval_every: int = 1
  checkpoint_every: int = 25
  step_bucket: str = "mult:8"


def variant_config(base: FedImproConfig, name: str) -> FedImproConfig:
  """``base`` with the overrides of ``VARIANTS[name]``."""
  if name not in VARIANTS:
    raise ConfigError(f"variant {name!r} is unknown; use one of {', '.join(VARIANTS)}")
  over = dict(VARIANTS[name])
  if over.get("estimator") != "last_batch":
    over["quirk_last_batch_estimator"] = False
  return dataclasses.replace(base, **over)


def paired_ci(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
  """Mean and 95% t half-width of the per-seed differences ``a - b`` (paired seeds)."""
  from scipy import stats

  d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
  if len(d) < 2:
    return float(d.mean()), float("nan")
  half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
  return float(d.mean()), float(half)


def _module(cfg: Config, num_classes: int):
  from jaxlab.models import CNN, MLP, ResNet

  if cfg.model == "mlp":
    return MLP(hidden=cfg.hidden, num_classes=num_classes)
  if cfg.model == "cnn":
    return CNN(num_classes=num_classes)
  if cfg.model == "resnet":
    return ResNet(stage_sizes=cfg.resnet_stages, width=cfg.resnet_width,
                  num_classes=num_classes)
  raise ConfigError(f"model={cfg.model!r}; use mlp, cnn or resnet")


class Run:
  """One (setting, method) sweep over seeds (and sigmas), resumable."""

  def __init__(self, cfg: Config, ds: data_lib.Arrays, setting: str, method: str,
               split_after: int, sigmas: tuple[float, ...] = (0.0,),
               fi_config: FedImproConfig | None = None, oracle: bool = False):
    alpha, k, s = partition.parse_setting(setting)
    self.cfg, self.k, self.s, self.method = cfg, k, s, method
    self.probe = self.truth = None
    c = ds.num_classes
    self.parts = [partition.hetero(ds.y_train, k, alpha, seed=seed) for seed in cfg.seeds]
    module = _module(cfg, c)
    sample_x = ds.preprocess(jnp.asarray(ds.x_train[: cfg.batch_size]))
    tx = client_sgd(cfg.learning_rate, cfg.momentum, cfg.weight_decay)
    if method == "fedavg":
      self.model = Model.from_linen(module, sample_x)
      alg = algorithms.fedavg(self.model, tx, num_clients=k)
    else:
      fi = fedimpro.make(module, split_after=split_after, sample_x=sample_x, client_tx=tx,
                         config=fi_config or cfg.fedimpro, num_clients=k, num_classes=c,
                         batch_size=cfg.batch_size, local_epochs=cfg.local_epochs)
      self.model, alg = fi.model, fi.algorithm
      if cfg.probe_size:
        self.probe, self.truth = _make_probe(fi.split, ds, cfg.probe_size)
      if oracle and self.truth is None:
        raise ConfigError("the oracle variants need probe_size > 0 (the rows they read)")
      self.clip = (fi_config or cfg.fedimpro).sigma_clip
    self.oracle = oracle
    # Runs: seeds x sigmas (row-major); a seed's partition and key repeat over sigmas.
    self.labels = [(seed, sig) for seed in cfg.seeds for sig in sigmas]
    which = [cfg.seeds.index(seed) for seed, _ in self.labels]
    self.keys = jnp.stack([jax.random.key(seed) for seed, _ in self.labels])
    self.sigmas = np.asarray([sig for _, sig in self.labels], np.float32)
    ecfg = EngineConfig(batch_size=cfg.batch_size, local_epochs=cfg.local_epochs,
                        step_bucket=cfg.step_bucket)
    self.sweep = Sweep(alg, ecfg, ds.x_train, ds.y_train, [self.parts[i] for i in which],
                       extra=fedimpro.class_counts(ds.y_train, c), preprocess=ds.preprocess)
    eb = min(500, len(ds.y_test))
    ev = make_evaluate(self.model, eb, ds.preprocess)
    xt, yt, mt = pad_eval(ds.x_test, ds.y_test, eb)
    self.evaluate = jax.jit(jax.vmap(lambda p, m: ev(p, m, xt, yt, mt)["accuracy"]))

  def init(self):
    hp = {} if self.method == "fedavg" else {"upload_noise_std": self.sigmas}
    return self.sweep.init(self.keys, hp)

  def train(self, out_dir: pathlib.Path, tag: str, writer: MetricsWriter, offset: int):
    """Runs all rounds, resuming from ``out_dir/checkpoints/tag``; returns acc [R, rounds']."""
    cfg = self.cfg
    sims, acc, start = self.init(), [], 0
    ckpt = Checkpointer(out_dir / "checkpoints" / tag) if cfg.checkpoint_every else None
    if ckpt is not None and ckpt.latest_step() is not None:
      sims, extra = ckpt.restore(sims)
      start, acc = int(extra["round"]), [list(a) for a in extra["acc"]]
      _drop_rows(writer, tag, start)
    if self.oracle and start == 0:
      sims = self._set_oracle(sims)
    for r in progress(range(start, cfg.rounds), total=cfg.rounds - start, desc=tag):
      ids = sample_clients(r, self.k, self.s)
      sims, m = self.sweep.run_round(sims, ids, self.keys)
      if self.oracle:
        sims = self._set_oracle(sims)
      row = {"run": tag, "round": r + 1}
      if (r + 1) % cfg.eval_every == 0 or r + 1 == cfg.rounds:
        a = np.asarray(self.evaluate(sims.server.params, sims.server.model_state))
        acc.append([r + 1, *a.tolist()])
        row.update(acc_mean=float(a.mean()), acc=a.tolist())
        if self.probe is not None:
          e = jax.device_get(self.probe(sims.server.params, sims.server.model_state,
                                        sims.server.ext["stats"]))
          row.update({k: float(np.mean(e[k])) for k in _EST_KEYS})
          row.update({f"{k}_runs": np.asarray(e[k]).tolist() for k in _EST_KEYS})
      m = jax.device_get(m)
      loss = np.asarray(m["loss"])
      if not np.all(np.isfinite(loss)):
        raise NonFiniteError(f"{tag}: loss {loss} at round {r + 1}; lower learning_rate")
      row.update({k: float(np.mean(v)) for k, v in m.items() if np.ndim(v) <= 1})
      writer.write(offset + r + 1, row)
      if ckpt is not None and ((r + 1) % cfg.checkpoint_every == 0 or r + 1 == cfg.rounds):
        ckpt.save(r + 1, sims, {"round": r + 1, "acc": acc})
    return np.asarray(acc, np.float64)  # [evals, 1 + R]


  def _set_oracle(self, sims):
    """The global estimate := true class stats of the global model (diagnostic only)."""
    true = self.truth(sims.server.params, sims.server.model_state)
    if self.clip is not None:
      true = true._replace(sigma=jnp.minimum(true.sigma, self.clip))
    ext = {**sims.server.ext, "stats": true}
    return sims._replace(server=sims.server._replace(ext=ext))


def _make_probe(split, ds: data_lib.Arrays, size: int):
  """On a fixed training subset, vmapped over runs:
  ``probe(params, model_state, stats) -> estimate_error`` and
  ``truth(params, model_state) -> FeatureStats`` (true class mean / std)."""
  idx = np.sort(np.random.RandomState(0).permutation(len(ds.y_train))[:size])
  x = ds.preprocess(jnp.asarray(ds.x_train[idx]))
  y = jnp.asarray(ds.y_train[idx])

  def one(params, model_state, stats):
    h, _ = split.low(params, model_state, x, False)
    return estimate_error(stats, h, y, ds.num_classes)

  def truth(params, model_state):
    h, _ = split.low(params, model_state, x, False)
    return true_class_stats(h, y, ds.num_classes)[1]

  return jax.jit(jax.vmap(one)), jax.jit(jax.vmap(truth))


def estimator_trace(writer: MetricsWriter, tag: str, at: tuple[int, ...] = (5, 10, 20)):
  """The estimator-error metrics of run ``tag`` at the given rounds and the last one."""
  rows = [r for r in writer.rows() if r.get("run") == tag and "est_rel_mean_err" in r]
  if not rows:
    return {}
  want = [r for r in rows if r["round"] in at] + [rows[-1]]
  return {str(r["round"]): {k: r[k] for k in _EST_KEYS} for r in want}


def _drop_rows(writer: MetricsWriter, tag: str, start: int) -> None:
  """Drops this run's metric rows logged after round ``start`` (resume)."""
  rows = [r for r in writer.rows() if not (r.get("run") == tag and r.get("round", 0) > start)]
  writer.path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def _best(acc: np.ndarray) -> np.ndarray:
  """Per-run best accuracy [R] of an ``[evals, 1 + R]`` curve."""
  return acc[:, 1:].max(0)


def summarize(acc: np.ndarray, target: float) -> dict[str, Any]:
  """Best/final accuracy mean and std over runs, rounds to target on the mean curve."""
  rounds, a = acc[:, 0], acc[:, 1:]
  best = a.max(0)
  mean_curve = a.mean(1)
  hit = np.flatnonzero(mean_curve >= target - 1e-9)
  return {
    "best_mean": float(best.mean()), "best_std": float(best.std()),
    "final_mean": float(a[-1].mean()), "final_std": float(a[-1].std()),
    "rounds_to_target": int(rounds[hit[0]]) if len(hit) else None,
  }


def run(cfg: Config, out_dir: pathlib.Path) -> dict:
  out_dir = pathlib.Path(out_dir)
  for v in cfg.variants:  # fail before any training on an unknown name
    variant_config(cfg.fedimpro, v)
  ds = data_lib.load(cfg.dataset, cfg.train_size, cfg.test_size, seed=0)
  writer = MetricsWriter(out_dir)
  result: dict[str, Any] = {"settings": {}, "ablations": {}}
  offset, curves = 0, {}
  for setting in cfg.settings:
    res, sub = {}, {}
    for method in ("fedavg", "fedimpro", *(f"fedimpro_{v}" for v in cfg.variants)):
      tag = f"{setting.replace('/', '_')}_{method}"
      fic = variant_config(cfg.fedimpro, method[9:]) if method.startswith("fedimpro_") else None
      acc = Run(cfg, ds, setting, "fedavg" if method == "fedavg" else "fedimpro",
                cfg.split_after, fi_config=fic,
                oracle=method[9:] in ORACLES).train(out_dir, tag, writer, offset)
      offset += cfg.rounds + 1
      curves[(setting, method)] = acc
    # The paper's Table 2 target: FedAvg's best (here: of the seed-mean curve).
    target = cfg.target or float(curves[(setting, "fedavg")][:, 1:].mean(1).max())
    for method in ("fedavg", "fedimpro"):
      sub[method] = summarize(curves[(setting, method)], target)
    res = {**sub, "target": target,
           "gain_best": sub["fedimpro"]["best_mean"] - sub["fedavg"]["best_mean"]}
    res["gain_ci"] = paired_ci(_best(curves[(setting, "fedimpro")]),
                               _best(curves[(setting, "fedavg")]))
    tag0 = setting.replace('/', '_')
    res["estimator_error"] = {"fedimpro": estimator_trace(writer, f"{tag0}_fedimpro")}
    res["variants"] = {}
    for v in cfg.variants:
      cv = curves[(setting, f"fedimpro_{v}")]
      res["variants"][v] = {
        **summarize(cv, target),
        "gain_ci": paired_ci(_best(cv), _best(curves[(setting, "fedavg")])),
        "vs_fedimpro_ci": paired_ci(_best(cv), _best(curves[(setting, "fedimpro")])),
      }
      res["estimator_error"][v] = estimator_trace(writer, f"{tag0}_fedimpro_{v}")
    result["settings"][setting] = res
    _plot(out_dir, setting, {m: curves[(setting, m)] for m in ("fedavg", "fedimpro")})
  first = cfg.settings[0]
  base = result["settings"][first]["fedimpro"]["best_mean"]
  if cfg.ablation_splits:
    abl = {str(cfg.split_after): base}
    for sp in cfg.ablation_splits:
      tag = f"ablation_split{sp}"
      acc = Run(cfg, ds, first, "fedimpro", sp).train(out_dir, tag, writer, offset)
      offset += cfg.rounds + 1
      abl[str(sp)] = summarize(acc, 1.0)["best_mean"]
    result["ablations"]["split_after"] = abl
  if cfg.ablation_sigmas:
    sig = tuple(cfg.ablation_sigmas)
    run_ = Run(cfg, ds, first, "fedimpro", cfg.split_after, sigmas=sig)
    acc = run_.train(out_dir, "ablation_sigma", writer, offset)
    offset += cfg.rounds + 1
    abl = {}
    for j, s in enumerate(sig):
      cols = [1 + i for i, (_, sg) in enumerate(run_.labels) if sg == s]
      abl[str(s)] = summarize(acc[:, [0, *cols]], 1.0)["best_mean"]
    result["ablations"]["upload_noise_std"] = abl
  result["config_note"] = (f"{cfg.dataset} train_size={cfg.train_size or 'all'} "
                           f"model={cfg.model} split_after={cfg.split_after} rounds={cfg.rounds}")
  write_json(out_dir / "summary.json", result)
  return result


def _plot(out_dir: pathlib.Path, setting: str, curves: dict[str, np.ndarray]) -> None:
  x = curves["fedavg"][:, 0]
  ys = {m: c[:, 1:].mean(1) for m, c in curves.items()}
  bands = {m: (c[:, 1:].mean(1) - c[:, 1:].std(1), c[:, 1:].mean(1) + c[:, 1:].std(1))
           for m, c in curves.items()}
  name = "acc_" + setting.replace("/", "_").replace(".", "p") + ".png"
  plot.lines(out_dir / name, x, ys, bands=bands, xlabel="round", ylabel="test accuracy",
             title=f"alpha/K/S = {setting} (mean ± std over seeds)")


def report(result: dict, title: str) -> str:
  """Markdown table of the result."""
  head = ("| alpha/K/S | FedAvg best | FedImpro best | gain | "
          "rounds to FedAvg best (FedAvg / FedImpro) |")
  out = [f"### {title}", "", head, "|---|---|---|---|---|"]
  for s, r in result["settings"].items():
    fa, fi = r["fedavg"], r["fedimpro"]
    out.append(f"| {s} | {100 * fa['best_mean']:.2f} ± {100 * fa['best_std']:.2f} | "
               f"{100 * fi['best_mean']:.2f} ± {100 * fi['best_std']:.2f} | "
               f"{100 * r['gain_best']:+.2f} | {fa['rounds_to_target']} / "
               f"{fi['rounds_to_target']} |")
  for s, r in result["settings"].items():
    for v, rv in r.get("variants", {}).items():
      g, h = rv["gain_ci"]
      d, hd = rv["vs_fedimpro_ci"]
      out.append(f"| {s} FedImpro[{v}] | | {100 * rv['best_mean']:.2f} ± "
                 f"{100 * rv['best_std']:.2f} | {100 * g:+.2f} ± {100 * h:.2f} (95% CI); "
                 f"vs default {100 * d:+.2f} ± {100 * hd:.2f} | {rv['rounds_to_target']} |")
  for s, r in result["settings"].items():
    for v, tr in r.get("estimator_error", {}).items():
      if tr:
        out.append("")
        out.append(f"Estimator error {s} {v}: " + "; ".join(
          f"r{k}: rel mean err {e['est_rel_mean_err']:.3f}, sigma {e['est_sigma']:.3f} vs "
          f"true std {e['true_std']:.3f} (ratio {e['est_sigma_ratio']:.2f})"
          for k, e in tr.items()))
  for name, abl in result.get("ablations", {}).items():
    out.append("")
    out.append(f"Ablation {name}: " + ", ".join(f"{k}: {100 * v:.2f}" for k, v in abl.items()))
  return "\n".join(out) + "\n"
