"""FedFed studies: each base algorithm with and without FedFed, seeds (and noise sigmas)
as one set of stacked runs per method (a vmapped ``fl.Sweep`` or ``fl.runs.Runs`` on the
stepped / sequential engine); resumable; PNG plots beside the results.

Per setting ``alpha/K/S``: phase 1 (distillation) runs once for all runs (seeds x
sigmas), since it does not depend on the base algorithm; for every base, the
baseline and FedFed run as two sets of runs; the noise-sigma sweep rides along with the
first base (its runs are seeds x sigmas, the others use the default sigma).
"""

import dataclasses
import json
import pathlib
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core import plot
from jaxlab.core.checkpoint import Checkpointer
from jaxlab.core.errors import ConfigError, NonFiniteError
from jaxlab.core.metrics import MetricsWriter, write_json
from jaxlab.core.progress import progress
from jaxlab.federated import EngineConfig, algorithms, client_sgd, partition, phases, sample_clients
from jaxlab.federated import runs as runs_lib
from jaxlab.federated.engine import clients_mesh
from jaxlab.federated.eval import make_evaluate, pad_eval, per_client_accuracy
from jaxlab.federated.types import Model
from jaxlab.methods.fedfed import data as data_lib
from jaxlab.methods.fedfed import diagnostics
from jaxlab.methods.fedfed.config import SIGMA1, SIGMA2, FedFedConfig
from jaxlab.methods.fedfed.method import extra_fn, make

SIGMA2_RATIO = 1.25   # a swept sigma s sets sigma1 = s, sigma2 = 1.25·s (the reference's 0.2/0.25)


@dataclasses.dataclass(frozen=True, kw_only=True)
class StudyConfig:
  """One FedFed study (see docs/fedfed.md).

  Attributes:
    dataset: mnist, fashion_mnist, cifar10 (local cache or path), random_cifar, random_mnist.
    train_size / test_size: class-stratified subsets (0 = all).
    model: phase-2 classifier and g: ``cnn`` (FedAvg CNN) or ``resnet``.
    cnn_channels, cnn_hidden / resnet_stages, resnet_width: their sizes; cnn_im2col: the
      matmul convolution (XLA:CPU's fast path for convolutions under ``vmap`` or inside
      ``lax.scan``/``lax.switch``); None = on for g (phase 1 runs its passes in a
      ``lax.switch``) and for the phase-2 classifier only on the ``vmap`` engine (XLA's
      own convolution is faster at the top level of a program, where the stepped and
      sequential engines run their steps). Same function and init distribution; the
      kernels are drawn under other parameter paths, so the draw differs. cnn_first_conv:
      ``CNN.first_conv`` (``auto``: on CPU a one-channel first convolution runs as
      ``shift_conv``, ~11% faster; ``xla``: ``nn.Conv``, the runs before 2026-12-07).
    phase1_engine, phase2_engine: how the runs of each phase run (``fl.runs.make``):
      ``vmap`` (one vmapped ``fl.Sweep``: for accelerators), ``stepped`` (phase 2 only:
      each run on the host-stepped engine, one lane per CPU device; fastest on CPU for
      the phase-2 CNN) or ``sequential`` (one jitted step at a time; fastest on CPU for
      the VAE, whose phase-1 algorithm has no streaming ``reduce`` for the stepped
      engine). Same rounds on every engine (tests), up to float rounding.
    settings: ``"alpha/K/S"`` strings.
    bases: base algorithms.
    seeds: one run per seed (own partition, init and batches), vmapped.
    sigmas: extra noise levels s (sigma1 = s, sigma2 = 1.25 s) swept with the first base at
      the first setting; () = none.
    rounds, batch_size, local_epochs: phase 2 (B raw rows + B + B shared rows per step).
    learning_rate, momentum, weight_decay, mu: client SGD and FedProx mu (paper: 0.01, 0.9,
      1e-4, 0.1); persist_opt_state: per-client optimizer kept across rounds (as coded).
    fedfed: FedFedConfig (phase 1, noise, quirks).
    eval_every, checkpoint_every: rounds between evaluations / checkpoints (0 = never).
    step_bucket: the engine's scan-length bucketing; steps_per_call: the stepped engine's
      unrolled local steps per call (each power of two up to it compiles once; 1: the
      CNN step is long enough that dispatch costs little, and compiles are cut by ~13 s
      on the quick study).
  """
  dataset: str = "fashion_mnist"
  train_size: int = 0
  test_size: int = 0
  model: Literal["cnn", "resnet"] = "cnn"
  cnn_channels: tuple[int, int] = (32, 64)
  cnn_hidden: int = 512
  cnn_im2col: bool | None = None
  cnn_first_conv: Literal["auto", "xla", "shift"] = "auto"
  resnet_stages: tuple[int, ...] = (2, 2, 2, 2)
  resnet_width: int = 64
  settings: tuple[str, ...] = ("0.1/10/5",)
  bases: tuple[str, ...] = ("fedavg",)
  seeds: tuple[int, ...] = (0,)
  sigmas: tuple[float, ...] = ()
  rounds: int = 50
  batch_size: int = 32
  local_epochs: int = 1
  learning_rate: float = 0.01
  momentum: float = 0.9
  weight_decay: float = 1e-4
  mu: float = 0.1
  persist_opt_state: bool = True
  fedfed: FedFedConfig = dataclasses.field(default_factory=FedFedConfig)
  eval_every: int = 1
  checkpoint_every: int = 10
  step_bucket: str = "mult:8"
  steps_per_call: int = 1
  phase1_engine: Literal["sequential", "vmap"] = "sequential"
  phase2_engine: Literal["stepped", "sequential", "vmap"] = "stepped"


def _module(cfg: StudyConfig, num_classes: int, phase: int):
  from jaxlab.models import CNN, ResNet
  if cfg.model == "cnn":
    im2col = cfg.cnn_im2col
    if im2col is None:
      im2col = phase == 1 or cfg.phase2_engine == "vmap"
    return CNN(num_classes=num_classes, channels=cfg.cnn_channels, hidden=cfg.cnn_hidden,
               im2col=im2col, first_conv=cfg.cnn_first_conv)
  if cfg.model == "resnet":
    return ResNet(stage_sizes=cfg.resnet_stages, width=cfg.resnet_width, num_classes=num_classes)
  raise ConfigError(f"model={cfg.model!r}; use cnn or resnet")


def _base_kwargs(cfg: StudyConfig, base: str) -> dict:
  # FedNova's a_k models momentum within a round only: the engine refuses a momentum
  # buffer kept across rounds, so FedNova clients start each round with a fresh optimizer.
  kw = {"persist_opt_state": cfg.persist_opt_state and base != "fednova"}
  return {**kw, "mu": cfg.mu} if base == "fedprox" else kw


def _tx(cfg: StudyConfig):
  return client_sgd(cfg.learning_rate, cfg.momentum, cfg.weight_decay)


def _ckpt(out_dir: pathlib.Path, tag: str, every: int) -> Checkpointer | None:
  return Checkpointer(out_dir / "checkpoints" / tag) if every else None


def train(sweep, sims, keys, k: int, s: int, cfg: StudyConfig, evaluate,
          out_dir: pathlib.Path, tag: str, writer: MetricsWriter, offset: int):
  """``cfg.rounds`` rounds with evaluation, resuming from ``checkpoints/tag``.

  Returns:
    (sims, acc [evals, 1 + R]: round then each run's test accuracy).
  """
  acc, start = [], 0
  ckpt = _ckpt(out_dir, tag, cfg.checkpoint_every)
  if ckpt is not None and ckpt.latest_step() is not None:
    sims, extra = ckpt.restore(sims)
    start, acc = int(extra["round"]), [list(a) for a in extra["acc"]]
    _drop_rows(writer, tag, start)
  for r in progress(range(start, cfg.rounds), total=cfg.rounds - start, desc=tag):
    sims, m = sweep.run_round(sims, sample_clients(r, k, s), keys)
    row = {"run": tag, "round": r + 1}
    if (r + 1) % cfg.eval_every == 0 or r + 1 == cfg.rounds:
      a = np.asarray(evaluate(sims.server.params, sims.server.model_state))
      acc.append([r + 1, *a.tolist()])
      row.update(acc_mean=float(a.mean()), acc=a.tolist())
    m = jax.device_get(m)
    if not np.all(np.isfinite(np.asarray(m["loss"]))):
      raise NonFiniteError(f"{tag}: loss {m['loss']} at round {r + 1}; lower learning_rate")
    row.update({key: float(np.mean(v)) for key, v in m.items() if np.ndim(v) <= 1})
    writer.write(offset + r + 1, row)
    if ckpt is not None and ((r + 1) % cfg.checkpoint_every == 0 or r + 1 == cfg.rounds):
      ckpt.save(r + 1, sims, {"round": r + 1, "acc": acc})
  return sims, np.asarray(acc, np.float64)


def _drop_rows(writer: MetricsWriter, tag: str, start: int) -> None:
  """Drops this run's metric rows logged after round ``start`` (resume)."""
  rows = [r for r in writer.rows() if not (r.get("run") == tag and r.get("round", 0) > start)]
  writer.path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def summarize(acc: np.ndarray, target: float | None) -> dict[str, Any]:
  """Final / best mean ± std over runs and rounds to ``target`` on the run-mean curve."""
  rounds, a = acc[:, 0], acc[:, 1:]
  best = a.max(0)
  out = {"final_mean": float(a[-1].mean()), "final_std": float(a[-1].std()),
         "best_mean": float(best.mean()), "best_std": float(best.std()), "runs": a.shape[1]}
  if target is not None:
    hit = np.flatnonzero(a.mean(1) >= target - 1e-9)
    out["rounds_to_target"] = int(rounds[hit[0]]) if len(hit) else None
  return out


class Setting:
  """Everything one ``alpha/K/S`` setting shares: data, partitions, models, evaluation."""

  def __init__(self, cfg: StudyConfig, ds: data_lib.Arrays, setting: str):
    self.cfg, self.ds, self.setting = cfg, ds, setting
    alpha, self.k, self.s = partition.parse_setting(setting)
    self.parts = {seed: partition.hetero(ds.y_train, self.k, alpha, seed=seed)
                  for seed in cfg.seeds}
    self.sig = [(cfg.fedfed.sigma1, cfg.fedfed.sigma2)] + [
      (s, SIGMA2_RATIO * s) for s in cfg.sigmas]
    self.runs = [(seed, j) for seed in cfg.seeds for j in range(len(self.sig))]
    self.sample_x = jnp.asarray(ds.x_train[: cfg.fedfed.vae_batch], jnp.float32) / 255.0
    self.module = _module(cfg, ds.num_classes, phase=2)
    self.g = _module(cfg, ds.num_classes, phase=1)
    eb = min(500, len(ds.y_test))
    self.model = Model.from_linen(self.module, self.sample_x)
    ev = make_evaluate(self.model, eb)
    xt, yt, mt = pad_eval(ds.x_test, ds.y_test, eb)
    acc = lambda p, m: ev(p, m, xt, yt, mt)["accuracy"]
    # Run by run off the vmap engine: XLA's own convolution vmapped over runs is a
    # grouped convolution (~3x the CPU time of R plain ones on CPU).
    self.evaluate = jax.jit(jax.vmap(acc)) if cfg.phase2_engine == "vmap" else runs_lib.by_run(acc)
    self.eval_pred = jax.jit(lambda p, m, x: self.model.apply(p, m, x, False)[0].argmax(-1))

  def fedfed(self, base: str):
    cfg = self.cfg
    return make(self.module, self.g, config=cfg.fedfed, sample_x=self.sample_x,
                client_tx=_tx(cfg), num_clients=self.k, num_classes=self.ds.num_classes,
                batch_size=cfg.batch_size, local_epochs=cfg.local_epochs, base=base,
                **_base_kwargs(cfg, base))

  def engine_config(self, batch_size: int, epochs: int) -> EngineConfig:
    return EngineConfig(batch_size=batch_size, local_epochs=epochs,
                        step_bucket=self.cfg.step_bucket, steps_per_call=self.cfg.steps_per_call)

  def runner(self, engine: str, alg, batch_size: int, epochs: int, runs, **kw):
    """The runs ``runs`` of ``alg`` on ``engine`` (``fl.runs.make``: a ``Sweep`` or
    ``fl.runs.Runs``, one lane per CPU device for the stepped engine)."""
    ds = self.ds
    mesh = clients_mesh() if engine == "stepped" and len(jax.devices()) > 1 else None
    return runs_lib.make(alg, self.engine_config(batch_size, epochs), ds.x_train, ds.y_train,
                         [self.parts[seed] for seed, _ in runs], engine=engine, mesh=mesh,
                         **kw)

  def keys(self, runs) -> jax.Array:
    return jnp.stack([jax.random.key(seed) for seed, _ in runs])

  def hparams(self, runs) -> dict:
    return {SIGMA1: jnp.asarray([self.sig[j][0] for _, j in runs], jnp.float32),
            SIGMA2: jnp.asarray([self.sig[j][1] for _, j in runs], jnp.float32)}


def distill(st: Setting, out_dir: pathlib.Path, writer: MetricsWriter, offset: int):
  """Phase 1, one run per seed at the default sigmas (resumable: one checkpoint at its end).

  The swept sigmas reuse their seed's VAE and change only the shared noise (and so
  phase 2): a cost cut, documented in docs/fedfed.md.
  """
  cfg = st.cfg
  runs = [(seed, 0) for seed in cfg.seeds]
  ff = st.fedfed(cfg.bases[0])
  ds = st.ds

  def make_runner(phase_alg, epochs):
    return st.runner(cfg.phase1_engine, phase_alg, cfg.fedfed.vae_batch, epochs, runs,
                     extra=extra_fn(ds.y_train, ds.num_classes, cfg.fedfed),
                     sampler=ff.phase_sampler)

  keys, hp = st.keys(runs), st.hparams(runs)
  tag = f"{st.setting.replace('/', '_')}_distill"
  ckpt = _ckpt(out_dir, tag, cfg.checkpoint_every)
  if ckpt is not None and ckpt.latest_step() is not None:
    runner = make_runner(ff.phase.plugin, ff.phase.local_epochs)
    sims = runner.init(jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, 1), hp)
    sims, _ = ckpt.restore(sims)
    return ff, sims
  ((runner, sims, hist),) = phases.run((ff.phase,), make_runner, keys, hp)
  for i, row in enumerate(hist):
    writer.write(offset + i + 1, {"run": tag, **{k: float(np.mean(v)) if np.ndim(v) <= 1 else v
                                               for k, v in row.items() if k != "phase"}})
  if ckpt is not None:
    ckpt.save(ff.phase.rounds, sims, {"round": ff.phase.rounds})
  return ff, sims


def run_fedfed(st: Setting, base: str, p1_sims, run_ids, out_dir, writer, offset):
  """Phase 2 of ``base`` + FedFed on the runs ``run_ids`` (indices into ``st.runs``)."""
  cfg = st.cfg
  runs = [st.runs[i] for i in run_ids]
  ff = st.fedfed(base)
  sweep = st.runner(cfg.phase2_engine, ff.algorithm, cfg.batch_size, cfg.local_epochs, runs,
                    sampler=ff.sampler)
  keys = st.keys(runs)
  sims = sweep.init(keys, st.hparams(runs))
  p1 = jax.tree.map(lambda a: a[jnp.asarray([cfg.seeds.index(seed) for seed, _ in runs])],
                    p1_sims)
  # Phase 1 may live on other devices (its own engine, or restored from a checkpoint).
  p1 = jax.device_put(p1, sims.server.round.sharding)
  pool_sims = phases.handoff(ff.phase, p1, sims)
  pool_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, 99)
  sweep = sweep.add_pool(ff.make_pool(sweep.width), pool_sims, pool_keys)
  del pool_sims
  tag = f"{st.setting.replace('/', '_')}_{base}_fedfed"
  sims, acc = train(sweep, sims, keys, st.k, st.s, cfg, st.evaluate, out_dir, tag, writer, offset)
  return sims, acc, runs


def run_baseline(st: Setting, base: str, out_dir, writer, offset):
  cfg = st.cfg
  runs = [(seed, 0) for seed in cfg.seeds]
  alg = algorithms.ALGORITHMS[base](st.model, _tx(cfg), num_clients=st.k, **_base_kwargs(cfg, base))
  sweep = st.runner(cfg.phase2_engine, alg, cfg.batch_size, cfg.local_epochs, runs)
  keys = st.keys(runs)
  tag = f"{st.setting.replace('/', '_')}_{base}"
  return train(sweep, sweep.init(keys), keys, st.k, st.s, cfg, st.evaluate, out_dir, tag,
               writer, offset)


def client_acc(st: Setting, sims, seed: int) -> np.ndarray:
  """Per-client accuracy of run 0's global model on each client's own training data."""
  p = jax.tree.map(lambda a: a[0], sims.server.params)
  m = jax.tree.map(lambda a: a[0], sims.server.model_state)
  x = jnp.asarray(st.ds.x_train, jnp.float32) / 255.0
  pred = np.concatenate([np.asarray(st.eval_pred(p, m, x[i:i + 1000]))
                         for i in range(0, len(x), 1000)])
  from jaxlab.federated.data import index_table
  idx, n = index_table(st.parts[seed])
  return per_client_accuracy(pred, st.ds.y_train, idx, n)


def _measure(st: Setting, ff, p1_sims, run: int) -> dict:
  """Diagnostics of run ``run``'s VAE on small train/test subsets."""
  ds = st.ds
  vae = jax.tree.map(lambda a: a[run], {"params": p1_sims.server.params,
                                        **p1_sims.server.model_state})
  tr = data_lib.stratified_subset(ds.y_train, 2000, 0)
  te = data_lib.stratified_subset(ds.y_test, 1000, 1)
  f = lambda a: jnp.asarray(a, jnp.float32) / 255.0
  sigma1 = st.sig[0][0]
  return diagnostics.measure(ff.vae, vae, f(ds.x_train[tr]), ds.y_train[tr], f(ds.x_test[te]),
                             ds.y_test[te], sigma1, jax.random.key(0), ds.num_classes)


def _hist(path: pathlib.Path, accs: dict[str, np.ndarray]) -> None:
  plt = plot._plt()
  fig, ax = plt.subplots(figsize=(6, 4))
  for label, a in accs.items():
    ax.hist(a, bins=np.linspace(0, 1, 21), alpha=0.5, label=label)
  ax.set(xlabel="global model accuracy on the client's own data", ylabel="clients")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def run_study(cfg: StudyConfig, out_dir: pathlib.Path) -> dict:
  """Runs the study; writes metrics.jsonl, summary.json and PNGs into ``out_dir``."""
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  unknown = set(cfg.bases) - set(algorithms.ALGORITHMS)
  if unknown:
    raise ConfigError(f"bases {sorted(unknown)} unknown; use {', '.join(algorithms.ALGORITHMS)}")
  ds = data_lib.load(cfg.dataset, cfg.train_size, cfg.test_size, seed=0)
  writer = MetricsWriter(out_dir)
  result: dict[str, Any] = {"settings": {}}
  offset = 0
  for setting in cfg.settings:
    st = Setting(cfg, ds, setting)
    ff, p1 = distill(st, out_dir, writer, offset)
    offset += cfg.fedfed.vae_rounds + 1
    default = [i for i, (_, j) in enumerate(st.runs) if j == 0]
    res: dict[str, Any] = {"diagnostics": _measure(st, ff, p1, 0)}
    stem = setting.replace("/", "_").replace(".", "p")
    for b, base in enumerate(cfg.bases):
      ids = list(range(len(st.runs))) if b == 0 and cfg.sigmas and setting == cfg.settings[0] \
        else default
      sims_b, acc_b = run_baseline(st, base, out_dir, writer, offset)
      offset += cfg.rounds + 1
      sims_f, acc_f, runs = run_fedfed(st, base, p1, ids, out_dir, writer, offset)
      offset += cfg.rounds + 1
      cols = [1 + i for i, (_, j) in enumerate(runs) if j == 0]
      acc_f0 = acc_f[:, [0, *cols]]
      target = float(acc_b[-1, 1:].mean())
      ca_b, ca_f = client_acc(st, sims_b, cfg.seeds[0]), client_acc(st, sims_f, cfg.seeds[0])
      res[base] = {"base": summarize(acc_b, target), "fedfed": summarize(acc_f0, target),
                   "target": target,
                   "client_acc_p10": {"base": float(np.percentile(ca_b, 10)),
                                      "fedfed": float(np.percentile(ca_f, 10))}}
      res[base]["gain_final"] = res[base]["fedfed"]["final_mean"] - res[base]["base"]["final_mean"]
      mean = lambda a: a[:, 1:].mean(1)
      band = lambda a: (mean(a) - a[:, 1:].std(1), mean(a) + a[:, 1:].std(1))
      plot.lines(out_dir / f"acc_{stem}_{base}.png", acc_b[:, 0],
                 {base: mean(acc_b), f"{base}+FedFed": mean(acc_f0)},
                 bands={base: band(acc_b), f"{base}+FedFed": band(acc_f0)}, xlabel="round",
                 ylabel="test accuracy", title=f"{setting} (mean ± std over seeds)")
      _hist(out_dir / f"client_acc_{stem}_{base}.png", {base: ca_b, f"{base}+FedFed": ca_f})
      if len(ids) > len(default):
        by_sigma = {}
        for j, (s1, _) in enumerate(st.sig):
          cj = [1 + i for i, (_, jj) in enumerate(runs) if jj == j]
          by_sigma[s1] = summarize(acc_f[:, [0, *cj]], None)["final_mean"]
        res["accuracy_vs_sigma"] = {str(k): v for k, v in sorted(by_sigma.items())}
        xs = sorted(by_sigma)
        plot.lines(out_dir / f"acc_vs_sigma_{stem}.png", xs,
                   {f"{base}+FedFed": [by_sigma[x] for x in xs],
                    f"{base} (no sharing)": [target] * len(xs)},
                   xlabel="noise sigma1 (sigma2 = 1.25 sigma1)", ylabel="final test accuracy",
                   title=f"{setting}: accuracy vs noise (one vmapped sweep)")
    result["settings"][setting] = res
  result["config_note"] = (f"{cfg.dataset} train_size={cfg.train_size or 'all'} model={cfg.model}"
                           f" rounds={cfg.rounds} vae_rounds={cfg.fedfed.vae_rounds}")
  write_json(out_dir / "summary.json", result)
  return result


def report(result: dict, title: str) -> str:
  """Markdown tables of a study's result."""
  out = [f"### {title}", "", "| alpha/K/S | base | final (no FedFed) | final (FedFed) | gain |"
         " best (no / with) | rounds to no-FedFed final | p10 client acc (no / with) |",
         "|---|---|---|---|---|---|---|---|"]
  pct = lambda d, k: f"{100 * d[k + '_mean']:.2f} ± {100 * d[k + '_std']:.2f}"
  for s, res in result["settings"].items():
    for base, r in res.items():
      if not isinstance(r, dict) or "base" not in r:
        continue
      out.append(f"| {s} | {base} | {pct(r['base'], 'final')} | {pct(r['fedfed'], 'final')} | "
                 f"{100 * r['gain_final']:+.2f} | {100 * r['base']['best_mean']:.2f} / "
                 f"{100 * r['fedfed']['best_mean']:.2f} | {r['base']['rounds_to_target']} / "
                 f"{r['fedfed']['rounds_to_target']} | {r['client_acc_p10']['base']:.3f} / "
                 f"{r['client_acc_p10']['fedfed']:.3f} |")
  for s, res in result["settings"].items():
    d = res["diagnostics"]
    out += ["", f"Diagnostics {s}: VAE recon MSE {d['recon_mse']:.4f}, x_s energy "
            f"{100 * d['xs_energy_frac']:.1f}% of x, g test acc {d['g_test_acc']:.3f}; "
            "nearest-class-mean acc: " + ", ".join(
              f"{k[8:]} {v:.3f}" for k, v in d.items() if k.startswith("ncm_acc_"))]
    if "accuracy_vs_sigma" in res:
      out.append("Accuracy vs sigma1: " + ", ".join(
        f"{k}: {100 * v:.2f}" for k, v in res["accuracy_vs_sigma"].items()))
  return "\n".join(out) + "\n"
