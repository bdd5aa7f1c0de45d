"""The verdict picture: each arm's target metric vs KL drift at its best lr, with CIs.

Pinpoint tuning beats full fine-tuning when it reaches the same target at lower KL:
points further up (better target) and further left (less drift) win.
"""

import math
import pathlib
from collections.abc import Mapping

from jaxlab.core import plot


def triple(t) -> tuple[float, float, float]:
  """(mean, lo, hi) as floats; JSON may have turned NaN into a string or None."""
  out = []
  for x in t:
    try:
      out.append(float(x))
    except (TypeError, ValueError):
      out.append(float("nan"))
  return tuple(out)


def _minor_label(x: float, _pos=None) -> str:
  """A log axis' minor tick label: only mantissas 2 and 5 (0.02, 0.05, ...)."""
  if x <= 0:
    return ""
  mantissa = round(x / 10 ** math.floor(math.log10(x)), 6)
  return f"{x:g}" if mantissa in (2.0, 5.0) else ""


def frontier(path: pathlib.Path | str, arms: Mapping[str, dict], *, target: str,
             title: str = "") -> pathlib.Path:
  """Scatter with error bars; ``arms[name] = {"target": (m, lo, hi), "kl": (m, lo, hi)}``.

  An arm may add ``"per_lr": [(label, kl, target), ...]`` (every lr of its sweep): drawn as a
  thin line of small markers in the arm's colour, so arms can be compared at matched KL and
  not only at their best lr. KL goes on a log axis (base = 0 is drawn at the smallest
  positive KL / 3).
  """
  plt = plot._plt()  # the shared Agg setup
  fig, ax = plt.subplots(figsize=(6, 4.2))
  pos = [triple(v["kl"])[0] for v in arms.values() if triple(v["kl"])[0] > 0]
  pos += [float(k) for v in arms.values() for _, k, _ in v.get("per_lr", ()) if float(k) > 0]
  floor = min(pos) / 3 if pos else 1e-6
  for name, v in arms.items():
    (ty, tlo, thi), (kx, klo, khi) = triple(v["target"]), triple(v["kl"])
    x = max(kx, floor)
    xerr = [[max(x - klo, 0) if klo == klo else 0], [max(khi - x, 0) if khi == khi else 0]]
    yerr = [[ty - tlo if tlo == tlo else 0], [thi - ty if thi == thi else 0]]
    bars = ax.errorbar([x], [ty], xerr=xerr, yerr=yerr, fmt="o", capsize=3, label=name)
    curve = sorted((max(float(k), floor), float(t), str(lab))
                   for lab, k, t in v.get("per_lr", ()))
    if curve:
      ax.plot([c[0] for c in curve], [c[1] for c in curve], "-", marker=".", lw=0.8, alpha=0.6,
              color=bars[0].get_color())
      for cx, cy, lab in curve:
        ax.annotate(lab, (cx, cy), textcoords="offset points", xytext=(3, -8), fontsize=6,
                    color=bars[0].get_color())
    ax.annotate(name, (x, ty), textcoords="offset points", xytext=(4, 4), fontsize=7)
  ax.set_xscale("log")
  ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: f"{x:g}"))
  ax.xaxis.set_minor_formatter(plt.FuncFormatter(_minor_label))   # 2 and 5 only: no overlap
  ax.set(xlabel="KL(orig || tuned) per token on held-out text (side effect)",
         ylabel=target, title=title)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  return plot.save(fig, path)
