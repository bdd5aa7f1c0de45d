"""KDE phase-transition sweep: jaxlab (jit + vmap) vs scipy gaussian_kde in a loop.

Same work both ways: for every seed and every synthetic amount n_s, fit a KDE on
n_real real samples, draw n_s samples from it, fit a KDE on real + synthetic,
evaluate it on the grid and take TV against the true mixture density.

Prints (through `jaxlab.core.bench`): the load average at start and end; the scipy loop's
time; jaxlab's compile (first call) and steady-state times per density mode and bucket
count; the ratios; and two accuracy checks: the largest |TV difference| between jaxlab
and scipy on identical sample sets, and the mean TV per n_s of both sweeps with the
difference in standard errors (independent random draws).

Usage: python scripts/bench_self_consuming.py [--seeds 100] [--modes binned] [--buckets 1,3]
"""

import argparse
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from jaxlab.core import bench
from jaxlab.methods.self_consuming import Config, learners, mixture, run_sweep, tv_grid
from jaxlab.methods.self_consuming.config import Grid


def _p_star(cfg: Config, grid: np.ndarray) -> np.ndarray:
  mix = cfg.mixture
  return sum(w * stats.norm.pdf(grid, m[0], s) for w, m, s in zip(mix.weights, mix.means, mix.stds))


def _scipy_fit(cfg: Config, x: np.ndarray) -> stats.gaussian_kde:
  """Kernel std h = c N^-1/5, as jaxlab's fixed rule (scipy scales by the ddof=1 std)."""
  h = cfg.bandwidth * len(x) ** -0.2
  return stats.gaussian_kde(x, bw_method=h / x.std(ddof=1))


def _sample_star(cfg: Config, rng: np.random.Generator, n: int) -> np.ndarray:
  mix = cfg.mixture
  comp = rng.choice(len(mix.weights), n, p=mix.weights)
  return np.array(mix.means)[comp, 0] + np.array(mix.stds)[comp] * rng.normal(size=n)


def scipy_sweep(cfg: Config, seeds: int, keep: int = 0) -> tuple[np.ndarray, list]:
  """TV [seeds, n_s values] by scipy; also the first ``keep`` seeds' training sets."""
  rng = np.random.default_rng(0)
  grid = np.linspace(cfg.grid.lo, cfg.grid.hi, cfg.grid.size)
  dx = grid[1] - grid[0]
  p_star = _p_star(cfg, grid)
  out, kept = np.zeros((seeds, len(cfg.n_synthetic))), []
  for s in range(seeds):
    real = _sample_star(cfg, rng, cfg.n_real)
    k0 = _scipy_fit(cfg, real)
    for j, ns in enumerate(cfg.n_synthetic):
      x = real if ns == 0 else np.concatenate([real, k0.resample(ns, seed=rng)[0]])
      out[s, j] = 0.5 * np.abs(_scipy_fit(cfg, x)(grid) - p_star).sum() * dx
      if s < keep:
        kept.append((x, out[s, j]))
  return out, kept


def same_data_tv_gap(cfg: Config, sets: list, density: str) -> float:
  """max |TV_jaxlab - TV_scipy| when both fit the very same training sets."""
  points, cell = mixture.grid_points(cfg.grid, 1)
  p_star = mixture.density(cfg.mixture, points)
  kde = learners.kde(cfg.grid, points, 1, cfg.bandwidth, "fixed", density)
  size = max(len(x) for x, _ in sets)

  @jax.jit
  def tv(x, n):
    return tv_grid(kde.density(kde.fit(jax.random.key(0), x, learners.uniform_rows(n), {})),
                   p_star, cell)

  gap = 0.0
  for x, tv_ref in sets:
    padded = jnp.zeros((size, 1)).at[: len(x), 0].set(x.astype(np.float32))
    gap = max(gap, abs(float(tv(padded, len(x))) - tv_ref))
  return gap


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--seeds", type=int, default=20)
  ap.add_argument("--grid", type=int, default=512)
  ap.add_argument("--modes", default="binned,exact", help="jaxlab density modes to time")
  ap.add_argument("--buckets", default="1,3",
                  help="run_sweep bucket counts to time (1, the default: every point padded to"
                       " the largest, one compile; 3: for repeated sweeps)")
  ap.add_argument("--reps", type=int, default=5, help="timed jaxlab calls after the first")
  ap.add_argument("--check-seeds", type=int, default=3,
                  help="seeds whose sample sets both libraries fit for the same-data TV check")
  ap.add_argument("--json", default=None, help="append the bench record here")
  args = ap.parse_args()
  rec = bench.Recorder("self_consuming", vars(args), args.json)
  cfg = Config(grid=Grid(size=args.grid), seeds=args.seeds, generations=1,
               n_synthetic=(0, 50, 200, 800, 1600, 6400))
  points = args.seeds * len(cfg.n_synthetic)
  print(f"KDE sweep: {args.seeds} seeds x {len(cfg.n_synthetic)} n_s values {cfg.n_synthetic},"
        f" n_real={cfg.n_real}, grid {args.grid}, 1 generation; {jax.devices()[0].device_kind}")

  res = {}

  def run_scipy():
    res["scipy"] = scipy_sweep(cfg, args.seeds, keep=args.check_seeds)

  ts = bench.time_call(run_scipy, reps=1)
  ref, sets = res["scipy"]
  print(f"scipy gaussian_kde loop      : {ts['steady_s']:8.3f} s   (first run {ts['compile_s']:.3f} s)"
        f"   mean TV {ref.mean(0).round(4)}")
  se_ref = ref.std(0, ddof=1) / np.sqrt(args.seeds)
  for density in args.modes.split(","):
    c = dataclasses.replace(cfg, density=density)
    gap = same_data_tv_gap(c, sets, density)
    print(f"same {len(sets)} sample sets, jaxlab {density} vs scipy: max |TV diff| = {gap:.2e}")
    for b in (int(v) for v in args.buckets.split(",")):
      t = bench.time_call(lambda: res.__setitem__("tv", run_sweep(c, buckets=b)["tv"]),
                          reps=args.reps)
      tv = res["tv"][:, :, 1]
      se = np.hypot(tv.std(0, ddof=1) / np.sqrt(args.seeds), se_ref)
      z = (tv.mean(0) - ref.mean(0)) / se
      name = f"jaxlab {density}, {b} bucket{'s' if b > 1 else ''}"
      print(f"{name:29s}: {t['steady_s']:8.3f} s   (first call with compile {t['compile_s']:.2f} s)"
            f"   mean TV {tv.mean(0).round(4)}")
      print(f"  vs scipy's mean TV (independent draws): max |z| = {np.abs(z).max():.1f};"
            f" speed-up {ts['steady_s'] / t['steady_s']:.1f}x steady,"
            f" {ts['steady_s'] / t['compile_s']:.1f}x counting compile; {points / t['steady_s']:.0f}"
            " sweep points/s")
      common = dict(compile_s=t["compile_s"], best_s=t["best_s"], same_data_tv_gap=gap,
                    mean_tv_max_abs_z=float(np.abs(z).max()))
      goal = 20.0 if density == "binned" and b == 1 else None  # the goal is on the default
      rec.row(f"KDE sweep {args.seeds} seeds, {name} vs scipy loop (steady)",
              jaxlab_s=t["steady_s"], baseline_s=ts["steady_s"], goal=goal, **common)
      rec.row(f"KDE sweep {args.seeds} seeds, {name} vs scipy loop (first call incl. compile)",
              jaxlab_s=t["compile_s"], baseline_s=ts["steady_s"], **common)
  rec.finish()


if __name__ == "__main__":
  main()
