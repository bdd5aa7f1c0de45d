"""Self-consuming diffusion loops: early stopping, and the lambda x n_synthetic phase study."""

import dataclasses
import pathlib

import numpy as np

from jaxlab.core.metrics import MetricsWriter, write_json
from jaxlab.core.plot import lines
from jaxlab.methods.self_consuming import Config, run_sweep
from jaxlab.methods.self_consuming.config import DiffusionOptions, Grid
from jaxlab.methods.self_consuming.study import (PROPORTIONAL, lambda_tag, mean_ci, run_grid,
                                                 summarise_grid)
from experiments.self_consuming.plots import phase_report, plot_generations, plot_phase

DESCRIPTION = ("Self-consuming diffusion (random-feature score net): TV vs early stopping, and a"
               " seeds x lambda x n_synthetic x 10-generation phase-transition study")
CLAIM = (
  "Fu et al. (v1) argue optimal early stopping helps inside the self-consuming loop, that TV stays"
  " bounded over generations when the real proportion is large enough, and that TV first rises,"
  " then falls as synthetic data grows. Checked with a reconstructed random-feature diffusion"
  " learner (fresh training noise per fit, generation and seed) and an exact quantile TV."
)
NOTE = "reconstructed learner; Fu et al.'s constants unverified"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
  """``base`` drives the grid (``base.n_real`` real rows at every lambda); tau sweep reuses it."""

  base: Config = Config(learner="diffusion", scenario="augment_fixed_real", grid=Grid(size=200),
                        seeds=24, generations=10, n_real=200,
                        diffusion=DiffusionOptions(width=128, noise_draws=2, ode_steps=40,
                                                   eval_samples=2000))
  tau: float = 3e3
  lambdas: tuple[float, ...] = (PROPORTIONAL, 0.2, 0.5, 0.8)
  n_synthetic: tuple[int, ...] = (0, 50, 200, 800, 3200)
  chunk: int = 4
  buckets: int = 3
  taus: tuple[float, ...] = (30, 300, 3e3, 3e4, 1e6)
  tau_seeds: int = 8
  tau_generations: int = 3


def get_config(smoke: bool = False) -> Settings:
  if smoke:
    return Settings(base=Config(learner="diffusion", grid=Grid(size=64), seeds=4, generations=2,
                                n_real=40, diffusion=DiffusionOptions(width=16, eval_samples=300,
                                                                      ode_steps=8, noise_draws=1)),
                    lambdas=(PROPORTIONAL, 0.5), n_synthetic=(0, 20, 80), chunk=2, buckets=1,
                    taus=(30, 3e3), tau_seeds=2, tau_generations=1)
  return Settings()


def _tau_sweep(config: Settings, out_dir: pathlib.Path, result: dict) -> None:
  base = dataclasses.replace(config.base, seeds=config.tau_seeds,
                             generations=config.tau_generations)
  taus, n = list(config.taus), base.n_real
  tv = run_sweep(base, n_real=[n] * len(taus), n_synth=[n] * len(taus), hp={"tau": taus})["tv"]
  mean, ci = mean_ci(tv)                                         # [T, G+1]
  ys = {f"generation {g}": mean[:, g] for g in range(base.generations + 1)}
  bands = {f"generation {g}": (mean[:, g] - ci[:, g], mean[:, g] + ci[:, g])
           for g in range(base.generations + 1)}
  for g in range(base.generations + 1):
    best = int(np.argmin(mean[:, g]))
    result[f"tau_gen{g}_best_tau"] = float(taus[best])
    result[f"tau_gen{g}_best_tv"] = float(mean[best, g])
  lines(out_dir / "tv_vs_tau.png", np.log10(taus), ys, bands=bands,
        xlabel="log10 early-stopping time tau", ylabel="TV (exact, quantile)",
        title=f"diffusion, n_real = n_s = {n}, {base.seeds} seeds, 95% CI ({NOTE})")


def run(config: Settings, out_dir: pathlib.Path) -> dict:
  base, writer = config.base, MetricsWriter(out_dir)
  result = {"seeds": base.seeds, "n_real": base.n_real, "tau": config.tau}
  grid = run_grid(base, config.lambdas, config.n_synthetic, hp={"tau": config.tau},
                  out_dir=out_dir / "chunks", chunk=config.chunk, buckets=config.buckets,
                  desc="diffusion-grid")
  tv = grid["tv"]                                                # [S, L, P, G+1]
  ns = np.array(config.n_synthetic)
  result.update(summarise_grid(tv, config.lambdas, ns))
  last = base.generations
  for i, lam in enumerate(config.lambdas):
    for j, s in enumerate(ns):
      writer.write(int(s), {f"{lambda_tag(lam)}/gen{last}/tv": float(tv[:, i, j, last].mean())})
  plot_phase(out_dir / "phase_transition.png", tv, config.lambdas, ns,
             title=f"diffusion, n_real={base.n_real}, {base.seeds} seeds, 95% CI ({NOTE})")
  plot_generations(out_dir / "tv_vs_generation.png", tv, config.lambdas, ns,
                   title=f"diffusion, n_real={base.n_real}, {base.seeds} seeds, 95% CI ({NOTE})")
  mean, ci = mean_ci(tv)
  write_json(out_dir / "grid_tv.json", {"lambdas": list(config.lambdas), "n_synthetic": ns,
                                        "tv_mean": mean, "tv_ci95": ci})
  _tau_sweep(config, out_dir, result)
  return result


def report(result: dict) -> str:
  return phase_report(result, "diffusion")
