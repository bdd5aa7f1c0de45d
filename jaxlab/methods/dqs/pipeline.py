"""The DQS experiment: data -> predictor (GNN vs MLP) -> search -> estimator.

Every stage is resumable or cheap and seeded: data chunks and training
checkpoints live under ``out_dir``; search and estimation are recomputed
deterministically.
"""

import dataclasses
import pathlib
import time

import jax
import numpy as np

from jaxlab.core.metrics import MetricsWriter
from jaxlab.core.progress import progress
from jaxlab.methods.dqs import config as C
from jaxlab.methods.dqs import dataset, environments, graphs, search, train
from jaxlab.methods.dqs import estimator as est_lib
from jaxlab.methods.dqs.predictor import PredictorConfig, regression_metrics


@dataclasses.dataclass(frozen=True, kw_only=True)
class DqsExperimentConfig:
  """One DQS run.

  Attributes:
    sim: simulator / random-setup distribution.
    gnn: GNN predictor settings.
    mlp: MLP-baseline settings (model="mlp").
    env: environment the predictor learns ("Z", "X", "Y" or "XX").
    n_setups, chunk_size, data_seed: dataset generation.
    protocol: "clean" (disjoint train/val/test, select on val) or
      "reference" (first n_train / last n_test, select on test).
    quirk_select_on_test: select on the test set even with "clean".
    n_train, n_val, n_test: split sizes.
    search_candidates, search_budget, search_repeats: predictor search (K
      scored, ``budget`` verified) vs random search with the same budget.
    search_matched: also run the compute-matched random baseline: the
      training data plus random exact simulations for as much process CPU
      time as the GNN's training and one guided search took (CPU time, so
      that other jobs on a shared machine do not tilt the comparison).
    search_matched_max_setups: cap on the baseline's extra simulations
      (None: none; the result says when the cap cut the time budget short).
    estimator: trigonometric-interpolation settings.
    est_photons: N of the textbook GHZ probes in the estimator plot.
    est_shots: shot counts S.
  """

  sim: C.SimConfig
  gnn: PredictorConfig
  mlp: PredictorConfig
  env: str = "Z"
  n_setups: int = 10_000
  chunk_size: int = 1000
  data_seed: int = 0
  protocol: str = "clean"
  quirk_select_on_test: bool = False
  n_train: int = 6000
  n_val: int = 1000
  n_test: int = 2000
  search_candidates: int = 5000
  search_budget: int = 50
  search_repeats: int = 5
  search_matched: bool = True
  search_matched_max_setups: int | None = None
  estimator: est_lib.EstimatorConfig = dataclasses.field(default_factory=est_lib.EstimatorConfig)
  est_photons: tuple[int, ...] = (2, 4, 6, 8)
  est_shots: tuple[int, ...] = (100, 1000, 10_000)


def run(cfg: DqsExperimentConfig, out_dir: pathlib.Path) -> dict:
  """Runs every stage; returns the flat summary dict."""
  out_dir = pathlib.Path(out_dir)
  n, env = cfg.sim.n_photons, cfg.env
  data = dataset.generate(out_dir / "data", cfg.sim, cfg.n_setups,
                          chunk_size=cfg.chunk_size, seed=cfg.data_seed)
  result = {f"data/{k}": v for k, v in dataset.statistics(data, n).items()}
  g = graphs.build_graphs(dataset.as_setups(data), cfg.sim)
  y = data["qfi"][:, C.ENVIRONMENTS.index(env)].astype(np.float32)
  split = train.split_indices(len(y), cfg.protocol, n_train=cfg.n_train, n_val=cfg.n_val,
                              n_test=cfg.n_test, seed=cfg.data_seed)
  if cfg.quirk_select_on_test:
    split["select"] = split["test"]
  best_gnn, train_cpu = None, 0.0
  for phase, pcfg in (("gnn", cfg.gnn), ("mlp", cfg.mlp)):
    _, best, info = train.train(pcfg, g, y, split, out_dir, phase=phase)
    pred = train.predict(best, pcfg, g.take(split["test"]))
    metrics = regression_metrics(pred, y[split["test"]])
    result.update({f"{phase}/test/{k}": v for k, v in metrics.items()})
    result.update({f"{phase}/{k}": v for k, v in info.items()})
    if phase == "gnn":
      best_gnn, train_cpu = best, info["cpu_seconds"]
  found, probes = _search(cfg, best_gnn)
  result.update(found)
  hl = environments.heisenberg_limit(n, env)
  data_hits = int(np.sum(y >= hl - 1e-3))
  result["search/guided/n_at_hl_incl_data"] = data_hits + result["search/guided/n_at_hl"]
  if cfg.search_matched:
    result.update(_matched(cfg, data["qfi"][:, C.ENVIRONMENTS.index(env)], data["prob"],
                           train_cpu + found["search/guided/cpu_seconds"]))
  result.update(_estimate(cfg, out_dir, probes))
  MetricsWriter(out_dir).write(0, {"phase": "summary", **result})
  return result


def _search(cfg: DqsExperimentConfig, variables):
  """Averaged guided/random summaries and the first repeat's verified setups."""
  score = lambda g: train.predict(variables, cfg.gnn, g)
  rows, probe = {"guided": [], "random": []}, None
  for r in progress(range(cfg.search_repeats), desc="search"):
    t0, c0 = time.perf_counter(), time.process_time()
    guided, verified = search.predictor_search(
      score, cfg.sim, cfg.env, n_candidates=cfg.search_candidates, budget=cfg.search_budget,
      rng=np.random.default_rng([cfg.data_seed, 1000 + r]))
    guided["seconds"] = time.perf_counter() - t0  # scoring + exact verification
    guided["cpu_seconds"] = time.process_time() - c0
    rows["guided"].append(guided)
    rng = np.random.default_rng([cfg.data_seed, 2000 + r])
    rows["random"].append(search.random_search(cfg.sim, cfg.env, budget=cfg.search_budget, rng=rng))
    if r == 0:
      probe = verified
  out = {}
  for name, rs in rows.items():
    for k in rs[0]:
      out[f"search/{name}/{k}"] = float(np.mean([x[k] for x in rs]))
  return out, probe


def _matched(cfg: DqsExperimentConfig, data_qfi, data_prob, seconds: float) -> dict:
  """The compute-matched random baseline (one repeat), keys ``search/matched/*``.

  Random search gets what one guided search cost: the n_setups exact
  simulations of the training data (those setups are random, so they are
  its first candidates) plus random exact simulations for ``seconds`` =
  GNN training + one guided search (scoring and verification), CPU time of
  this process.
  """
  res = search.matched_random_search(
    cfg.sim, cfg.env, seconds=seconds, seed=cfg.data_seed + 3000, prior_qfi=data_qfi,
    prior_prob=data_prob, max_setups=cfg.search_matched_max_setups)
  res["budget_seconds"] = seconds
  res["capped"] = float(res["seconds"] < seconds)
  return {f"search/matched/{k}": float(v) for k, v in res.items()}


def _estimate(cfg: DqsExperimentConfig, out_dir: pathlib.Path, probe_setups) -> dict:
  """MSE vs shots for GHZ probes and the best searched probe; writes the plot."""
  if cfg.env == "XX":
    return {}
  curves, out = {}, {}
  for n in cfg.est_photons:
    res = est_lib.mse_vs_shots([cfg.data_seed, n], environments.ghz_state(n, cfg.env),
                               cfg.env, n, list(cfg.est_shots), cfg.estimator)
    curves[f"GHZ N={n}"] = res
    out.update(_ratios(f"estimator/ghz{n}", res))
  if probe_setups is not None and len(probe_setups):
    psi, prob = search.best_probe(probe_setups, cfg.sim)
    if np.linalg.norm(psi) > 0.5:
      n = cfg.sim.n_photons
      out["estimator/searched/qfi"] = float(environments.qfi(jax.numpy.asarray(psi), cfg.env, n))
      out["estimator/searched/prob"] = prob
      for tag, post in (("searched", False), ("searched_postselect", True)):
        ecfg = dataclasses.replace(cfg.estimator, observable="echo", postselect=post)
        res = est_lib.mse_vs_shots([cfg.data_seed, 99], jax.numpy.asarray(psi),
                                   cfg.env, n, list(cfg.est_shots), ecfg, success_prob=prob)
        curves[f"searched probe N={n} (echo{', P-weighted' if post else ''})"] = res
        out.update(_ratios(f"estimator/{tag}", res))
  _plot_estimator(curves, out_dir / "estimator_mse.png", cfg)
  return out


def _ratios(prefix: str, res: dict) -> dict:
  """MSE over 1/(N^2 S) per setting, over 1/(N^2 S_total) and over the CRB 1/(w F_Q S)."""
  return {
    f"{prefix}/mse_over_hl": [m / h for m, h in zip(res["mse"], res["heisenberg"])],
    f"{prefix}/mse_over_hl_total": [m / h for m, h in zip(res["mse"], res["heisenberg_total"])],
    f"{prefix}/mse_over_crb": [m / c for m, c in zip(res["mse"], res["crb"])],
  }


def _plot_estimator(curves: dict, path: pathlib.Path, cfg: DqsExperimentConfig) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(6, 4.5))
  for i, (label, res) in enumerate(curves.items()):
    (ln,) = ax.loglog(res["shots"], res["mse"], "o-", label=label)
    n = round(1 / (res["heisenberg"][0] * res["shots"][0]) ** 0.5)
    ax.loglog(res["shots"], res["heisenberg"], "--", color=ln.get_color(), lw=0.8,
              label=f"HL 1/(N^2 S), N={n}")
    ax.loglog(res["shots"], res["sql"], ":", color=ln.get_color(), lw=0.8)
  ax.set(xlabel="shots S per setting", ylabel="MSE of theta estimate",
         title=f"Estimator [reconstructed], env {cfg.env}; dotted = SQL 1/(N S)")
  ax.legend(fontsize=6)
  ax.grid(alpha=0.3, which="both")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
