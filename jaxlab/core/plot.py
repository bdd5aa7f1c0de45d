"""PNG plots written beside results (matplotlib, Agg backend)."""

import pathlib
from collections.abc import Mapping, Sequence

import numpy as np


def _plt():
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  return plt


def save(fig, path) -> pathlib.Path:
  """Lays out ``fig``, writes it to ``path`` as a 120-dpi PNG, closes it; returns the path."""
  fig.tight_layout()
  path = pathlib.Path(path)
  fig.savefig(path, dpi=120)
  _plt().close(fig)
  return path


def lines(
  path: pathlib.Path | str,
  x: Sequence[float] | np.ndarray,
  ys: Mapping[str, Sequence[float] | np.ndarray],
  *,
  xlabel: str = "",
  ylabel: str = "",
  title: str = "",
  bands: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
  logy: bool = False,
) -> pathlib.Path:
  """One line per label; ``bands[label] = (lo, hi)`` shades a confidence band."""
  plt = _plt()
  fig, ax = plt.subplots(figsize=(6, 4))
  for label, y in ys.items():
    (ln,) = ax.plot(x, y, label=label)
    if bands and label in bands:
      lo, hi = bands[label]
      ax.fill_between(x, lo, hi, color=ln.get_color(), alpha=0.2)
  ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
  if logy:
    ax.set_yscale("log")
  ax.grid(alpha=0.3)
  if len(ys) > 1:
    ax.legend(fontsize=8)
  return save(fig, path)


def intervals(
  path: pathlib.Path | str,
  labels: Sequence[str],
  values: Sequence[float] | np.ndarray,
  lo: Sequence[float] | np.ndarray,
  hi: Sequence[float] | np.ndarray,
  *,
  xlabel: str = "",
  title: str = "",
  refs: Mapping[str, float] | None = None,
) -> pathlib.Path:
  """One labelled row per value with its interval ``[lo, hi]``, first label on top, and a
  dashed vertical line per ``refs`` entry (e.g. a baseline, chance)."""
  plt = _plt()
  values, lo, hi = (np.asarray(a, np.float64) for a in (values, lo, hi))
  if not len(labels) == len(values) == len(lo) == len(hi):
    raise ValueError(f"intervals: {len(labels)} labels but {len(values)} values, {len(lo)} "
                     f"lower and {len(hi)} upper bounds; pass one of each per label.")
  y = np.arange(len(labels))[::-1]
  fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) + 1.4))
  ax.errorbar(values, y, xerr=[values - lo, hi - values], fmt="o", capsize=3)
  for (name, x), style in zip((refs or {}).items(), ("--", ":", "-.", (0, (1, 3)))):
    ax.axvline(x, linestyle=style, color="grey", label=f"{name} ({x:.3g})")
  ax.set_yticks(y, labels)
  ax.set(xlabel=xlabel, title=title)
  ax.grid(alpha=0.3, axis="x")
  if refs:
    ax.legend(fontsize=8)
  return save(fig, path)


def heatmap(
  path: pathlib.Path | str,
  array: np.ndarray,
  *,
  xlabel: str = "",
  ylabel: str = "",
  title: str = "",
  cmap: str = "RdBu_r",
  symmetric: bool = True,
) -> pathlib.Path:
  """A 2-D array as an image with a colour bar (symmetric limits by default)."""
  plt = _plt()
  array = np.asarray(array, np.float64)
  fig, ax = plt.subplots(figsize=(6, 5))
  vmax = float(np.nanmax(np.abs(array))) if symmetric and array.size else None
  im = ax.imshow(
    array, aspect="auto", cmap=cmap, interpolation="nearest",
    vmin=-vmax if vmax else None, vmax=vmax,
  )
  fig.colorbar(im, ax=ax)
  ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
  return save(fig, path)
