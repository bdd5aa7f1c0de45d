"""KDE phase-transition sweep: jaxlab (jit + vmap) vs scipy gaussian_kde in a loop.

Same work both ways: for every seed and every synthetic amount n_s, fit a KDE on
n_real real samples, draw n_s samples from it, fit a KDE on real + synthetic,
evaluate it on the grid and take TV against the true mixture density. Prints
seconds and the ratio. Usage: python scripts/bench_self_consuming.py [--seeds 20]
"""

import argparse
import dataclasses
import time

import numpy as np
from scipy import stats

from jaxlab.methods.self_consuming import Config, mixture, run_sweep
from jaxlab.methods.self_consuming.config import Grid


def scipy_sweep(cfg: Config, seeds: int) -> np.ndarray:
  rng = np.random.default_rng(0)
  mix = cfg.mixture
  grid = np.linspace(cfg.grid.lo, cfg.grid.hi, cfg.grid.size)
  dx = grid[1] - grid[0]
  p_star = sum(w * stats.norm.pdf(grid, m[0], s) for w, m, s in zip(mix.weights, mix.means, mix.stds))

  def sample_star(n):
    comp = rng.choice(len(mix.weights), n, p=mix.weights)
    return np.array(mix.means)[comp, 0] + np.array(mix.stds)[comp] * rng.normal(size=n)

  def fit(x):  # kernel std h = c N^-1/5, as jaxlab's fixed rule
    h = cfg.bandwidth * len(x) ** -0.2
    return stats.gaussian_kde(x, bw_method=h / x.std(ddof=1))

  out = np.zeros((seeds, len(cfg.n_synthetic)))
  for s in range(seeds):
    real = sample_star(cfg.n_real)
    k0 = fit(real)
    for j, ns in enumerate(cfg.n_synthetic):
      x = real if ns == 0 else np.concatenate([real, k0.resample(ns, seed=rng)[0]])
      out[s, j] = 0.5 * np.abs(fit(x)(grid) - p_star).sum() * dx
  return out


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--seeds", type=int, default=20)
  ap.add_argument("--grid", type=int, default=512)
  ap.add_argument("--modes", default="binned,exact", help="jaxlab density modes to time")
  args = ap.parse_args()
  cfg = Config(grid=Grid(size=args.grid), seeds=args.seeds, generations=1,
               n_synthetic=(0, 50, 200, 800, 1600, 6400))
  points = args.seeds * len(cfg.n_synthetic)
  print(f"KDE sweep: {args.seeds} seeds x {len(cfg.n_synthetic)} n_s values, n_real={cfg.n_real},"
        f" grid {args.grid}, 1 generation")
  t = time.perf_counter()
  ref = scipy_sweep(cfg, args.seeds)
  t_scipy = time.perf_counter() - t
  print(f"scipy gaussian_kde loop : {t_scipy:8.2f} s   mean TV {ref.mean(0).round(4)}")
  for density in args.modes.split(","):
    c = dataclasses.replace(cfg, density=density)
    t = time.perf_counter()
    run_sweep(c)  # includes compilation
    t_first = time.perf_counter() - t
    t = time.perf_counter()
    tv = run_sweep(c)["tv"][:, :, 1]
    t_run = time.perf_counter() - t
    print(f"jaxlab ({density:6s})        : {t_run:8.2f} s   (first call with compile {t_first:.2f} s)"
          f"   mean TV {tv.mean(0).round(4)}")
    print(f"  speed-up vs scipy: {t_scipy / t_run:7.1f}x  ({t_scipy / t_first:.1f}x counting compile);"
          f" {points / t_run:.0f} sweep points/s")


if __name__ == "__main__":
  main()
