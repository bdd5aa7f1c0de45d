"""Pareto plots (accuracy vs each fairness gap across eta) and trajectories."""

import pathlib

import numpy as np

GAPS = (("d_eop", "ΔEOp"), ("d_eo", "ΔEO"), ("d_dp", "ΔDP"))


def _plt():
  import matplotlib  # noqa: PLC0415

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415

  return plt


def pareto(path: pathlib.Path, kind: str, etas, points: dict, baselines: dict) -> pathlib.Path:
  """Accuracy vs each gap: one point per eta (mean over seeds, std as error bars).

  Args:
    points: {metric: (mean [E], std [E])} for acc and the three gaps.
    baselines: {name: {metric: (mean, std)}} drawn as labelled markers.
  """
  plt = _plt()
  fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), layout="constrained")
  etas = np.asarray(etas, np.float64)
  lo, hi = float(etas.min()), float(etas.max())
  am, asd = points["acc"]
  for ax, (key, label) in zip(axes, GAPS):
    gm, gsd = points[key]
    ax.errorbar(100 * gm, 100 * am, xerr=100 * gsd, yerr=100 * asd, fmt="none",
                ecolor="0.7", zorder=1)
    sc = ax.scatter(100 * gm, 100 * am, c=etas, cmap="viridis", vmin=lo,
                    vmax=hi if hi > lo else lo + 1.0, zorder=2)
    for name, m in baselines.items():
      ax.scatter(100 * m[key][0], 100 * m["acc"][0], marker="*", s=140, label=name, zorder=3)
    ax.set(xlabel=f"{label} (%)", ylabel="test accuracy (%)")
    ax.grid(alpha=0.3)
  fig.colorbar(sc, ax=axes, label="eta")
  axes[0].legend(fontsize=8)
  fig.suptitle(f"APW-{kind}: accuracy vs fairness gaps across eta (last iteration)")
  path = pathlib.Path(path)
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def trajectory(path: pathlib.Path, kind: str, etas, hist: dict) -> pathlib.Path:
  """Test accuracy and the three gaps vs iteration, one line per eta (seed mean)."""
  plt = _plt()
  fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
  t = np.arange(1, hist["acc"].shape[-1] + 1)
  for ax, (key, label) in zip(axes, (("acc", "accuracy"), *GAPS)):
    for e, eta in enumerate(etas):
      ax.plot(t, 100 * hist[key][:, e].mean(0), label=f"eta={eta:g}")
    ax.set(xlabel="iteration", ylabel=f"{label} (%)")
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=7)
  fig.suptitle(f"APW-{kind}: test metrics per iteration")
  fig.tight_layout()
  path = pathlib.Path(path)
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path
