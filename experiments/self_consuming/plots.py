"""Figures (PNG) and tables of the lambda x n_synthetic study (KDE and diffusion experiments)."""

import pathlib

import numpy as np

from jaxlab.methods.self_consuming.study import PROPORTIONAL, mean_ci

SCAFFOLD_NOTE = "scaffold/constants unverified"


def lambda_label(lam: float, short: bool = False) -> str:
  if lam == PROPORTIONAL:
    return "prop" if short else "lambda = n_r/(n_r+n_s)"
  return f"lam{lam:g}" if short else f"lambda = {lam:g}"


def _axes(n):
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.8), squeeze=False)
  return plt, fig, axes[0]


def _save(plt, fig, path, title):
  fig.suptitle(title, fontsize=8)
  fig.tight_layout()
  fig.savefig(pathlib.Path(path), dpi=120)
  plt.close(fig)


def plot_phase(path, tv: np.ndarray, lambdas, ns: np.ndarray, title: str,
               generations: tuple[int, ...] | None = None) -> None:
  """One panel per lambda: TV vs n_s (log x, 0 drawn at 1) for a few generations, 95% CI bands."""
  last = tv.shape[-1] - 1
  gens = generations or tuple(sorted({1, max(1, last // 2), last}))
  plt, fig, axes = _axes(len(lambdas))
  x = np.maximum(ns, 1)
  for ax, (i, lam) in zip(axes, enumerate(lambdas)):
    for g in gens:
      mean, ci = mean_ci(tv[:, i, :, g])
      (ln,) = ax.plot(x, mean, "-o", ms=3, label=f"generation {g}")
      ax.fill_between(x, mean - ci, mean + ci, color=ln.get_color(), alpha=0.2)
    ax.axhline(tv[:, i, 0, 0].mean(), color="k", lw=0.8, ls=":", label="generation 0")
    ax.set_xscale("log")
    ax.set(xlabel="synthetic samples n_s (0 at 1)", ylabel="TV(p_i, p*)", title=lambda_label(lam))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  _save(plt, fig, path, title)


def plot_generations(path, tv: np.ndarray, lambdas, ns: np.ndarray, title: str) -> None:
  """TV vs generation per lambda at the smallest non-zero and the largest n_s, 95% CI bands."""
  picks = [j for j in (int(np.argmax(ns > 0)), len(ns) - 1)]
  plt, fig, axes = _axes(len(picks))
  gens = np.arange(tv.shape[-1])
  for ax, j in zip(axes, picks):
    for i, lam in enumerate(lambdas):
      mean, ci = mean_ci(tv[:, i, j])
      (ln,) = ax.plot(gens, mean, "-o", ms=3, label=lambda_label(lam))
      ax.fill_between(gens, mean - ci, mean + ci, color=ln.get_color(), alpha=0.2)
    ax.set(xlabel="generation", ylabel="TV(p_i, p*)", title=f"n_s = {ns[j]}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  _save(plt, fig, path, title)


def phase_report(result: dict, what: str) -> str:
  gens = sorted({int(k.split("_gen")[1].split("_")[0]) for k in result if k.endswith("_appears")})
  rows = [f"{what}: n_real = {result['n_real']}, {result['seeds']} seeds; generation-0 TV"
          f" {result['gen0_tv']:.4f}. Rise = TV(peak) - TV(n_s=0), fall = TV(peak) - TV(largest"
          " n_s), 95% CI, peak chosen on even seeds and tested on odd ones.", "",
          "| lambda | generation | peak n_s | rise | fall | rise-then-fall |",
          "| --- | --- | --- | --- | --- | --- |"]
  tags = sorted({k.split("_gen")[0] for k in result if k.endswith("_appears")})
  for tag in tags:
    for g in gens:
      p = f"{tag}_gen{g}_"
      rows.append(f"| {tag} | {g} | {result[p + 'peak_n_synthetic']} | {result[p + 'rise']:+.4f}"
                  f" ± {result[p + 'rise_ci']:.4f} | {result[p + 'fall']:+.4f}"
                  f" ± {result[p + 'fall_ci']:.4f}"
                  f" | {'yes' if result[p + 'appears'] else 'no'} |")
  rows += ["", "| lambda | max mean TV over generations (largest n_s) | final TV | growth over last half |",
           "| --- | --- | --- | --- |"]
  for tag in tags:
    p = f"{tag}_maxns_"
    rows.append(f"| {tag} | {result[p + 'max_mean_tv']:.4f} | {result[p + 'final_tv']:.4f} |"
                f" {result[p + 'late_growth']:+.4f} ± {result[p + 'late_growth_ci']:.4f} |")
  return "\n".join(rows)
