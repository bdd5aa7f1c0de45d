"""The lambda x n_synthetic study: one vmapped program, seed chunks that resume, summaries.

`run_grid` runs seeds x lambda x n_synthetic x generations. lambda is the
total weight of the real rows in every generation >= 1 (see `loops.real_weight`);
the real set has ``cfg.n_real`` rows whatever lambda is, so lambda is decoupled
from the generation-0 real-set size. A negative lambda is the proportional mix
(every row weighs the same, so the real fraction n_real / (n_real + n_s) falls
as synthetic data grows: the setting of the paper's phase transition).

The summaries are paired over seeds (every point of a seed shares its real set)
and report 95% Student-t intervals.
"""

import pathlib
from collections.abc import Sequence

import numpy as np
from scipy import stats

from jaxlab.core.errors import ConfigError
from jaxlab.core.progress import progress
from jaxlab.methods.self_consuming.config import Config
from jaxlab.methods.self_consuming.loops import run_sweep

PROPORTIONAL = -1.0


def grid_points(lambdas: Sequence[float], n_synth: Sequence[int], n_real: int,
                ) -> tuple[list[int], list[int], list[float]]:
  """The flattened (n_real, n_synth, lambda) points, lambda-major."""
  if not lambdas or not n_synth:
    raise ConfigError("run_grid needs at least one lambda and one n_synthetic")
  bad = [lam for lam in lambdas if not (lam == PROPORTIONAL or 0.0 <= lam <= 1.0)]
  if bad:
    raise ConfigError(f"lambda must be in [0, 1] (or {PROPORTIONAL} for proportional), got {bad}")
  pts = [(n_real, int(s), float(lam)) for lam in lambdas for s in n_synth]
  return [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts]


def run_grid(cfg: Config, lambdas: Sequence[float], n_synth: Sequence[int],
             hp: dict[str, float] | None = None, out_dir: pathlib.Path | None = None,
             chunk: int | None = None, buckets: int = 1,
             desc: str = "grid") -> dict[str, np.ndarray]:
  """``{"tv", "var"}: [seeds, lambdas, n_synth, generations + 1]``.

  All (lambda, n_s) points run in one jitted program (per size bucket), vmapped
  over points and seeds. ``chunk`` seeds at a time; with ``out_dir`` each chunk
  is saved to ``out_dir/<desc>_seeds_<a>_<b>.npz`` and found again on a rerun,
  so an interrupted study resumes (chunks use the same keys as one full run).
  ``hp``: fixed scalars for every point (e.g. ``{"tau": 3e3}``).
  """
  n_real, ns, lam = grid_points(lambdas, n_synth, cfg.n_real)
  point_hp = {"lambda": lam, **{k: [float(v)] * len(ns) for k, v in (hp or {}).items()}}
  chunk = cfg.seeds if chunk is None else max(1, min(chunk, cfg.seeds))
  starts = list(range(0, cfg.seeds, chunk))
  parts = []
  bar = progress(total=len(starts), desc=desc)
  for a in starts:
    b = min(a + chunk, cfg.seeds)
    path = None if out_dir is None else pathlib.Path(out_dir) / f"{desc}_seeds_{a}_{b}.npz"
    if path is not None and path.exists():
      with np.load(path) as f:
        part = {k: f[k] for k in f.files}
    else:
      part = run_sweep(cfg, n_real=n_real, n_synth=ns, hp=point_hp, buckets=buckets,
                       seed_range=(a, b))
      if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **part)
    parts.append(part)
    bar.update()
  bar.close()
  shape = (len(lambdas), len(n_synth))
  return {k: np.concatenate([p[k] for p in parts]).reshape((cfg.seeds,) + shape + (-1,))
          for k in parts[0]}


def mean_ci(x: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
  """Mean over axis 0 and the half-width of its Student-t interval."""
  s = x.shape[0]
  half = stats.t.ppf(0.5 + level / 2, s - 1) * x.std(0, ddof=1) / np.sqrt(s)
  return x.mean(0), half


def phase_transition(tv: np.ndarray) -> dict[str, float]:
  """Does TV first rise, then fall, as n_s grows? ``tv``: [seeds, n_synth] (one lambda and generation).

  The peak is chosen on the even seeds and tested on the odd ones (no
  selection bias): ``rise`` = TV(peak) - TV(n_s = first), ``fall`` = TV(peak) -
  TV(n_s = last), both paired over the odd seeds with 95% intervals. The
  transition ``appears`` when the peak is interior and both intervals are above 0.
  """
  if tv.shape[0] < 4:
    raise ConfigError("phase_transition needs >= 4 seeds (peak on half, test on the other)")
  pick, test = tv[0::2], tv[1::2]
  peak = int(np.argmax(pick.mean(0)))
  rise, rise_ci = mean_ci(test[:, peak] - test[:, 0])
  fall, fall_ci = mean_ci(test[:, peak] - test[:, -1])
  interior = 0 < peak < tv.shape[1] - 1
  return {"peak_index": peak, "rise": float(rise), "rise_ci": float(rise_ci), "fall": float(fall),
          "fall_ci": float(fall_ci),
          "appears": bool(interior and rise - rise_ci > 0 and fall - fall_ci > 0)}


def bounded_error(tv: np.ndarray) -> dict[str, float]:
  """Does TV stay bounded over generations? ``tv``: [seeds, generations + 1] at one point.

  Reports the largest mean TV over generations, and the paired growth over the
  last half of the generations, TV_G - TV_{G//2}, with its 95% interval: an
  interval that covers 0 (or lies below it) means TV has stopped growing.
  """
  gens = tv.shape[1] - 1
  mean, _ = mean_ci(tv)
  late, late_ci = mean_ci(tv[:, -1] - tv[:, gens // 2])
  return {"max_mean_tv": float(mean.max()), "final_tv": float(mean[-1]),
          "late_growth": float(late), "late_growth_ci": float(late_ci)}


def lambda_tag(lam: float) -> str:
  """A short key for one lambda: ``prop`` (proportional) or ``lam0.5``."""
  return "prop" if lam == PROPORTIONAL else f"lam{lam:g}"


def summarise_grid(tv: np.ndarray, lambdas: Sequence[float], ns: Sequence[int]) -> dict:
  """Per lambda: `phase_transition` at generations 1 and G, `bounded_error` at the largest n_s.

  Args:
    tv: [seeds, lambdas, n_synth, generations + 1] from `run_grid`.
  """
  last, out = tv.shape[-1] - 1, {"gen0_tv": float(tv[:, 0, 0, 0].mean())}
  for i, lam in enumerate(lambdas):
    tag = lambda_tag(lam)
    for g in sorted({1, last}):
      pt = phase_transition(tv[:, i, :, g])
      out.update({f"{tag}_gen{g}_{k}": v for k, v in pt.items()})
      out[f"{tag}_gen{g}_peak_n_synthetic"] = int(ns[pt["peak_index"]])
    out[f"{tag}_gen{last}_tv"] = [float(m) for m in tv[:, i, :, last].mean(0)]
    out.update({f"{tag}_maxns_{k}": v for k, v in bounded_error(tv[:, i, -1]).items()})
  return out
