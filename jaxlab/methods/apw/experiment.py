"""APW experiment glue: baselines, the eta x seed grid per fairness notion, tables, plots.

The loop runs in blocks of ``block`` iterations (one compiled call each, the
whole eta x seed grid vmapped); after each block the loop state is checkpointed
(orbax) and every iteration is logged to metrics.jsonl, so ``--resume`` picks up
mid-run and ends with the same numbers.

Selection rule: the reported APW numbers are those of the LAST iteration T of
each notion (the release has no stopping rule); the trajectory at iterations
``report_at`` is reported too.
"""

import dataclasses
import pathlib

import jax
import numpy as np

from jaxlab.core.checkpoint import Checkpointer
from jaxlab.core.metrics import MetricsWriter
from jaxlab.core.progress import progress
from jaxlab.methods.apw import data as apw_data
from jaxlab.methods.apw import loop, plots

METRICS = ("acc", "d_eop", "d_eo", "d_dp")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
  """One dataset, the three notions, an eta grid per notion, several seeds.

  Attributes:
    dataset: adult | compas | german | law | synthetic.
    kinds: fairness notions to run ("eop", "eo", "dp").
    etas_*: eta grid per notion (vmapped).  alpha_*: the release's alpha.
    iterations_*: T per notion.  seeds: seeds (splits for single-table sets).
    solver, cg_iters: the LR solver ("newton" or "cg", see ``loop.APWConfig``).
    subsample: keep only the first N train / N//2 test rows (0 = all; smoke).
  """

  dataset: str = "adult"
  kinds: tuple[str, ...] = ("eop", "eo", "dp")
  etas_eop: tuple[float, ...] = (0.0, 1.2)
  etas_eo: tuple[float, ...] = (0.0, 1.0)
  etas_dp: tuple[float, ...] = (0.0, 2.8)
  alpha_eop: float = 0.0
  alpha_eo: float = 1000.0
  alpha_dp: float = 1000.0
  iterations_eop: int = 20
  iterations_eo: int = 200
  iterations_dp: int = 100
  seeds: tuple[int, ...] = (0,)
  model: str = "logreg"
  warm_start: bool = True
  warm_steps: int = 4
  newton_steps: int = 12
  solver: str = "newton"
  cg_iters: int = 4
  block: int = 25
  report_at: tuple[int, ...] = (1, 10, 50, 100, 200)
  subsample: int = 0
  mlp_steps: int = 300
  multiplier_step: float = 1.0


def apw_config(cfg: Config, kind: str) -> loop.APWConfig:
  return loop.APWConfig(
    kind=kind, iterations=getattr(cfg, f"iterations_{kind}"),
    alpha=getattr(cfg, f"alpha_{kind}"), model=cfg.model, warm_start=cfg.warm_start,
    warm_steps=cfg.warm_steps, newton_steps=cfg.newton_steps, solver=cfg.solver,
    cg_iters=cfg.cg_iters, mlp_steps=cfg.mlp_steps,
    multiplier_step=cfg.multiplier_step, x64=cfg.model == "logreg")


def load_data(cfg: Config) -> apw_data.FairData:
  if cfg.dataset == "synthetic":
    d = apw_data.stack([apw_data.synthetic(s) for s in cfg.seeds])
  else:
    d = apw_data.load(cfg.dataset, cfg.seeds)
  if cfg.subsample:
    n, m = cfg.subsample, max(cfg.subsample // 2, 1)
    d = apw_data.FairData(d.x_train[:, :n], d.y_train[:, :n], d.a_train[:, :n],
                          d.x_test[:, :m], d.y_test[:, :m], d.a_test[:, :m], d.names)
  return d


def _mean_std(v: np.ndarray) -> list[float]:
  return [float(np.mean(v)), float(np.std(v))]


def _run_kind(cfg, kind, data, ckpt, writer, bar, resume_from):
  """Runs one notion in blocks; returns history {metric: [S, E, T]}."""
  acfg = apw_config(cfg, kind)
  etas = getattr(cfg, f"etas_{kind}")
  T = acfg.iterations
  state, hist, t = None, {}, 0
  if resume_from is not None:
    with jax.enable_x64(acfg.x64):
      abstract = jax.eval_shape(
        lambda: loop.compiled_init(acfg, len(etas))(loop._device_data(data),
                                                    loop.seed_keys(cfg.seeds)))
      leaves, extra = ckpt.restore({"leaves": jax.tree.leaves(abstract)})
    state = jax.tree.unflatten(jax.tree.structure(abstract), leaves["leaves"])
    hist = {k: np.asarray(v) for k, v in extra["hist"].items()}
    t = extra["t"]
    bar.update(t)
  while t < T:
    n = min(cfg.block, T - t)
    state, h = loop.run_sweep(acfg, data, etas, cfg.seeds, length=n, state=state)
    for k in (*METRICS, "grad_norm", "finite", "train_d_eop", "train_d_eo", "train_d_dp"):
      if k in h:
        hist[k] = np.concatenate([hist[k], h[k]], axis=2) if k in hist else h[k]
    for i in range(n):
      row = {k: h[k][:, :, i].mean(0).tolist() for k in METRICS}
      writer.write(_global_step(cfg, kind, t + i + 1), {"kind": kind, "iteration": t + i + 1,
                                                       "etas": list(etas), **row})
    t += n
    bar.update(n)
    ckpt.save(_global_step(cfg, kind, t), {"leaves": jax.tree.leaves(state)},
              {"kind": kind, "t": t, "hist": {k: v.tolist() for k, v in hist.items()}})
  return hist


def _global_step(cfg: Config, kind: str, t: int) -> int:
  before = cfg.kinds[: cfg.kinds.index(kind)]
  return sum(getattr(cfg, f"iterations_{k}") for k in before) + t


def _summarise(cfg, kind, hist, base, out_dir):
  etas = getattr(cfg, f"etas_{kind}")
  T = hist["acc"].shape[-1]
  last = {m: hist[m][:, :, -1] for m in METRICS}  # [S, E]
  per_eta = {f"{eta:g}": {m: _mean_std(last[m][:, e]) for m in METRICS}
             for e, eta in enumerate(etas)}
  if "finite" in hist:  # a run whose weights or multipliers stopped being finite
    ok = hist["finite"].all(axis=2)  # [S, E]
    for e, eta in enumerate(etas):
      per_eta[f"{eta:g}"]["diverged_seeds"] = int((~ok[:, e]).sum())
  traj = {f"{eta:g}": {str(it): {m: float(hist[m][:, e, it - 1].mean()) for m in METRICS}
                       for it in cfg.report_at if it <= T} for e, eta in enumerate(etas)}
  pts = {m: (last[m].mean(0), last[m].std(0)) for m in METRICS}
  bl = {k: {m: tuple(v[m]) for m in METRICS} for k, v in base.items()}
  plots.pareto(out_dir / f"pareto_{kind}.png", kind, np.asarray(etas), pts, bl)
  plots.trajectory(out_dir / f"trajectory_{kind}.png", kind, etas, hist)
  out = {"last": per_eta, "trajectory": traj, "iterations": T}
  if "grad_norm" in hist:
    g = hist["grad_norm"]
    out["max_grad_norm"] = float(np.max(np.where(np.isfinite(g), g, 0.0)))
  return out


def run(cfg: Config, out_dir: pathlib.Path) -> dict:
  """Baselines + APW for each notion; writes metrics.jsonl, checkpoints, plots."""
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  data = load_data(cfg)
  base_cfg = apw_config(cfg, cfg.kinds[0])
  raw = loop.baselines(base_cfg, data, cfg.seeds)
  base = {k: {m: _mean_std(v[m]) for m in METRICS} for k, v in raw.items()}
  ckpt = Checkpointer(out_dir / "checkpoints", max_to_keep=1)
  writer = MetricsWriter(out_dir)
  latest = ckpt.latest_step()
  resume_kind = None
  if latest is not None:
    resume_kind = _kind_at(cfg, latest)
    writer.truncate(latest)
  total = sum(getattr(cfg, f"iterations_{k}") for k in cfg.kinds)
  bar = progress(total=total, desc=f"apw-{cfg.dataset}")
  if resume_kind is not None:
    bar.update(_global_step(cfg, resume_kind, 0))
  result = {"dataset": cfg.dataset, "n_train": int(data.x_train.shape[1]),
            "n_test": int(data.x_test.shape[1]), "n_features": int(data.x_train.shape[2]),
            "seeds": list(cfg.seeds), "baselines": base, "apw": {},
            "selection_rule": "last iteration T of each notion (no stopping rule, as released)"}
  for kind in cfg.kinds:
    if resume_kind is not None and cfg.kinds.index(kind) < cfg.kinds.index(resume_kind):
      with np.load(out_dir / f"history_{kind}.npz") as z:
        hist = dict(z)
    else:
      hist = _run_kind(cfg, kind, data, ckpt, writer, bar,
                       latest if kind == resume_kind else None)
      np.savez(out_dir / f"history_{kind}.npz", **hist)
      resume_kind = None
    result["apw"][kind] = _summarise(cfg, kind, hist, base, out_dir)
  bar.close()
  ckpt.close()
  return result


def _kind_at(cfg: Config, step: int) -> str:
  for kind in cfg.kinds:
    if step <= _global_step(cfg, kind, getattr(cfg, f"iterations_{kind}")):
      return kind
  return cfg.kinds[-1]


def report(result: dict) -> str:
  """Markdown: baselines and APW per notion (last iteration), mean ± std over seeds."""
  fmt = lambda ms: f"{100 * ms[0]:.2f} ± {100 * ms[1]:.2f}"  # noqa: E731
  lines = [f"**{result['dataset']}**: {result['n_train']} train / {result['n_test']} test rows,"
           f" {result['n_features']} features, seeds {result['seeds']}. "
           f"Selection: {result['selection_rule']}.", "",
           "| method | acc % | ΔEOp % | ΔEO % | ΔDP % |", "|---|---|---|---|---|"]
  for name, m in result["baselines"].items():
    lines.append(f"| {name} | " + " | ".join(fmt(m[k]) for k in METRICS) + " |")
  for kind, r in result["apw"].items():
    for eta, m in r["last"].items():
      bad = m.get("diverged_seeds", 0)
      note = f" **diverged in {bad}/{len(result['seeds'])} seeds**" if bad else ""
      lines.append(f"| APW-{kind} η={eta} (T={r['iterations']}){note} | "
                   + " | ".join(fmt(m[k]) for k in METRICS) + " |")
  return "\n".join(lines)
